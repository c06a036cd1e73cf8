//! The outbox: notifications written in the transaction of the event that
//! caused them. Cheap enough to never slow ingestion: the store hands over
//! the batch's events with what it knows of them in memory (`facts`), and
//! multi-row inserts write rows that name their template (trigger and
//! action) instead of carrying rendered text. The sender renders them and
//! puts the loop brakes on at send time (see `compose`, `brakes`). A row's
//! Message-ID is random and names its ticket: that is how a customer's reply
//! finds its ticket, and the row is found through the ticket index.

use super::facts::{self, CommentFacts, EventFacts};
use super::triggers::{select, EventContext, EventKind, RequesterVars, TicketChanges, TicketVars};
use super::NotifySettings;
use crate::store::{get_i64, get_str, StoreError};
use sqlx::any::{Any, AnyRow};
use sqlx::Transaction;
use std::collections::{HashMap, HashSet};

type Tx<'a> = Transaction<'a, Any>;

/// One outbox row to insert.
pub(super) struct OutboxRow {
    pub(super) ticket_id: i64,
    pub(super) event_id: i64,
    pub(super) comment_id: Option<i64>,
    pub(super) trigger: String,
    pub(super) action: i64,
    pub(super) to: String,
    pub(super) message_id: String,
    pub(super) status: &'static str,
    pub(super) reason: Option<String>,
}

/// The first comment of published tickets (their events carry no comment).
const FIRST_COMMENTS_SQL: &str = "SELECT ticket_id, id AS c_id, class, public AS c_public, flag, message_id AS c_mid, channel AS c_channel \
    FROM comments WHERE id IN (SELECT MIN(id) FROM comments WHERE ticket_id IN";

/// Bind markers for a transaction's database, numbered in text order:
/// `$1, $2, …` on PostgreSQL, `?` on SQLite, where `$n` are named parameters
/// and preparing and binding N of them costs N² (10 ms for a 140-row insert).
pub(super) struct Marks {
    sqlite: bool,
    n: usize,
}

impl Marks {
    pub(super) fn new(tx: &Tx<'_>) -> Marks {
        Marks {
            sqlite: tx.backend_name().eq_ignore_ascii_case("sqlite"),
            n: 0,
        }
    }

    /// The next marker.
    pub(super) fn next(&mut self) -> String {
        self.n += 1;
        if self.sqlite {
            "?".into()
        } else {
            format!("${}", self.n)
        }
    }

    /// `k` markers separated by commas.
    pub(super) fn list(&mut self, k: usize) -> String {
        (0..k).map(|_| self.next()).collect::<Vec<_>>().join(", ")
    }
}

/// `SELECT … {head} (keys…) {tail}` in chunks of 500 keys.
pub(super) async fn select_in<T>(
    tx: &mut Tx<'_>,
    head: &str,
    tail: &str,
    keys: &[T],
) -> Result<Vec<AnyRow>, StoreError>
where
    T: for<'q> sqlx::Encode<'q, Any> + sqlx::Type<Any> + Clone + Send,
{
    let mut rows = Vec::new();
    for chunk in keys.chunks(500) {
        let sql = format!("{head} ({}) {tail}", Marks::new(tx).list(chunk.len()));
        let mut q = sqlx::query(&sql);
        for k in chunk {
            q = q.bind(k.clone());
        }
        rows.extend(q.fetch_all(&mut **tx).await?);
    }
    Ok(rows)
}

