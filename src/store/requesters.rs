//! Store stage, requesters: who wrote each message of a batch, resolved
//! before the batch is walked.
//!
//! The batch is planned in memory first (which contact points are new, which
//! messages need a new user, which domains an organization), then written in
//! the order of the rows' unique keys: organizations by domain, then contact
//! points by (kind, value). Concurrent batches naming the same new domains
//! and addresses in different orders therefore wait for one another instead
//! of deadlocking; the loser of a race adopts the winner's rows, as before.
//! Our own addresses are never a customer's contact point, and our own
//! domains never a customer organization.

use super::lookup::{self, Known};
use super::StoreError;
use crate::identity::{ContactPoint, FreeMail, OwnAddresses, RegistrableDomain};
use crate::model::{Prepared, PreparedMessage};
use sqlx::any::Any;
use sqlx::{Row, Transaction};
use std::collections::{BTreeSet, HashMap, HashSet};

type Tx<'a> = Transaction<'a, Any>;

/// What resolving requesters needs from the configuration.
#[derive(Clone, Copy)]
pub struct Policy<'a> {
    /// The desk's own addresses and domains: never a customer's.
    pub own: &'a OwnAddresses,
    /// Domains whose users are not one organization.
    pub free_mail: &'a FreeMail,
    /// Create an organization for a new sender's domain.
    pub auto_create_orgs: bool,
    /// The desk's agents by configuration: never a customer organization's.
    pub agents: &'a crate::identity::Agents,
}

/// A contact point's unique key: (kind, value).
pub(crate) type Key = (String, String);

pub(crate) fn key(c: &ContactPoint) -> Key {
    (c.kind().as_str().to_string(), c.value().to_string())
}

/// A user and its organization.
pub(super) type Requester = (i64, Option<i64>);

/// Who a new contact point is planned for.
#[derive(Debug, Clone, Copy)]
enum Owner {
    /// A stored user.
    Stored(Requester),
    /// The n-th user this batch creates.
    New(usize),
}

/// Whom a message was written by, as planned.
#[derive(Debug, Clone)]
enum Author {
    Planned(Owner),
    /// The owner of a contact point an earlier message of the batch adds.
    Via(Key),
}

/// A user this batch creates.
struct NewUser {
    name: String,
    org_domain: Option<RegistrableDomain>,
    /// Its row once inserted; the winner's once it gave way.
    row: Option<Requester>,
    gave_way: bool,
}

/// A new contact point, in the order the batch met it.
struct NewContact<'m> {
    key: Key,
    point: &'m ContactPoint,
    owner: Owner,
    inserted: bool,
}

/// The contact points of `m` that may be a customer's (not one of ours).
fn theirs<'a>(
    s: &'a Policy<'_>,
    m: &'a PreparedMessage,
) -> impl Iterator<Item = &'a ContactPoint> + 'a {
    let own = &s.own;
    m.contacts
        .iter()
        .filter(move |c| !matches!(c, ContactPoint::Email(e) if own.is_ours(e)))
}

