//! Store stage, writing half: the multi-row inserts of a batch (comments,
//! attachments, references, participants, events) and its new tickets.

use super::{value_rows, BlobNumbers, StoreError};
use crate::model::{AttachmentIn, PreparedMessage, TicketStatus};
use sqlx::any::Any;
use sqlx::{Row, Transaction};
use std::collections::HashMap;

type Tx<'a> = Transaction<'a, Any>;

/// A comment waiting for the multi-row insert.
pub(super) struct NewComment<'m> {
    pub(super) msg: &'m PreparedMessage,
    pub(super) ticket_id: i64,
    pub(super) author_id: i64,
    pub(super) public: bool,
    pub(super) flag: Option<&'static str>,
    /// `end_user` or `agent`.
    pub(super) role: &'static str,
    pub(super) out_index: usize,
}

/// An event recorded with the batch (`ticket_created`, `comment_added`, ...).
pub(super) struct NewEvent {
    pub(super) ticket_id: i64,
    pub(super) kind: &'static str,
    pub(super) comment_of: Option<usize>,
    pub(super) detail: String,
}

/// Markers for a multi-row insert whose only parameters are its values:
/// `?` on SQLite, where numbered `$n` markers are named parameters whose
/// binding costs grow with the square of their count (a 200-row comment
/// insert has 2,400), `$n` on PostgreSQL.
pub(super) fn rows_sql(tx: &Tx<'_>, rows: usize, cols: usize) -> String {
    if tx.backend_name().eq_ignore_ascii_case("sqlite") {
        let row = format!("({})", vec!["?"; cols].join(", "));
        vec![row; rows].join(", ")
    } else {
        value_rows(rows, cols)
    }
}

pub(super) async fn insert_ticket(
    tx: &mut Tx<'_>,
    m: &PreparedMessage,
    requester: i64,
    org: Option<i64>,
    follow_up_of: Option<i64>,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    let subject = if m.subject.trim().is_empty() {
        "(no subject)".to_string()
    } else {
        m.subject.clone()
    };
    let row = sqlx::query(
        "INSERT INTO tickets (subject, status, channel, public, requester_id, organization_id, follow_up_of, conversation_key, mailbox, created_at, updated_at) \
         VALUES ($1, 'new', $2, $3, $4, $5, $6, $7, $8, $9, $9) ON CONFLICT (conversation_key) DO NOTHING RETURNING id",
    )
    .bind(subject).bind(m.channel.as_str()).bind(m.public as i64).bind(requester).bind(org)
    .bind(follow_up_of).bind(m.conversation_key.clone()).bind(m.mailbox.clone()).bind(now)
    .fetch_optional(&mut **tx).await?;
    Ok(row.map(|r| r.try_get::<i64, _>(0)).transpose()?)
}

