//! Threading links that do not depend on arrival order: the ids every stored
//! message names (`thread_names`), the related tickets a message linked
//! without joining them (`ticket_links`), and the open follow-up of a closed
//! ticket.

use super::lookup::{self, Known};
use super::sql::select_in;
use super::write::rows_sql;
use super::{get_i64, get_str, StoreError};
use crate::classify::MailClass;
use crate::model::PreparedMessage;
use crate::thread::{decide, linked_tickets, Author, Decision, TicketState, TicketStatus};
use sqlx::any::Any;
use sqlx::Transaction;

type Tx<'a> = Transaction<'a, Any>;

/// The tickets whose stored messages name any of `ids`, into `k.named`.
pub(super) async fn load_names(
    tx: &mut Tx<'_>,
    k: &mut Known,
    ids: &[String],
) -> Result<(), StoreError> {
    for r in select_in(
        tx,
        "SELECT message_id, ticket_id FROM thread_names WHERE message_id IN",
        "",
        ids,
    )
    .await?
    {
        let list = k.named.entry(get_str(&r, "message_id")).or_default();
        list.push(get_i64(&r, "ticket_id"));
        list.sort_unstable();
    }
    Ok(())
}

/// The newest follow-up of each closed ticket that is not closed itself
/// (loaded too): a reply to the closed ticket joins it.
pub(super) async fn load_open_follow_ups(
    tx: &mut Tx<'_>,
    k: &mut Known,
    closed: &[i64],
) -> Result<(), StoreError> {
    if closed.is_empty() {
        return Ok(());
    }
    let mut found = Vec::new();
    for r in select_in(
        tx,
        "SELECT id, follow_up_of FROM tickets WHERE status <> 'closed' AND follow_up_of IN",
        "",
        closed,
    )
    .await?
    {
        let (id, of) = (get_i64(&r, "id"), get_i64(&r, "follow_up_of"));
        let newest = k.open_follow_up.entry(of).or_insert(id);
        *newest = (*newest).max(id);
        found.push(id);
    }
    // Follow-ups are never closed here, so this loads them and stops.
    Box::pin(super::lookup::load_tickets(tx, k, &found)).await
}

/// The names the batch's stored messages hold, in key order.
pub(super) async fn insert_names(
    tx: &mut Tx<'_>,
    rows: &[(String, i64)],
) -> Result<(), StoreError> {
    let head = "INSERT INTO thread_names (message_id, ticket_id)";
    let tail = "ON CONFLICT (message_id, ticket_id) DO NOTHING";
    super::sql::insert_pairs(tx, (head, "", tail), rows).await
}

/// Record related pairs (smaller id first); returns the pairs that were not
/// linked before, in key order.
pub(super) async fn insert_links(
    tx: &mut Tx<'_>,
    pairs: &std::collections::BTreeSet<(i64, i64)>,
    now: i64,
) -> Result<Vec<(i64, i64)>, StoreError> {
    let pairs: Vec<&(i64, i64)> = pairs.iter().collect();
    let mut new = Vec::new();
    for chunk in pairs.chunks(300) {
        let sql = format!(
            "INSERT INTO ticket_links (ticket_id, related_id, created_at) VALUES {} \
             ON CONFLICT (ticket_id, related_id) DO NOTHING RETURNING ticket_id, related_id",
            rows_sql(tx, chunk.len(), 3)
        );
        let mut q = sqlx::query(&sql);
        for (a, b) in chunk.iter().copied() {
            q = q.bind(*a).bind(*b).bind(now);
        }
        for r in q.fetch_all(&mut **tx).await? {
            new.push((get_i64(&r, "ticket_id"), get_i64(&r, "related_id")));
        }
    }
    new.sort_unstable();
    Ok(new)
}

/// The ticket a message refers to, whether the link itself vouches for the
/// sender (a gateway conversation does; references and tags do not), and
/// the other tickets it links (see [`linked_tickets`] for the order).
pub(super) struct Candidate {
    pub ticket: Option<TicketState>,
    pub trusted: bool,
    pub related: Vec<i64>,
}

pub(super) async fn candidate(
    tx: &mut Tx<'_>,
    known: &mut Known,
    m: &PreparedMessage,
) -> Result<Candidate, StoreError> {
    if let Some(k) = &m.conversation_key {
        let id = known.conversations.get(k).copied();
        return Ok(Candidate {
            ticket: id.and_then(|id| known.tickets.get(&id).cloned()),
            trusted: true,
            related: Vec::new(),
        });
    }
    let none: &[i64] = &[];
    let mut linked = linked_tickets(
        m.refs
            .iter()
            .filter_map(|r| known.refs.get(r).map(|x| x.ticket)),
        m.tag_ticket,
        known.named.get(&m.message_id).map_or(none, Vec::as_slice),
        m.refs
            .iter()
            .flat_map(|r| known.named.get(r).map_or(none, Vec::as_slice))
            .copied(),
    )
    .into_iter();
    let Some(id) = linked.next() else {
        return Ok(Candidate {
            ticket: None,
            trusted: false,
            related: Vec::new(),
        });
    };
    if !known.tickets.contains_key(&id) {
        lookup::load_tickets(tx, known, &[id]).await?;
    }
    Ok(Candidate {
        ticket: known.tickets.get(&id).cloned(),
        trusted: false,
        related: linked.collect(),
    })
}

/// A message bound to open a new ticket because it replies to a closed one
/// joins that ticket's open follow-up instead when its sender is a
/// participant of the follow-up, or of the closed ticket (the decision's
/// `follow_up_of` tells so): one follow-up per closed ticket and thread.
pub(super) fn into_follow_up(
    known: &Known,
    closed: Option<&TicketState>,
    decision: &Decision,
    author: Author<'_>,
    class: MailClass,
) -> Option<(i64, Decision)> {
    let Decision::NewTicket { follow_up_of } = *decision else {
        return None;
    };
    let c = closed.filter(|c| c.status == TicketStatus::Closed)?;
    let f = known.tickets.get(known.open_follow_up.get(&c.id)?)?;
    let d = decide(Some(f), author, follow_up_of.is_some(), class);
    match d {
        Decision::Append { flag: None, .. } => Some((f.id, d)),
        _ => None,
    }
}
