//! Delivery reports not linked to any notification of ours: kept for ops,
//! never a user, organization or ticket (see `ingest.rs`, which decides).

use super::{get_i64, get_opt_str, get_str, StoreError};
use crate::classify::MailClass;
use crate::model::{Outcome, OutcomeKind, PreparedMessage};
use serde::Serialize;
use sqlx::any::Any;
use sqlx::Transaction;

/// One kept bounce, without its bytes.
#[derive(Debug, Clone, Serialize)]
pub struct BounceEntry {
    pub id: i64,
    pub message_id: String,
    pub mailbox: Option<String>,
    pub sender: String,
    pub subject: String,
    /// Why it is kept rather than threaded.
    pub reason: &'static str,
    /// The recipients it says failed permanently.
    pub recipients: Vec<String>,
    pub received_at: i64,
}

/// Why a kept bounce is kept.
pub const REASON: &str = "delivery report not linked to any notification of ours";

pub(super) const COLUMNS: &str =
    "id, message_id, mailbox, sender, subject, recipients, received_at";

pub(super) fn entry(r: &sqlx::any::AnyRow) -> BounceEntry {
    BounceEntry {
        id: get_i64(r, "id"),
        message_id: get_str(r, "message_id"),
        mailbox: get_opt_str(r, "mailbox"),
        sender: get_str(r, "sender"),
        subject: get_str(r, "subject"),
        reason: REASON,
        recipients: get_str(r, "recipients")
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        received_at: get_i64(r, "received_at"),
    }
}

/// Keep `m`, once: a second copy of the same Message-ID is a duplicate.
pub(super) async fn keep(
    tx: &mut Transaction<'_, Any>,
    m: &PreparedMessage,
    now: i64,
) -> Result<Outcome, StoreError> {
    let sender = m
        .contacts
        .first()
        .map(|c| c.value().to_string())
        .unwrap_or_default();
    let row = sqlx::query(
        "INSERT INTO bounces (message_id, mailbox, sender, subject, recipients, raw_sha256, received_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (message_id) DO NOTHING RETURNING id",
    )
    .bind(&m.message_id)
    .bind(m.mailbox.clone())
    .bind(sender)
    .bind(&m.subject)
    .bind(m.failed_recipients.join(" "))
    // The bytes are in the blob store (written before this transaction).
    .bind(m.raw.as_ref().map(|b| b.sha256.clone()))
    .bind(now)
    .fetch_optional(&mut **tx)
    .await?;
    let mut o = Outcome::new(match row {
        Some(_) => OutcomeKind::Kept,
        None => OutcomeKind::Duplicate,
    });
    o.bounce_id = row.map(|r| get_i64(&r, "id"));
    o.message_id = Some(m.message_id.clone());
    o.class = Some(MailClass::Bounce);
    o.reason = Some(REASON.to_string());
    tracing::info!(message_id = %m.message_id, bounce_id = ?o.bounce_id, "delivery report kept: not linked to a notification of ours");
    Ok(o)
}
