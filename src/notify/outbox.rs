//! The outbox: notifications written in the transaction of the event that
//! caused them. Cheap enough to never slow ingestion: one query loads what
//! the trigger conditions need for every event of the batch (no message
//! bodies), one loads recent counts and undeliverable marks of the batch's
//! recipients, and one multi-row insert writes rows that name their template
//! (trigger and action) instead of carrying rendered text: the sender renders
//! them at send time (see `compose`).

use super::triggers::{select, EventContext, EventKind, RequesterVars, TicketChanges, TicketVars};
use super::NotifySettings;
use crate::store::{get_i64, get_opt_str, get_str, StoreError};
use sqlx::any::{Any, AnyRow};
use sqlx::Transaction;
use std::collections::{HashMap, HashSet};

type Tx<'a> = Transaction<'a, Any>;

/// One outbox row to insert.
struct Row_ {
    ticket_id: i64,
    event_id: i64,
    comment_id: Option<i64>,
    trigger: String,
    action: i64,
    to: String,
    message_id: String,
    in_reply_to: Option<String>,
    reply_to: Option<String>,
    status: &'static str,
    reason: Option<String>,
}

/// The first comment of published tickets (their events carry no comment).
const FIRST_COMMENTS_SQL: &str = "SELECT ticket_id, id AS c_id, class, public AS c_public, flag, message_id AS c_mid, channel AS c_channel \
    FROM comments WHERE id IN (SELECT MIN(id) FROM comments WHERE ticket_id IN";

/// The comment an event is about.
struct CommentRow {
    id: Option<i64>,
    class: String,
    public: bool,
    flag: bool,
    message_id: Option<String>,
    email: bool,
}

impl CommentRow {
    fn of(r: &AnyRow) -> CommentRow {
        CommentRow {
            id: crate::store::get_opt_i64(r, "c_id"),
            class: get_opt_str(r, "class").unwrap_or_else(|| "normal".into()),
            public: get_i64(r, "c_public") != 0,
            flag: get_opt_str(r, "flag").is_some(),
            message_id: get_opt_str(r, "c_mid"),
            email: get_opt_str(r, "c_channel").as_deref() == Some("email"),
        }
    }
}

/// What trigger conditions, recipients and headers need; the requester's
/// address is their first email identity.
const EVENTS_SQL: &str = "SELECT e.id AS event_id, e.kind, e.ticket_id, t.status, t.channel, t.public AS ticket_public, \
    t.mailbox, t.created_at AS t_created, t.tags, u.created_at AS u_created, o.name AS org_name, \
    (SELECT i.value FROM identities i WHERE i.user_id = t.requester_id AND i.kind = 'email' ORDER BY i.id LIMIT 1) AS r_email, \
    c.id AS c_id, c.class, c.public AS c_public, c.flag, c.message_id AS c_mid, c.channel AS c_channel \
    FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id JOIN users u ON u.id = t.requester_id \
    LEFT JOIN organizations o ON o.id = t.organization_id \
    LEFT JOIN comments c ON c.id = e.comment_id \
    WHERE e.kind IN ('ticket_created', 'comment_added', 'ticket_published') AND e.id IN";

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

