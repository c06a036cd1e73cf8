//! What the polling kinds (POP3, JMAP, Graph) do alike with a fetched
//! batch: turn each message into an item (quarantined with its headers
//! when over the size limit), commit the items with the checkpoint (the
//! ids they stored, the acknowledgement they owe, the position), and report
//! an acknowledgement the server refused.

use super::poller::PollCtx;
use crate::config::AfterImport;
use crate::model::{Checkpoint, Inbound, OwedAck, QuarantineIn, RawMail};
use crate::store::StoreError;
use std::time::Instant;

/// Sessions in which the server refused one message before it is
/// quarantined (without its bytes) and left where it is.
pub const MAX_REFUSALS: u32 = 3;

/// Headers kept of a message too large to import.
pub const HEADER_LIMIT: usize = 256 * 1024;

/// The checkpoint of a batch of `ctx`'s scope.
pub fn checkpoint(
    ctx: &PollCtx,
    state: String,
    seen: Vec<String>,
    gone: Vec<String>,
    owe: Option<OwedAck>,
) -> Checkpoint {
    Checkpoint {
        source: ctx.cfg.name.clone(),
        scope: ctx.scope.clone(),
        state,
        owe,
        seen,
        gone,
        ..Default::default()
    }
}

/// The acknowledgement `ids` owe (none with `keep`), keyed by the first.
pub fn owe(ctx: &PollCtx, ids: &[String]) -> Option<OwedAck> {
    (ctx.cfg.after_import != AfterImport::Keep && !ids.is_empty()).then(|| OwedAck {
        key: ids[0].clone(),
        what: ids.join(","),
        count: ids.len() as u32,
    })
}

/// A fetched message as an item: the mail, or (`oversize`) a quarantine
/// entry with its header block. `id` names it in the source's terms;
/// `size` is 0 when the source does not say.
pub fn item(ctx: &PollCtx, id: &str, raw: Vec<u8>, oversize: bool, size: u64) -> Inbound {
    let (name, source) = (&ctx.cfg.name, ctx.cfg.protocol.as_str());
    if !oversize {
        return Inbound::Mail(RawMail {
            raw,
            mailbox: Some(name.clone()),
            source: source.into(),
        });
    }
    let max = ctx.pipeline.settings.max_message_bytes;
    tracing::warn!(mailbox = %name, id, size, max, "message larger than limits.max_message_bytes: quarantined with its headers only");
    let mut head = header_block(raw);
    head.truncate(HEADER_LIMIT);
    Inbound::Quarantine(QuarantineIn {
        source: source.into(),
        mailbox: Some(name.clone()),
        reason: match size {
            0 => format!("message exceeds limits.max_message_bytes ({max}); only its headers were kept ({source} {id})"),
            _ => format!("message of {size} bytes exceeds limits.max_message_bytes ({max}); only its headers were kept ({source} {id})"),
        },
        raw: head,
        size: size as i64,
        truncated: true,
    })
}

/// A message the server refused in [`MAX_REFUSALS`] sessions, as a
/// quarantine entry saying so (it stays on the server).
pub fn refused_item(ctx: &PollCtx, id: &str, why: &str) -> Inbound {
    let source = ctx.cfg.protocol.as_str();
    tracing::warn!(mailbox = %ctx.cfg.name, id, error = why, "the server refused a message {MAX_REFUSALS} times: quarantined, left on the server");
    Inbound::Quarantine(QuarantineIn {
        source: source.into(),
        mailbox: Some(ctx.cfg.name.clone()),
        reason: format!("the server refused to hand over message {id} in {MAX_REFUSALS} sessions ({why}); it is left on the server ({source})"),
        raw: Vec::new(),
        size: 0,
        truncated: true,
    })
}

/// Commit `items` with `cp` (the checkpoint alone when there are none).
pub async fn commit(ctx: &PollCtx, items: Vec<Inbound>, cp: &Checkpoint) -> Result<(), StoreError> {
    let name = &ctx.cfg.name;
    if items.is_empty() {
        return ctx.pipeline.store.save_checkpoint(cp).await;
    }
    metrics::counter!("intake_messages_fetched_total", "mailbox" => name.clone())
        .increment(items.len() as u64);
    let started = Instant::now();
    let outcomes = ctx.pipeline.ingest(items, Some(cp)).await?;
    metrics::histogram!("intake_ingest_latency_seconds", "mailbox" => name.clone())
        .record(started.elapsed().as_secs_f64());
    crate::metrics::record_outcomes(name, &outcomes);
    Ok(())
}

/// The server refused an acknowledgement: logged, counted, shown; it stays owed.
pub fn refused(ctx: &PollCtx, what: &str) {
    let err = format!(
        "after_import {} refused by the server for {what} (already imported, the acknowledgement is owed and retried)",
        ctx.cfg.after_import.as_str()
    );
    tracing::error!(mailbox = %ctx.cfg.name, error = %err, "acknowledgement failed");
    metrics::counter!("intake_mailbox_ack_failures_total", "mailbox" => ctx.cfg.name.clone())
        .increment(1);
    ctx.status(|s| {
        s.ack_failures += 1;
        s.last_error = Some(err);
    });
}

/// The acknowledgements still owed, each as its ids; shown in the status.
pub async fn owed(ctx: &PollCtx) -> Result<Vec<Vec<String>>, StoreError> {
    let owed = ctx
        .pipeline
        .store
        .owed_acks(&ctx.cfg.name, &ctx.scope)
        .await?;
    ctx.status(|s| s.acks_owed = owed.iter().map(|o| o.count as u64).sum());
    Ok(owed
        .iter()
        .map(|o| o.what.split(',').map(str::to_string).collect())
        .collect())
}

/// The acknowledgement keyed by `first` was done: forget it.
pub async fn done(ctx: &PollCtx, first: &str) -> Result<(), StoreError> {
    ctx.pipeline
        .store
        .forget_acks(&ctx.cfg.name, &ctx.scope, &[first.to_string()])
        .await
}

/// The header block of a message (up to and with the blank line).
pub fn header_block(mut raw: Vec<u8>) -> Vec<u8> {
    if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
        raw.truncate(i + 4);
    } else if let Some(i) = raw.windows(2).position(|w| w == b"\n\n") {
        raw.truncate(i + 2);
    }
    raw
}

#[cfg(test)]
mod tests {
    #[test]
    fn header_block_ends_at_the_blank_line() {
        assert_eq!(
            super::header_block(b"A: 1\r\nB: 2\r\n\r\nbody\r\n".to_vec()),
            b"A: 1\r\nB: 2\r\n\r\n"
        );
        assert_eq!(super::header_block(b"A: 1\n\nx".to_vec()), b"A: 1\n\n");
        assert_eq!(super::header_block(b"A: 1".to_vec()), b"A: 1");
    }
}
