//! Set-based look-ups for a batch: what the database already knows about the
//! Message-IDs, contact points, references and tickets a batch mentions.

use super::sql::select_in;
use super::{get_i64, get_opt_i64, get_str, now_ms, placeholders, StoreError};
use crate::identity::{ContactPoint, EmailAddress, RegistrableDomain};
use crate::model::{PreparedMessage, TicketStatus};
use crate::thread::TicketState;
use sqlx::any::Any;
use sqlx::Transaction;
use std::collections::HashMap;

type Tx<'a> = Transaction<'a, Any>;

/// What the batch knows, updated as the batch is walked.
#[derive(Default)]
pub struct Known {
    /// Message-ID → (ticket, comment) of stored messages.
    pub message_ids: HashMap<String, (i64, Option<i64>)>,
    /// (kind, value) → (user, organization).
    pub users: HashMap<(String, String), (i64, Option<i64>)>,
    /// Referenced Message-ID (inbound or ours) → its ticket.
    pub refs: HashMap<String, Ref>,
    pub tickets: HashMap<i64, TicketState>,
    /// `source:conversation` → ticket.
    pub conversations: HashMap<String, i64>,
    /// Registrable domain → organization (None: known to have none).
    pub domains: HashMap<String, Option<i64>>,
    /// What notifications need of the batch's tickets.
    pub meta: HashMap<i64, TicketMeta>,
    /// Users this batch created → the first email address each was given.
    pub new_users: HashMap<i64, Option<String>>,
    /// Users the admin API or CLI marked as agents.
    pub agent_users: std::collections::HashSet<i64>,
    /// Message-ID → (review entry, status) of mail in the review queue.
    pub review: HashMap<String, (i64, String)>,
    /// Message-ID → the tickets whose stored messages name it (In-Reply-To
    /// or References), oldest first.
    pub named: HashMap<String, Vec<i64>>,
    /// Closed ticket → its newest follow-up that is not closed.
    pub open_follow_up: HashMap<i64, i64>,
    /// Message-IDs of kept bounces (stored before, or bound to be kept in
    /// this batch).
    pub kept: std::collections::HashSet<String>,
}

/// A Message-ID the store knows: its ticket, and whether it is one of our
/// own notifications'.
#[derive(Debug, Clone, Copy)]
pub struct Ref {
    pub ticket: i64,
    pub ours: bool,
}

/// A ticket's channel and tags (for trigger conditions and `set` actions).
#[derive(Debug, Clone, Default)]
pub struct TicketMeta {
    pub channel: String,
    pub tags: String,
}

fn uniq(mut v: Vec<String>) -> Vec<String> {
    v.sort_unstable();
    v.dedup();
    v
}

