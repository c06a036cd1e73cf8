//! The outbox on the ingest path: what planning needs to read (published
//! tickets' first comments and the triggers already fired for them, our own
//! notifications by Message-ID) and writing what was planned (ticket
//! changes of `set` actions; the rows themselves in `outbox_insert`).

use super::sql::{select_in, Marks};
use super::{get_i64, get_str, StoreError};
use crate::model::{EventFacts, EventKind, PublishedTickets, TicketChanges};
use sqlx::any::{Any, AnyRow};
use sqlx::Transaction;

type Tx<'a> = Transaction<'a, Any>;

/// The first comment of published tickets (their events carry no comment).
const FIRST_COMMENTS_SQL: &str = "SELECT ticket_id, id AS c_id, class, public AS c_public, flag, message_id AS c_mid, channel AS c_channel, role AS c_role, forwarded_by AS c_fwd \
    FROM comments WHERE id IN (SELECT MIN(id) FROM comments WHERE ticket_id IN";

/// The outbox rows (columns `cols`) whose Message-ID is one of `mids`. Our
/// Message-IDs name their ticket, and the look-up goes through the ticket
/// index (the outbox keeps no index on Message-IDs, which would cost every
/// queued notification a random B-tree insert); anybody else's Message-ID
/// costs nothing.
pub(super) async fn by_message_id(
    tx: &mut Tx<'_>,
    cols: &str,
    mids: &[String],
) -> Result<Vec<AnyRow>, StoreError> {
    let mut ours: Vec<(i64, &String)> = mids
        .iter()
        .filter_map(|m| crate::model::ticket_of_message_id(m).map(|t| (t, m)))
        .collect();
    ours.sort_unstable();
    ours.dedup();
    let mut rows = Vec::new();
    for chunk in ours.chunks(250) {
        let mut tickets: Vec<i64> = chunk.iter().map(|(t, _)| *t).collect();
        tickets.dedup();
        let mut m = Marks::new(tx);
        let sql = format!(
            "SELECT {cols} FROM outbox WHERE ticket_id IN ({}) AND message_id IN ({})",
            m.list(tickets.len()),
            m.list(chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for t in &tickets {
            q = q.bind(*t);
        }
        for (_, mid) in chunk {
            q = q.bind(mid.as_str());
        }
        rows.extend(q.fetch_all(&mut **tx).await?);
    }
    Ok(rows)
}

/// For the `ticket_published` events among `events`: each ticket's first
/// comment and the triggers that already fired for it.
pub(super) async fn published_tickets(
    tx: &mut Tx<'_>,
    events: &[EventFacts],
) -> Result<PublishedTickets, StoreError> {
    let published: Vec<i64> = events
        .iter()
        .filter(|e| e.kind == EventKind::TicketPublished)
        .map(|e| e.ticket_id)
        .collect();
    let mut out = PublishedTickets::default();
    if published.is_empty() {
        return Ok(out);
    }
    for r in select_in(tx, FIRST_COMMENTS_SQL, "GROUP BY ticket_id)", &published).await? {
        out.first_comment
            .insert(get_i64(&r, "ticket_id"), super::event_facts::comment_of(&r));
    }
    let head = "SELECT ticket_id, trigger_name FROM outbox WHERE ticket_id IN";
    for r in select_in(tx, head, "", &published).await? {
        out.fired
            .insert((get_i64(&r, "ticket_id"), get_str(&r, "trigger_name")));
    }
    Ok(out)
}

/// Apply `set` actions: per ticket, its changes and its tags before them.
pub(super) async fn apply_changes(
    tx: &mut Tx<'_>,
    changes: &[(i64, TicketChanges, String)],
    now: i64,
) -> Result<(), StoreError> {
    let mut sorted: Vec<&(i64, TicketChanges, String)> = changes.iter().collect();
    // Ticket rows in id order, like every other batch write.
    sorted.sort_by_key(|c| c.0);
    for (ticket, c, old) in sorted {
        let mut tags: Vec<String> = old.split_whitespace().map(str::to_string).collect();
        for t in &c.tags {
            if !tags.contains(t) {
                tags.push(t.clone());
            }
        }
        sqlx::query("UPDATE tickets SET assignee = COALESCE($1, assignee), group_name = COALESCE($2, group_name), tags = $3, updated_at = $4 WHERE id = $5")
            .bind(c.assignee.clone()).bind(c.group.clone()).bind(tags.join(" ")).bind(now).bind(*ticket)
            .execute(&mut **tx).await?;
    }
    Ok(())
}