pub(super) async fn insert_comments(
    tx: &mut Tx<'_>,
    comments: &[NewComment<'_>],
    numbers: &BlobNumbers,
    now: i64,
) -> Result<Vec<i64>, StoreError> {
    const COLS: usize = 17;
    let mut ids = Vec::with_capacity(comments.len());
    for chunk in comments.chunks(200) {
        let sql = format!(
            "INSERT INTO comments (ticket_id, author_id, public, channel, message_id, class, flag, subject, body, mailbox, raw_sha256, raw_blob, raw_size, created_at, role, forwarded_by, visible_body) VALUES {} RETURNING id, message_id",
            rows_sql(tx, chunk.len(), COLS)
        );
        let mut q = sqlx::query(&sql);
        for c in chunk {
            let m = c.msg;
            q = q
                .bind(c.ticket_id)
                .bind(c.author_id)
                .bind(c.public as i64)
                .bind(m.channel.as_str())
                .bind(&m.message_id)
                .bind(m.class.as_str())
                .bind(c.flag)
                .bind(&m.subject)
                .bind(&m.body)
                .bind(m.mailbox.clone())
                .bind(m.raw.as_ref().map(|b| b.sha256.clone()))
                .bind(m.raw.as_ref().and_then(|b| numbers.get(&b.sha256).copied()))
                .bind(m.raw.as_ref().map(|b| b.len() as i64))
                .bind(if m.received_at > 0 {
                    m.received_at
                } else {
                    now
                })
                .bind(c.role)
                .bind(m.forwarded_by.clone())
                .bind(m.visible_body.clone());
        }
        let rows = q.fetch_all(&mut **tx).await?;
        let by_mid: HashMap<String, i64> = rows
            .iter()
            .map(|r| Ok((r.try_get::<String, _>(1)?, r.try_get::<i64, _>(0)?)))
            .collect::<Result<_, sqlx::Error>>()?;
        for c in chunk {
            ids.push(
                *by_mid
                    .get(&c.msg.message_id)
                    .ok_or_else(|| StoreError::conflict("comment insert lost a row"))?,
            );
        }
    }
    Ok(ids)
}

pub(super) async fn insert_attachments(
    tx: &mut Tx<'_>,
    comments: &[NewComment<'_>],
    ids: &[i64],
    numbers: &BlobNumbers,
) -> Result<(), StoreError> {
    let rows: Vec<(i64, &AttachmentIn)> = comments
        .iter()
        .zip(ids)
        .flat_map(|(c, id)| c.msg.attachments.iter().map(move |a| (*id, a)))
        .collect();
    for chunk in rows.chunks(100) {
        let sql = format!(
            "INSERT INTO attachments (comment_id, filename, content_type, size, url, sha256, blob, content_id, inline, omitted) VALUES {}",
            rows_sql(tx, chunk.len(), 10)
        );
        let mut q = sqlx::query(&sql);
        for (id, a) in chunk {
            q = q
                .bind(*id)
                .bind(&a.filename)
                .bind(&a.content_type)
                .bind(a.size)
                .bind(a.url.clone())
                .bind(a.data.as_ref().map(|b| b.sha256.clone()))
                .bind(
                    a.data
                        .as_ref()
                        .and_then(|b| numbers.get(&b.sha256).copied()),
                )
                .bind(a.content_id.clone())
                .bind(a.inline as i64)
                .bind(a.omitted.clone());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Addresses copied on a ticket, in key order.
pub(super) async fn insert_participants(
    tx: &mut Tx<'_>,
    rows: &[(i64, String)],
) -> Result<(), StoreError> {
    let head = "INSERT INTO ticket_participants (ticket_id, address)";
    let tail = "ON CONFLICT (ticket_id, address) DO NOTHING";
    super::sql::insert_pairs(tx, (head, "", tail), rows).await
}

/// Touch the batch's tickets (`updated_at`), setting the new status of
/// those it reopens: one statement per 500 tickets, in id order.
pub(super) async fn update_tickets(
    tx: &mut Tx<'_>,
    status: &HashMap<i64, TicketStatus>,
    touched: &[i64],
    now: i64,
) -> Result<(), StoreError> {
    let mut ids: Vec<i64> = status.keys().chain(touched).copied().collect();
    ids.sort_unstable();
    ids.dedup();
    for chunk in ids.chunks(500) {
        let changed: Vec<i64> = chunk
            .iter()
            .copied()
            .filter(|t| status.contains_key(t))
            .collect();
        let case = if changed.is_empty() {
            "status".to_string()
        } else {
            let whens: String = (0..changed.len())
                .map(|i| format!(" WHEN ${} THEN ${}", 2 + 2 * i, 3 + 2 * i))
                .collect();
            format!("CASE id{whens} ELSE status END")
        };
        let sql = format!(
            "UPDATE tickets SET status = {case}, updated_at = $1 WHERE id IN ({})",
            super::placeholders(1 + 2 * changed.len(), chunk.len())
        );
        let mut q = sqlx::query(&sql).bind(now);
        for t in &changed {
            q = q.bind(*t).bind(status[t].as_str());
        }
        for t in chunk {
            q = q.bind(*t);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

pub(super) async fn insert_events(
    tx: &mut Tx<'_>,
    events: &[NewEvent],
    comment_ids: &[i64],
    now: i64,
) -> Result<Vec<i64>, StoreError> {
    let mut ids = Vec::with_capacity(events.len());
    for chunk in events.chunks(500) {
        let sql = format!(
            "INSERT INTO ticket_events (ticket_id, kind, comment_id, detail, created_at) VALUES {} RETURNING id",
            rows_sql(tx, chunk.len(), 5)
        );
        let mut q = sqlx::query(&sql);
        for e in chunk {
            let cid = e.comment_of.and_then(|i| comment_ids.get(i).copied());
            q = q
                .bind(e.ticket_id)
                .bind(e.kind)
                .bind(cid)
                .bind(&e.detail)
                .bind(now);
        }
        for r in q.fetch_all(&mut **tx).await? {
            ids.push(r.try_get::<i64, _>(0)?);
        }
    }
    Ok(ids)
}