/// The outbox rows (columns `cols`) whose Message-ID is one of `mids`. Our
/// Message-IDs name their ticket, and the look-up goes through the ticket
/// index (the outbox keeps no index on Message-IDs, which would cost every
/// queued notification a random B-tree insert); anybody else's Message-ID
/// costs nothing.
pub(crate) async fn by_message_id(
    tx: &mut Tx<'_>,
    cols: &str,
    mids: &[String],
) -> Result<Vec<AnyRow>, StoreError> {
    let mut ours: Vec<(i64, &String)> = mids
        .iter()
        .filter_map(|m| super::ticket_of_message_id(m).map(|t| (t, m)))
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

/// Queue the notifications `event_ids` call for (read from the database)
/// and apply `set` actions.
pub(crate) async fn enqueue(
    tx: &mut Tx<'_>,
    n: &NotifySettings,
    event_ids: &[i64],
    now: i64,
) -> Result<(), StoreError> {
    if n.triggers.triggers.is_empty() || event_ids.is_empty() {
        return Ok(());
    }
    let events = facts::load(tx, event_ids).await?;
    queue(tx, n, events, now).await
}

/// The same for a batch's events as the store knows them in memory (only
/// facts it could not tell are read from the database), and mark the
/// recipients of `bounced` (our Message-IDs found in DSNs) undeliverable.
pub(crate) async fn enqueue_batch(
    tx: &mut Tx<'_>,
    n: &NotifySettings,
    events: Vec<EventFacts>,
    bounced: &[String],
    now: i64,
) -> Result<(), StoreError> {
    if !bounced.is_empty() {
        super::bounce::mark_bounced(tx, n, bounced, now).await?;
    }
    if n.triggers.triggers.is_empty() || events.is_empty() {
        return Ok(());
    }
    let events = facts::complete(tx, &n.triggers, events).await?;
    queue(tx, n, events, now).await
}

/// Plan every event (in event order), apply `set` actions, put the brakes on
/// and write the outbox rows.
async fn queue(
    tx: &mut Tx<'_>,
    n: &NotifySettings,
    events: Vec<EventFacts>,
    now: i64,
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    // Triggers already fired for published tickets (the skipped acknowledgement fires once).
    let published: Vec<i64> = events
        .iter()
        .filter(|e| e.kind == EventKind::TicketPublished)
        .map(|e| e.ticket_id)
        .collect();
    let mut fired: HashSet<(i64, String)> = HashSet::new();
    let mut first: HashMap<i64, CommentFacts> = HashMap::new();
    if !published.is_empty() {
        for r in select_in(tx, FIRST_COMMENTS_SQL, "GROUP BY ticket_id)", &published).await? {
            first.insert(get_i64(&r, "ticket_id"), CommentFacts::of(&r));
        }
        let head = "SELECT ticket_id, trigger_name FROM outbox WHERE ticket_id IN";
        for r in select_in(tx, head, "", &published).await? {
            fired.insert((get_i64(&r, "ticket_id"), get_str(&r, "trigger_name")));
        }
    }

    let mut rows: Vec<OutboxRow> = Vec::new();
    let mut changes: HashMap<i64, (TicketChanges, String)> = HashMap::new();
    for e in &events {
        let ticket_id = e.ticket_id;
        let c = match e.kind {
            EventKind::TicketPublished => first.get(&ticket_id).unwrap_or(&e.comment),
            _ => &e.comment,
        };
        // Automatic mail never triggers anything.
        if c.class != "normal" {
            continue;
        }
        // Only what conditions and recipients need: templates render at send time.
        let mut ctx = EventContext {
            kind: None,
            channel: e.channel.clone(),
            requester_is_new: e.requester_is_new,
            class: c.class.clone(),
            ticket: TicketVars {
                id: ticket_id,
                tag: String::new(),
                subject: String::new(),
                status: e.status.clone(),
                url: None,
            },
            requester: RequesterVars {
                name: String::new(),
                email: e.requester_email.clone(),
            },
            organization: e
                .org_name
                .clone()
                .map(|name| super::triggers::OrgVars { name }),
            comment: Default::default(),
        };
        let kinds: &[EventKind] = match e.kind {
            EventKind::TicketPublished => &[EventKind::TicketPublished, EventKind::TicketCreated],
            EventKind::TicketCreated => &[EventKind::TicketCreated],
            EventKind::CommentAdded => &[EventKind::CommentAdded],
        };
        // Public only: a private ticket or an internal note notifies nobody.
        let visible = e.ticket_public && c.public && !c.flag;
        for k in kinds {
            ctx.kind = Some(*k);
            let (selected, ch) = select(&n.triggers, &ctx);
            if !ch.is_empty() {
                let entry = changes
                    .entry(ticket_id)
                    .or_insert_with(|| (TicketChanges::default(), e.tags.clone()));
                merge(&mut entry.0, ch);
            }
            if !visible {
                continue;
            }
            for sel in selected {
                let Some(to) = sel.to else { continue };
                if *k == EventKind::TicketCreated
                    && e.kind == EventKind::TicketPublished
                    && fired.contains(&(ticket_id, sel.trigger.clone()))
                {
                    continue;
                }
                rows.push(OutboxRow {
                    ticket_id,
                    event_id: e.event_id,
                    comment_id: c.id,
                    trigger: sel.trigger,
                    action: sel.action as i64,
                    to: to.to_lowercase(),
                    message_id: super::new_message_id(ticket_id, &n.desk_domain),
                    status: "pending",
                    reason: None,
                });
            }
        }
    }
    apply_changes(tx, &changes, now).await?;
    super::brakes::at_queue(n, &mut rows);
    super::outbox_insert::insert(tx, &rows, now).await
}

fn merge(into: &mut TicketChanges, c: TicketChanges) {
    into.assignee = c.assignee.or(into.assignee.take());
    into.group = c.group.or(into.group.take());
    into.tags.extend(c.tags);
}

async fn apply_changes(
    tx: &mut Tx<'_>,
    changes: &HashMap<i64, (TicketChanges, String)>,
    now: i64,
) -> Result<(), StoreError> {
    for (ticket, (c, old)) in changes {
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