/// The requester of every item the walk will store, in item order (None for
/// quarantine records and duplicates, which the walk skips).
pub(super) async fn resolve(
    tx: &mut Tx<'_>,
    s: &Policy<'_>,
    known: &mut Known,
    items: &[Prepared],
    now: i64,
) -> Result<Vec<Option<Requester>>, StoreError> {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut planned: HashMap<Key, Owner> = HashMap::new();
    let mut contacts: Vec<NewContact> = Vec::new();
    let mut users: Vec<NewUser> = Vec::new();
    let mut authors: Vec<Option<Author>> = Vec::with_capacity(items.len());
    // Mail held for review (before this batch, unless being released, or
    // earlier in it) acts as nobody: no user comes from it, nor from a kept
    // bounce. The walk in `ingest.rs` applies the same rule.
    let mut held: HashSet<&str> = items
        .iter()
        .filter_map(|p| match p {
            Prepared::Message(m) => Some(m.message_id.as_str()),
            _ => None,
        })
        .filter(|mid| {
            known
                .review
                .get(*mid)
                .is_some_and(|(_, st)| st != "releasing")
        })
        .collect();
    for item in items {
        if let Prepared::Review(r) = item {
            held.insert(r.message_id.as_str());
        }
        let m = match item {
            Prepared::Message(m)
                if !known.message_ids.contains_key(&m.message_id)
                    && !held.contains(m.message_id.as_str())
                    && !known.kept.contains(&m.message_id)
                    && seen.insert(m.message_id.as_str()) =>
            {
                m.as_ref()
            }
            _ => {
                authors.push(None);
                continue;
            }
        };
        let found = theirs(s, m).find_map(|c| {
            let k = key(c);
            match known.users.get(&k) {
                Some(&r) => Some(Author::Planned(Owner::Stored(r))),
                None => planned.contains_key(&k).then_some(Author::Via(k)),
            }
        });
        let (author, owner) = match found {
            Some(a @ Author::Planned(o)) => (a, o),
            Some(Author::Via(k)) => {
                let o = planned[&k];
                (Author::Via(k), o)
            }
            None => {
                users.push(new_user(s, m));
                let o = Owner::New(users.len() - 1);
                (Author::Planned(o), o)
            }
        };
        for c in theirs(s, m) {
            let k = key(c);
            if !known.users.contains_key(&k) && !planned.contains_key(&k) {
                planned.insert(k.clone(), owner);
                contacts.push(NewContact {
                    key: k,
                    point: c,
                    owner,
                    inserted: false,
                });
            }
        }
        authors.push(Some(author));
    }

    // Organizations, by domain.
    let domains: BTreeSet<&RegistrableDomain> =
        users.iter().filter_map(|u| u.org_domain.as_ref()).collect();
    for d in domains {
        lookup::organization_for_domain(tx, known, d, s.auto_create_orgs, now).await?;
    }
    // Users: no unique key, so any order.
    for u in &mut users {
        let org = u
            .org_domain
            .as_ref()
            .and_then(|d| known.domains.get(d.as_str()).copied().flatten());
        let id: i64 = sqlx::query(
            "INSERT INTO users (name, organization_id, created_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(&u.name)
        .bind(org)
        .bind(now)
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
        known.new_users.insert(id, None);
        u.row = Some((id, org));
    }
    // Contact points, by (kind, value).
    let mut by_key: Vec<usize> = (0..contacts.len()).collect();
    by_key.sort_by(|a, b| contacts[*a].key.cmp(&contacts[*b].key));
    for i in by_key {
        let c = &mut contacts[i];
        c.inserted = insert_identity(tx, known, &mut users, c, now).await?;
    }
    // A new user's first address is the first one the batch gave it.
    for c in contacts.iter().filter(|c| c.inserted) {
        if let (ContactPoint::Email(e), Some(&(id, _))) = (c.point, known.users.get(&c.key)) {
            if let Some(first @ None) = known.new_users.get_mut(&id) {
                *first = Some(e.as_str().to_string());
            }
        }
    }
    Ok(authors
        .into_iter()
        .map(|a| match a? {
            Author::Planned(o) => Some(row_of(&users, o)),
            Author::Via(k) => known.users.get(&k).copied(),
        })
        .collect())
}

fn row_of(users: &[NewUser], o: Owner) -> Requester {
    match o {
        Owner::Stored(r) => r,
        Owner::New(i) => users[i]
            .row
            .expect("users are inserted before contact points"),
    }
}

/// The user a message that names no known contact point creates: named by
/// the sender, in the organization of its first address's domain unless
/// that is a free-mail domain or ours.
fn new_user(s: &Policy<'_>, m: &PreparedMessage) -> NewUser {
    let org_domain = theirs(s, m)
        .find_map(|c| match c {
            ContactPoint::Email(e) => Some(e),
            _ => None,
        })
        .filter(|e| !s.agents.is_agent(e))
        .and_then(|e| RegistrableDomain::of(e.domain()))
        .filter(|d| !s.free_mail.contains(d) && !s.own.owns_domain(d));
    let name = m.sender_name.clone().unwrap_or_else(|| {
        theirs(s, m)
            .next()
            .map(|c| c.value().to_string())
            .unwrap_or_default()
    });
    NewUser {
        name,
        org_domain,
        row: None,
        gave_way: false,
    }
}

/// Attach one new contact point to its planned owner. When another
/// transaction created it first, its owner keeps it; a user created by this
/// batch gives way to that owner, with the contact points it already has.
/// Returns whether the row was inserted.
async fn insert_identity(
    tx: &mut Tx<'_>,
    known: &mut Known,
    users: &mut [NewUser],
    c: &NewContact<'_>,
    now: i64,
) -> Result<bool, StoreError> {
    let row = row_of(users, c.owner);
    let domain = match c.point {
        ContactPoint::Email(e) => RegistrableDomain::of(e.domain()).map(|d| d.as_str().to_string()),
        _ => None,
    };
    let inserted = sqlx::query(
        "INSERT INTO identities (user_id, kind, value, domain, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (kind, value) DO NOTHING RETURNING user_id",
    )
    .bind(row.0)
    .bind(&c.key.0)
    .bind(&c.key.1)
    .bind(domain)
    .bind(now)
    .fetch_optional(&mut **tx)
    .await?
    .is_some();
    if inserted {
        known.users.insert(c.key.clone(), row);
        return Ok(true);
    }
    let owner = lookup::identity_owner(tx, c.point).await?;
    if let Owner::New(i) = c.owner {
        if !users[i].gave_way {
            let loser = row.0;
            sqlx::query("UPDATE identities SET user_id = $1 WHERE user_id = $2")
                .bind(owner.0)
                .bind(loser)
                .execute(&mut **tx)
                .await?;
            sqlx::query("DELETE FROM users WHERE id = $1")
                .bind(loser)
                .execute(&mut **tx)
                .await?;
            known.new_users.remove(&loser);
            for v in known.users.values_mut().filter(|v| v.0 == loser) {
                *v = owner;
            }
            users[i].row = Some(owner);
            users[i].gave_way = true;
        }
    }
    known.users.insert(c.key.clone(), owner);
    Ok(false)
}
