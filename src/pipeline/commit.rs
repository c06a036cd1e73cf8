//! The commit step: the one owner of the ingest transaction. For each
//! chunk of prepared messages it writes the raw mails and attachment
//! bodies to the blob store, opens the transaction, has the store write
//! the messages (which returns the batch's events with their facts), marks
//! the recipients of returned notifications undeliverable, has the notifier
//! plan the outbox from the events (pure), writes the plan through the
//! store, saves the source's checkpoint and commits. The source
//! acknowledges only after that commit.
//!
//! One poison path for every source: a chunk the database refuses is
//! retried message by message, and the refused message is quarantined with
//! the error. A storage fault (full disk, I/O error, lost connection) is no
//! refusal: it is returned for the source to retry later, and nothing is
//! quarantined for it.

use super::Settings;
use crate::model::*;
use crate::store::{now_ms, Fault, Policy, Store, StoreError, WriteTx};

/// Commit one chunk with the checkpoint, retrying contention and passing
/// faults in place and refusals message by message.
pub(super) async fn commit_chunk(
    store: &Store,
    s: &Settings,
    chunk: &[Prepared],
    checkpoint: Option<&Checkpoint>,
) -> Result<Vec<Outcome>, StoreError> {
    match commit_retrying(store, s, chunk, checkpoint).await {
        Err(e) if !e.is_transient() => {
            refusal(store, &e)?;
            tracing::warn!(error = %e, size = chunk.len(), "batch refused by the database, retrying message by message");
            let mut out = Vec::with_capacity(chunk.len());
            for (i, item) in chunk.iter().enumerate() {
                let cp = if i + 1 == chunk.len() {
                    checkpoint
                } else {
                    None
                };
                let one = std::slice::from_ref(item);
                match commit_retrying(store, s, one, cp).await {
                    Ok(o) => out.extend(o),
                    Err(e) if !e.is_transient() => {
                        refusal(store, &e)?;
                        tracing::error!(error = %e, "poison message: quarantined");
                        let q = refused(item, &e);
                        out.extend(commit_retrying(store, s, &[q], cp).await?);
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(out)
        }
        r => r,
    }
}

/// Commit one chunk. Contention (a lock, a lost race) is retried in place up
/// to six times; a storage fault twice more after a short pause, on a fresh
/// connection, and then returned so that the source retries later with its
/// own backoff.
async fn commit_retrying(
    store: &Store,
    s: &Settings,
    items: &[Prepared],
    checkpoint: Option<&Checkpoint>,
) -> Result<Vec<Outcome>, StoreError> {
    let mut attempt = 0u32;
    let mut blobs = None;
    loop {
        attempt += 1;
        let res = async {
            // The chunk's raw mails and attachment bodies are durable in the
            // blob store before any row names them, and the transaction
            // records where they went.
            if blobs.is_none() {
                blobs = Some(store.put_blobs(items).await?);
            }
            let mut tx = store.begin().await?;
            if let Some(b) = &blobs {
                tx.record_blobs(b).await?;
            }
            let out = write(&mut tx, s, items).await?;
            // A mail not stored as a comment (a second delivery, a report
            // kept for ops) leaves its raw mail's location unnamed.
            let unnamed = match &blobs {
                Some(b)
                    if out.iter().any(|o| {
                        !matches!(o.outcome, OutcomeKind::Created | OutcomeKind::Appended)
                    }) =>
                {
                    tx.unnamed_raws(&b.raw).await?
                }
                _ => Vec::new(),
            };
            if let Some(c) = checkpoint {
                tx.save_checkpoint(c).await?;
            }
            tx.commit().await?;
            Ok::<_, StoreError>((out, unnamed))
        }
        .await;
        let res = store.observe(res);
        let res = match res {
            Ok((out, unnamed)) => {
                drop_kept_attachments(store, items, &out).await;
                drop_unnamed_raws(store, &unnamed).await;
                Ok(out)
            }
            Err(e) => Err(e),
        };
        if res.as_ref().err().is_some_and(StoreError::is_blob_gone) {
            // A blob it found stored was removed: write them again.
            blobs = None;
        }
        let tries = match res.as_ref().err().and_then(StoreError::fault) {
            Some(Fault::Contention) => 6,
            Some(_) => 3,
            None => return res,
        };
        match res {
            Err(e) if attempt < tries => {
                let detail = e.detail().unwrap_or_default();
                tracing::warn!(attempt, error = %e, detail, "batch transaction failed, retrying");
                tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
            }
            r => return r,
        }
    }
}

/// A delivery report kept for ops (`bounces`) keeps its raw mail only, and
/// a second delivery of a stored mail keeps nothing: the attachment bodies
/// the chunk wrote for them (a report's delivery-status part and returned
/// message, a copy's attachments the store no longer held) go once
/// committed, unless some row names them. A failure leaves them to the
/// sweep.
async fn drop_kept_attachments(store: &Store, items: &[Prepared], out: &[Outcome]) {
    let kept: std::collections::HashSet<&str> = out
        .iter()
        .filter(|o| matches!(o.outcome, OutcomeKind::Kept | OutcomeKind::Duplicate))
        .filter_map(|o| o.message_id.as_deref())
        .collect();
    if kept.is_empty() {
        return;
    }
    let hashes: Vec<String> = items
        .iter()
        .filter_map(|i| match i {
            Prepared::Message(m) if kept.contains(m.message_id.as_str()) => Some(m),
            _ => None,
        })
        .flat_map(|m| m.attachments.iter().filter_map(|a| a.data.as_ref()))
        .map(|b| b.sha256.clone())
        .collect();
    if let Err(e) = store.drop_unnamed_blobs(&hashes).await {
        tracing::warn!(error = %e, "a kept delivery report's attachments stay until the sweep");
    }
}

/// Remove the raw mails a committed chunk located but no comment names,
/// bytes and all (they would outlive an erasure of the stored copy). A
/// failure leaves them to the sweep.
async fn drop_unnamed_raws(store: &Store, numbers: &[i64]) {
    if numbers.is_empty() {
        return;
    }
    if let Err(e) = store.remove_raw_locations(numbers).await {
        tracing::warn!(error = %e, "unnamed raw mails stay until the sweep");
    }
}

/// Everything one chunk writes, inside `tx`.
async fn write(
    tx: &mut WriteTx,
    s: &Settings,
    items: &[Prepared],
) -> Result<Vec<Outcome>, StoreError> {
    let n = &s.notify;
    let policy = Policy {
        own: &s.own,
        free_mail: &s.free_mail,
        auto_create_orgs: s.auto_create_orgs,
        agents: &s.agents,
    };
    let batch = tx
        .store_batch(&policy, &|k| n.triggers.wants(k), items)
        .await?;
    let now = now_ms();
    if !batch.bounced.is_empty() {
        tx.mark_bounced(&batch.bounced, now + n.undeliverable_ms)
            .await?;
    }
    if !batch.failed_recipients.is_empty() {
        let (since, until) = (now - n.undeliverable_ms, now + n.undeliverable_ms);
        tx.mark_failed_recipients(&batch.failed_recipients, since, until)
            .await?;
    }
    notify(tx, s, batch.events, now).await?;
    Ok(batch.outcomes)
}

/// Plan the notifications `events` call for and write them, inside `tx`.
pub(super) async fn notify(
    tx: &mut WriteTx,
    s: &Settings,
    events: Vec<EventFacts>,
    now: i64,
) -> Result<(), StoreError> {
    let n = &s.notify;
    if n.triggers.triggers.is_empty() || events.is_empty() {
        return Ok(());
    }
    let events = tx.complete_facts(events, &|k| n.triggers.needs(k)).await?;
    let published = tx.published_tickets(&events).await?;
    let plan = crate::notify::plan_outbox(n, &events, &published);
    tx.write_plan(&plan, now).await
}

/// Is a permanent error a refusal of the messages? Not while the store's
/// writes are failing: then it is returned as a fault.
fn refusal(store: &Store, e: &StoreError) -> Result<(), StoreError> {
    match store.outage() {
        None => Ok(()),
        Some(o) => Err(StoreError::Unavailable(format!(
            "{e} (while database writes fail: {})",
            o.error
        ))),
    }
}

/// A quarantine record for a message the database refused.
fn refused(item: &Prepared, e: &StoreError) -> Prepared {
    match item {
        Prepared::Quarantine(q) => Prepared::Quarantine(QuarantineIn {
            reason: format!("{}; then storage failed: {e}", q.reason),
            ..q.clone()
        }),
        Prepared::Review(r) => Prepared::Quarantine(QuarantineIn {
            source: r.source.clone(),
            mailbox: r.mailbox.clone(),
            reason: format!("held for review ({}); then storage failed: {e}", r.reason),
            size: r.raw.len() as i64,
            raw: r.raw.clone(),
            truncated: false,
        }),
        Prepared::Message(m) => {
            let raw = m
                .raw
                .as_ref()
                .map(|b| b.bytes.clone())
                .unwrap_or_else(|| format!("{m:?}").into_bytes());
            Prepared::Quarantine(QuarantineIn {
                source: m.channel.to_string(),
                mailbox: m.mailbox.clone(),
                reason: format!("storage failed: {e}"),
                size: raw.len() as i64,
                raw,
                truncated: false,
            })
        }
    }
}
