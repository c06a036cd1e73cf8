//! The facts of events as trigger planning needs them, read from the
//! database: for the events a batch could not tell from memory, for events
//! recorded outside a batch (publishing a ticket), and, in debug builds, to
//! check what memory told.

use super::sql::select_in;
use super::{get_i64, get_opt_i64, get_opt_str, get_str, StoreError};
use crate::model::{Channel, CommentFacts, EventFacts, EventKind, Needs, TicketStatus};
use sqlx::any::{Any, AnyRow};
use sqlx::Transaction;
use std::collections::HashMap;

type Tx<'a> = Transaction<'a, Any>;

/// A comment's facts from a row with columns `c_id`, `class`, `c_public`,
/// `flag`, `c_mid`, `c_channel`, `c_role` and `c_fwd`.
pub(super) fn comment_of(r: &AnyRow) -> CommentFacts {
    CommentFacts {
        id: get_opt_i64(r, "c_id"),
        class: get_opt_str(r, "class").unwrap_or_else(|| "normal".into()),
        public: get_i64(r, "c_public") != 0,
        flag: get_opt_str(r, "flag").is_some(),
        message_id: get_opt_str(r, "c_mid"),
        email: get_opt_str(r, "c_channel").is_some_and(|c| Channel::named(&c).is_email()),
        agent: get_opt_str(r, "c_role").as_deref() == Some("agent"),
        forwarded: get_opt_str(r, "c_fwd").is_some(),
    }
}

/// What the conditions, recipients and headers need, by event id; the
/// requester's address is their first email identity.
const EVENTS_SQL: &str = "SELECT e.id AS event_id, e.kind, e.ticket_id, t.status, t.channel, t.public AS ticket_public, \
    t.created_at AS t_created, t.tags, u.created_at AS u_created, o.name AS org_name, \
    (SELECT i.value FROM identities i WHERE i.user_id = t.requester_id AND i.kind = 'email' ORDER BY i.id LIMIT 1) AS r_email, \
    c.id AS c_id, c.class, c.public AS c_public, c.flag, c.message_id AS c_mid, c.channel AS c_channel, c.role AS c_role, c.forwarded_by AS c_fwd \
    FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id JOIN users u ON u.id = t.requester_id \
    LEFT JOIN organizations o ON o.id = t.organization_id \
    LEFT JOIN comments c ON c.id = e.comment_id \
    WHERE e.kind IN ('ticket_created', 'comment_added', 'ticket_published') AND e.id IN";

/// A row of `EVENTS_SQL`.
fn facts_of(r: &AnyRow) -> Option<EventFacts> {
    Some(EventFacts {
        event_id: get_i64(r, "event_id"),
        kind: EventKind::parse(&get_str(r, "kind"))?,
        ticket_id: get_i64(r, "ticket_id"),
        status: TicketStatus::from_db(&get_str(r, "status")),
        channel: get_str(r, "channel"),
        ticket_public: get_i64(r, "ticket_public") != 0,
        tags: get_str(r, "tags"),
        requester_is_new: get_i64(r, "u_created") >= get_i64(r, "t_created"),
        requester_email: get_opt_str(r, "r_email"),
        requester_wrote: false,
        org_name: get_opt_str(r, "org_name"),
        comment: comment_of(r),
        unknown: Needs::default(),
    })
}

/// Every event of `ids`, from the database.
pub(super) async fn load(tx: &mut Tx<'_>, ids: &[i64]) -> Result<Vec<EventFacts>, StoreError> {
    let rows = select_in(tx, EVENTS_SQL, "ORDER BY e.id", ids).await?;
    Ok(rows.iter().filter_map(facts_of).collect())
}

/// `load`, by event id.
async fn load_by_id(tx: &mut Tx<'_>, ids: &[i64]) -> Result<HashMap<i64, EventFacts>, StoreError> {
    Ok(load(tx, ids)
        .await?
        .into_iter()
        .map(|f| (f.event_id, f))
        .collect())
}

/// The batch's events with every fact the triggers need: what memory could
/// not tell is read in one query for just the events that need it (an event
/// gone from the database is dropped). Sorted by event id.
pub(super) async fn complete(
    tx: &mut Tx<'_>,
    needs: &(dyn Fn(EventKind) -> Needs + Sync),
    mut events: Vec<EventFacts>,
) -> Result<Vec<EventFacts>, StoreError> {
    let missing: Vec<i64> = events
        .iter()
        .filter(|e| e.unknown.meets(needs(e.kind)))
        .map(|e| e.event_id)
        .collect();
    if !missing.is_empty() {
        let db = load_by_id(tx, &missing).await?;
        events.retain_mut(|e| {
            if !e.unknown.meets(needs(e.kind)) {
                return true;
            }
            let Some(d) = db.get(&e.event_id) else {
                return false;
            };
            // Memory is exact for what it knows (the address a requester
            // wrote from); the database fills in the rest.
            let u = std::mem::take(&mut e.unknown);
            if u.requester_email {
                e.requester_email = d.requester_email.clone();
            }
            if u.org_name {
                e.org_name = d.org_name.clone();
            }
            if u.requester_is_new {
                e.requester_is_new = d.requester_is_new;
            }
            true
        });
    }
    events.sort_by_key(|f| f.event_id);
    #[cfg(debug_assertions)]
    agrees_with_database(tx, &events).await?;
    Ok(events)
}

/// Debug builds (every test run) check that the facts told from memory are
/// what the database says, but for facts still unknown (no trigger needed
/// them), the address a requester wrote from (deliberately preferred to
/// their first one) and `requester_is_new` for a requester the database
/// cannot tell apart from one created in the same millisecond.
#[cfg(debug_assertions)]
async fn agrees_with_database(tx: &mut Tx<'_>, facts: &[EventFacts]) -> Result<(), StoreError> {
    let ids: Vec<i64> = facts.iter().map(|f| f.event_id).collect();
    let db = load_by_id(tx, &ids).await?;
    for f in facts {
        let d = &db[&f.event_id];
        let key = |e: &EventFacts, org: bool| {
            format!(
                "{:?} {} {} {} {} {:?} {:?} {:?} {} {} {} {:?} {}",
                e.kind,
                e.ticket_id,
                e.status,
                e.channel,
                e.ticket_public,
                e.org_name.as_ref().filter(|_| org),
                e.tags,
                e.comment.id,
                e.comment.class,
                e.comment.public,
                e.comment.flag,
                e.comment.message_id,
                e.comment.email
            )
        };
        let org = !f.unknown.org_name;
        assert_eq!(
            key(f, org),
            key(d, org),
            "event {}: memory vs database",
            f.event_id
        );
        if !f.requester_wrote && !f.unknown.requester_email {
            assert_eq!(f.requester_email, d.requester_email, "event {}", f.event_id);
        }
        if f.requester_is_new && !f.unknown.requester_is_new {
            assert!(d.requester_is_new, "event {}: requester is new", f.event_id);
        }
    }
    Ok(())
}