/// Queue the notifications `event_ids` call for, apply `set` actions, and
/// mark the recipients of `bounced` (our Message-IDs found in DSNs) undeliverable.
pub(crate) async fn enqueue(
    tx: &mut Tx<'_>,
    n: &NotifySettings,
    event_ids: &[i64],
    bounced: &[String],
    now: i64,
) -> Result<(), StoreError> {
    if !bounced.is_empty() {
        super::bounce::mark_bounced(tx, n, bounced, now).await?;
    }
    if n.triggers.triggers.is_empty() || event_ids.is_empty() {
        return Ok(());
    }
    let events = select_in(tx, EVENTS_SQL, "ORDER BY e.id", event_ids).await?;
    if events.is_empty() {
        return Ok(());
    }
    // Triggers already fired for published tickets (the skipped acknowledgement fires once).
    let published: Vec<i64> = events
        .iter()
        .filter(|r| get_str(r, "kind") == "ticket_published")
        .map(|r| get_i64(r, "ticket_id"))
        .collect();
    let mut fired: HashSet<(i64, String)> = HashSet::new();
    let mut first: HashMap<i64, CommentRow> = HashMap::new();
    if !published.is_empty() {
        for r in select_in(tx, FIRST_COMMENTS_SQL, "GROUP BY ticket_id)", &published).await? {
            first.insert(get_i64(&r, "ticket_id"), CommentRow::of(&r));
        }
        let head = "SELECT ticket_id, trigger_name FROM outbox WHERE ticket_id IN";
        for r in select_in(tx, head, "", &published).await? {
            fired.insert((get_i64(&r, "ticket_id"), get_str(&r, "trigger_name")));
        }
    }

    let mut rows: Vec<Row_> = Vec::new();
    let mut changes: HashMap<i64, (TicketChanges, String)> = HashMap::new();
    for e in &events {
        let ticket_id = get_i64(e, "ticket_id");
        let kind = get_str(e, "kind");
        let own = CommentRow::of(e);
        let c = match kind.as_str() {
            "ticket_published" => first.get(&ticket_id).unwrap_or(&own),
            _ => &own,
        };
        // Automatic mail never triggers anything.
        if c.class != "normal" {
            continue;
        }
        // Only what conditions and recipients need: templates render at send time.
        let mut ctx = EventContext {
            kind: None,
            channel: get_str(e, "channel"),
            requester_is_new: get_i64(e, "u_created") >= get_i64(e, "t_created"),
            class: c.class.clone(),
            ticket: TicketVars {
                id: ticket_id,
                tag: String::new(),
                subject: String::new(),
                status: get_str(e, "status"),
                url: None,
            },
            requester: RequesterVars {
                name: String::new(),
                email: get_opt_str(e, "r_email"),
            },
            organization: get_opt_str(e, "org_name").map(|name| super::triggers::OrgVars { name }),
            comment: Default::default(),
        };
        let kinds: &[EventKind] = match kind.as_str() {
            "ticket_created" => &[EventKind::TicketCreated],
            "comment_added" => &[EventKind::CommentAdded],
            _ => &[EventKind::TicketPublished, EventKind::TicketCreated],
        };
        // Public only: a private ticket or an internal note notifies nobody.
        let visible = get_i64(e, "ticket_public") != 0 && c.public && !c.flag;
        for k in kinds {
            ctx.kind = Some(*k);
            let (selected, ch) = select(&n.triggers, &ctx);
            if !ch.is_empty() {
                let entry = changes
                    .entry(ticket_id)
                    .or_insert_with(|| (TicketChanges::default(), get_str(e, "tags")));
                merge(&mut entry.0, ch);
            }
            if !visible {
                continue;
            }
            for sel in selected {
                let Some(to) = sel.to else { continue };
                if *k == EventKind::TicketCreated
                    && kind == "ticket_published"
                    && fired.contains(&(ticket_id, sel.trigger.clone()))
                {
                    continue;
                }
                let reply_to = get_opt_str(e, "mailbox")
                    .and_then(|m| n.mailbox_addresses.get(&m).cloned())
                    .or_else(|| n.default_reply_to.clone());
                rows.push(Row_ {
                    ticket_id,
                    event_id: get_i64(e, "event_id"),
                    comment_id: c.id,
                    trigger: sel.trigger,
                    action: sel.action as i64,
                    to: to.to_lowercase(),
                    message_id: super::new_message_id(ticket_id, &n.desk_domain),
                    in_reply_to: c.message_id.clone().filter(|_| c.email),
                    reply_to,
                    status: "pending",
                    reason: None,
                });
            }
        }
    }
    apply_changes(tx, &changes, now).await?;
    brakes(tx, n, &mut rows, now).await?;
    insert(tx, &rows, now).await
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

/// Per recipient of the batch: notifications counted against the rate limit
/// in the window, and why it is undeliverable (one query per 500 recipients).
fn brakes_sql(m: &mut Marks, addrs: usize) -> String {
    let (since, now) = (m.next(), m.next());
    let values = (0..addrs)
        .map(|_| format!("({})", m.next()))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT v.column1 AS addr, \
         (SELECT COUNT(*) FROM outbox o WHERE o.to_addr = v.column1 AND o.created_at > {since} AND o.status IN ('pending', 'sent')) AS n, \
         (SELECT u.reason FROM undeliverable u WHERE u.address = v.column1 AND u.until_at > {now}) AS dead FROM (VALUES {values}) v"
    )
}