/// Load everything a batch needs with a handful of queries; `held` are the
/// Message-IDs of the batch's mail bound for review.
pub async fn load(
    tx: &mut Tx<'_>,
    msgs: &[&PreparedMessage],
    held: &[&str],
) -> Result<Known, StoreError> {
    let mut k = Known::default();
    // A forward's customer message may be split off in the store: what it
    // names is looked up with the batch.
    let forwarded = || {
        msgs.iter().filter_map(|m| match &m.forward {
            Some(crate::model::ForwardIn::Original(f)) => Some(f),
            _ => None,
        })
    };
    let mut mids: Vec<String> = msgs.iter().map(|m| m.message_id.clone()).collect();
    mids.extend(forwarded().map(|f| f.message_id.clone()));
    mids.extend(held.iter().map(|m| m.to_string()));
    let mids = uniq(mids);
    // Stored and reviewed mail in one statement: a message is stored, in
    // review or rejected, once.
    for chunk in mids.chunks(500) {
        let mut marks = super::sql::Marks::new(tx);
        let (a, b, c) = (
            marks.list(chunk.len()),
            marks.list(chunk.len()),
            marks.list(chunk.len()),
        );
        let sql = format!(
            "SELECT message_id, ticket_id, id, '' AS status FROM comments WHERE message_id IN ({a}) \
             UNION ALL SELECT message_id, 0 AS ticket_id, id, status FROM review WHERE message_id IN ({b}) \
             UNION ALL SELECT message_id, 0 AS ticket_id, id, 'kept' AS status FROM bounces WHERE message_id IN ({c})"
        );
        let mut q = sqlx::query(&sql);
        for m in chunk.iter().chain(chunk).chain(chunk) {
            q = q.bind(m.clone());
        }
        for r in q.fetch_all(&mut **tx).await? {
            let (mid, id) = (get_str(&r, "message_id"), get_i64(&r, "id"));
            match get_str(&r, "status") {
                st if st.is_empty() => {
                    k.message_ids
                        .insert(mid, (get_i64(&r, "ticket_id"), Some(id)));
                }
                st if st == "kept" => {
                    k.kept.insert(mid);
                }
                st => {
                    k.review.insert(mid, (id, st));
                }
            }
        }
    }
    let values = uniq(
        msgs.iter()
            .flat_map(|m| m.contacts.iter().map(|c| c.value().to_string()))
            .chain(forwarded().map(|f| f.contact.value().to_string()))
            .collect(),
    );
    for r in select_in(tx, "SELECT i.kind, i.value, i.user_id, u.organization_id, u.is_agent FROM identities i JOIN users u ON u.id = i.user_id WHERE i.value IN", "", &values)
    .await?
    {
        let user = get_i64(&r, "user_id");
        if get_i64(&r, "is_agent") != 0 {
            k.agent_users.insert(user);
        }
        k.users.insert((get_str(&r, "kind"), get_str(&r, "value")), (user, get_opt_i64(&r, "organization_id")));
    }
    let refs = uniq(
        msgs.iter()
            .flat_map(|m| m.refs.iter().cloned())
            .chain(forwarded().map(|f| f.message_id.clone()))
            .collect(),
    );
    // A stored message's id leads to its ticket (`comments`; databases
    // made before migration 0025 also have it in `thread_refs`, with the
    // ids of notifications queued before migration 0007); ours are the
    // outbox's own, found by the ticket they name.
    for chunk in refs.chunks(500) {
        let mut marks = super::sql::Marks::new(tx);
        let (a, b) = (marks.list(chunk.len()), marks.list(chunk.len()));
        let sql = format!(
            "SELECT message_id, ticket_id FROM comments WHERE message_id IN ({a}) \
             UNION ALL SELECT message_id, ticket_id FROM thread_refs WHERE message_id IN ({b})"
        );
        let mut q = sqlx::query(&sql);
        for m in chunk.iter().chain(chunk) {
            q = q.bind(m.clone());
        }
        for r in q.fetch_all(&mut **tx).await? {
            let ticket = get_i64(&r, "ticket_id");
            k.refs.entry(get_str(&r, "message_id")).or_insert(Ref {
                ticket,
                ours: false,
            });
        }
    }
    for r in super::outbox_write::by_message_id(tx, "message_id, ticket_id", &refs).await? {
        let ticket = get_i64(&r, "ticket_id");
        k.refs
            .insert(get_str(&r, "message_id"), Ref { ticket, ours: true });
    }
    // Names stored messages hold: the batch's own ids (a late parent) and
    // the ids it names (a shared ancestor).
    let names = uniq(
        mids.iter()
            .chain(refs.iter().filter(|r| !k.refs.contains_key(*r)))
            .cloned()
            .collect(),
    );
    super::links::load_names(tx, &mut k, &names).await?;
    let convs = uniq(
        msgs.iter()
            .filter_map(|m| m.conversation_key.clone())
            .collect(),
    );
    lock_conversations(tx, &convs).await?;
    for r in select_in(
        tx,
        "SELECT id, conversation_key FROM tickets WHERE conversation_key IN",
        "",
        &convs,
    )
    .await?
    {
        k.conversations
            .insert(get_str(&r, "conversation_key"), get_i64(&r, "id"));
    }
    let mut ids: Vec<i64> = k.refs.values().map(|r| r.ticket).collect();
    ids.extend(k.conversations.values().copied());
    ids.extend(msgs.iter().filter_map(|m| m.tag_ticket));
    ids.extend(k.named.values().flatten().copied());
    load_tickets(tx, &mut k, &ids).await?;
    Ok(k)
}

/// The advisory-lock namespace of conversation keys (the first key of the
/// two-key form).
const CONVERSATION_LOCKS: i32 = 0x6b69;

/// PostgreSQL: take the batch's conversation keys in one order (by hash)
/// before reading them, so that concurrent batches opening tickets for the
/// same new conversations wait for one another instead of deadlocking on
/// the tickets' unique conversation index (each would otherwise insert in
/// its own message order). SQLite has one writer and needs none.
async fn lock_conversations(tx: &mut Tx<'_>, keys: &[String]) -> Result<(), StoreError> {
    if keys.is_empty() || tx.backend_name().eq_ignore_ascii_case("sqlite") {
        return Ok(());
    }
    let json = serde_json::to_string(keys).unwrap_or_default();
    sqlx::query(
        "SELECT COUNT(pg_advisory_xact_lock($1, h)) AS n FROM \
         (SELECT DISTINCT hashtext(value) AS h FROM json_array_elements_text($2::json) ORDER BY h) AS s",
    )
    .bind(CONVERSATION_LOCKS)
    .bind(json)
    .fetch_one(&mut **tx)
    .await?;
    Ok(())
}

/// Load ticket states (with participants) into `k`.
pub async fn load_tickets(tx: &mut Tx<'_>, k: &mut Known, ids: &[i64]) -> Result<(), StoreError> {
    let keys = uniq(
        ids.iter()
            .filter(|i| !k.tickets.contains_key(i))
            .map(|i| i.to_string())
            .collect(),
    );
    if keys.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = keys.iter().filter_map(|s| s.parse().ok()).collect();
    let mut closed: Vec<i64> = Vec::new();
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT id, status, public, requester_id, organization_id, channel, tags FROM tickets WHERE id IN ({})",
            placeholders(0, chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for i in chunk {
            q = q.bind(*i);
        }
        for r in q.fetch_all(&mut **tx).await? {
            let id = get_i64(&r, "id");
            k.meta.insert(
                id,
                TicketMeta {
                    channel: get_str(&r, "channel"),
                    tags: get_str(&r, "tags"),
                },
            );
            let status = TicketStatus::from_db(&get_str(&r, "status"));
            if status == TicketStatus::Closed {
                closed.push(id);
            }
            k.tickets.insert(
                id,
                TicketState {
                    id,
                    status,
                    public: get_i64(&r, "public") != 0,
                    requester_id: get_i64(&r, "requester_id"),
                    organization_id: get_opt_i64(&r, "organization_id"),
                    participants: Default::default(),
                },
            );
        }
        let sql = format!(
            "SELECT ticket_id, address FROM ticket_participants WHERE ticket_id IN ({})",
            placeholders(0, chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for i in chunk {
            q = q.bind(*i);
        }
        for r in q.fetch_all(&mut **tx).await? {
            // Rows are stored normalised; parsing again keeps the comparison
            // in today's normal form. One that no longer parses matches nobody.
            let address = EmailAddress::parse(&get_str(&r, "address"));
            if let (Some(t), Ok(a)) = (k.tickets.get_mut(&get_i64(&r, "ticket_id")), address) {
                t.participants.insert(a);
            }
        }
    }
    super::links::load_open_follow_ups(tx, k, &closed).await
}

/// The ticket holding a gateway conversation.
pub async fn ticket_by_conversation(tx: &mut Tx<'_>, key: &str) -> Result<Option<i64>, StoreError> {
    let r = sqlx::query("SELECT id FROM tickets WHERE conversation_key = $1")
        .bind(key)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(r.map(|r| get_i64(&r, "id")))
}

/// The user (and organization) holding a contact point.
pub async fn identity_owner(
    tx: &mut Tx<'_>,
    c: &ContactPoint,
) -> Result<(i64, Option<i64>), StoreError> {
    let r = sqlx::query(
        "SELECT i.user_id, u.organization_id FROM identities i JOIN users u ON u.id = i.user_id WHERE i.kind = $1 AND i.value = $2",
    )
    .bind(c.kind().as_str())
    .bind(c.value())
    .fetch_one(&mut **tx)
    .await?;
    Ok((get_i64(&r, "user_id"), get_opt_i64(&r, "organization_id")))
}

/// The organization owning `domain`, created when allowed. Race-safe: the
/// domain's primary key decides which of two concurrent creators wins.
pub async fn organization_for_domain(
    tx: &mut Tx<'_>,
    k: &mut Known,
    domain: &RegistrableDomain,
    auto_create: bool,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    if let Some(o) = k.domains.get(domain.as_str()) {
        if o.is_some() || !auto_create {
            return Ok(*o);
        }
    }
    let found = domain_owner(tx, domain.as_str()).await?;
    let org = match found {
        Some(o) => Some(o),
        None if auto_create => Some(
            create_organization(
                tx,
                domain.as_str(),
                &[domain.as_str().to_string()],
                true,
                now,
            )
            .await?,
        ),
        None => None,
    };
    k.domains.insert(domain.as_str().to_string(), org);
    Ok(org)
}

pub(crate) async fn domain_owner(tx: &mut Tx<'_>, domain: &str) -> Result<Option<i64>, StoreError> {
    let r = sqlx::query("SELECT organization_id FROM organization_domains WHERE domain = $1")
        .bind(domain)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(r.map(|r| get_i64(&r, "organization_id")))
}

/// Create an organization owning `domains` (`auto`: created for a customer's
/// domain, which may later move to an operator's organization); when another
/// transaction already owns the first domain, that organization is returned.
pub(crate) async fn create_organization(
    tx: &mut Tx<'_>,
    name: &str,
    domains: &[String],
    auto: bool,
    now: i64,
) -> Result<i64, StoreError> {
    use sqlx::Row;
    let id: i64 =
        sqlx::query("INSERT INTO organizations (name, created_at, auto_created) VALUES ($1, $2, $3) RETURNING id")
            .bind(name)
            .bind(if now > 0 { now } else { now_ms() })
            .bind(auto as i64)
            .fetch_one(&mut **tx)
            .await?
            .try_get(0)?;
    for d in domains {
        let inserted = sqlx::query(
            "INSERT INTO organization_domains (domain, organization_id) VALUES ($1, $2) ON CONFLICT (domain) DO NOTHING RETURNING domain",
        )
        .bind(d)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
        if inserted.is_none() {
            let owner = domain_owner(tx, d).await?.unwrap_or(id);
            if domains.len() == 1 {
                sqlx::query("DELETE FROM organizations WHERE id = $1")
                    .bind(id)
                    .execute(&mut **tx)
                    .await?;
                return Ok(owner);
            }
            return Err(StoreError::conflict(format!(
                "domain {d} already belongs to organization {owner}"
            )));
        }
    }
    Ok(id)
}