/// Our own addresses, undeliverable ones and the per-recipient rate limit.
async fn brakes(
    tx: &mut Tx<'_>,
    n: &NotifySettings,
    rows: &mut [Row_],
    now: i64,
) -> Result<(), StoreError> {
    let addrs: Vec<String> = rows
        .iter()
        .filter(|r| !n.own.contains(&r.to))
        .map(|r| r.to.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut dead: HashMap<String, String> = HashMap::new();
    let mut counts: HashMap<String, i64> = HashMap::new();
    for chunk in addrs.chunks(500) {
        let sql = brakes_sql(&mut Marks::new(tx), chunk.len());
        let mut q = sqlx::query(&sql).bind(now - n.window_ms).bind(now);
        for a in chunk {
            q = q.bind(a);
        }
        for r in q.fetch_all(&mut **tx).await? {
            let a = get_str(&r, "addr");
            if let Some(why) = get_opt_str(&r, "dead") {
                dead.insert(a.clone(), why);
            }
            counts.insert(a, get_i64(&r, "n"));
        }
    }
    for r in rows.iter_mut() {
        let reason = if n.own.contains(&r.to) {
            Some("our own address".to_string())
        } else if let Some(why) = dead.get(&r.to) {
            Some(format!("undeliverable: {why}"))
        } else {
            let c = counts.entry(r.to.clone()).or_default();
            if *c >= n.per_recipient_limit as i64 {
                Some(format!(
                    "rate limit: {} per {} s",
                    n.per_recipient_limit,
                    n.window_ms / 1000
                ))
            } else {
                *c += 1;
                None
            }
        };
        if let Some(reason) = reason {
            tracing::info!(to = %r.to, ticket_id = r.ticket_id, %reason, "notification suppressed");
            r.status = "suppressed";
            r.reason = Some(reason);
        }
    }
    Ok(())
}

/// `(…12 markers…, '', '', now, now)` per row: subject and body are
/// rendered at send time (the columns stay for rows queued before 0005).
fn outbox_values(m: &mut Marks, rows: usize, now: i64) -> String {
    (0..rows)
        .map(|_| format!("({}, '', '', {now}, {now})", m.list(12)))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn insert(tx: &mut Tx<'_>, rows: &[Row_], now: i64) -> Result<(), StoreError> {
    for chunk in rows.chunks(200) {
        let sql = format!(
            "INSERT INTO outbox (ticket_id, event_id, comment_id, trigger_name, action_index, to_addr, message_id, in_reply_to, refs, reply_to, status, last_error, subject, body_text, next_attempt_at, created_at) VALUES {}",
            outbox_values(&mut Marks::new(tx), chunk.len(), now)
        );
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q
                .bind(r.ticket_id)
                .bind(r.event_id)
                .bind(r.comment_id)
                .bind(&r.trigger)
                .bind(r.action)
                .bind(&r.to)
                .bind(&r.message_id)
                .bind(r.in_reply_to.clone())
                .bind(r.in_reply_to.clone().unwrap_or_default())
                .bind(r.reply_to.clone())
                .bind(r.status)
                .bind(r.reason.clone());
        }
        q.execute(&mut **tx).await?;
        let sql = format!(
            "INSERT INTO thread_refs (message_id, ticket_id, outbound) VALUES {} ON CONFLICT (message_id) DO NOTHING",
            {
                let mut m = Marks::new(tx);
                (0..chunk.len()).map(|_| format!("({}, 1)", m.list(2))).collect::<Vec<_>>().join(", ")
            }
        );
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q.bind(&r.message_id).bind(r.ticket_id);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}
