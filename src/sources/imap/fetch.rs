//! Draining a selected folder: what is still owed acknowledged first, then
//! sizes, then bodies by UID in batches, each batch committed with its
//! cursor and the acknowledgement it owes, and only then acknowledged; pass
//! after pass until one finds nothing new and the server announced nothing
//! meanwhile.

use super::ack::{acknowledge, Acked, Caps};
use super::connect::{bounded, ImapSession};
use super::worker::FolderCtx;
use super::{retry, ImapError};
use crate::model::{Checkpoint, Inbound, OutcomeKind, OwedAck, QuarantineIn, RawMail};
use crate::sources::session_error::LinkError;
use futures::StreamExt;
use std::collections::HashMap;
use std::time::Instant;

/// Collect `UID FETCH set query` into uid → fetched item data.
pub(super) async fn uid_fetch<T>(
    s: &mut ImapSession,
    ctx: &FolderCtx,
    set: &str,
    query: &str,
    mut pick: impl FnMut(&async_imap::types::Fetch) -> Option<T>,
) -> Result<HashMap<u32, T>, ImapError> {
    let dur = ctx.timeout();
    let mut st = bounded(dur, "UID FETCH", s.uid_fetch(set, query)).await?;
    let mut out = HashMap::new();
    loop {
        let next = tokio::time::timeout(dur, st.next()).await.map_err(|_| {
            LinkError::Timeout(format!("UID FETCH {query} stalled for {}s", dur.as_secs()))
        })?;
        let Some(item) = next else { break };
        let f = item?;
        if let (Some(uid), Some(v)) = (f.uid, pick(&f)) {
            out.insert(uid, v);
        }
    }
    Ok(out)
}

/// The folder's starting point: the committed last UID, or 0 when there is
/// none or UIDVALIDITY changed (Message-ID dedup keeps re-fetched mail single).
async fn start_uid(ctx: &FolderCtx, uidvalidity: u32) -> Result<u32, ImapError> {
    let store = &ctx.pipeline.store;
    let committed = store.checkpoint(&ctx.cfg.name, &ctx.folder).await?;
    match committed.as_deref().map(super::owed::parse_state) {
        Some(Some((v, last))) if v == uidvalidity => Ok(last),
        prev => {
            if let Some(Some((old, _))) = prev {
                tracing::warn!(mailbox = %ctx.cfg.name, folder = %ctx.folder, old, new = uidvalidity,
                    "UIDVALIDITY changed: re-reading the folder from UID 1 (already stored mail is recognised by Message-ID)");
            }
            let c = Checkpoint {
                source: ctx.cfg.name.clone(),
                scope: ctx.folder.clone(),
                state: super::owed::state(uidvalidity, 0),
                ..Default::default()
            };
            store.save_checkpoint(&c).await?;
            Ok(0)
        }
    }
}

/// Empty passes in a row, each after the server announced new mail, before
/// the worker waits anyway (a server that repeats EXISTS without new mail
/// must not keep it busy; IDLE reports whatever comes next).
const MAX_RECHECKS: u32 = 3;

/// Acknowledge what is still owed (`fresh`: first drain on this
/// connection), then import everything above the cursor, pass after pass,
/// until a pass lists nothing new and no EXISTS/RECENT came during it.
/// Returns how many messages were committed.
pub async fn drain(
    s: &mut ImapSession,
    ctx: &FolderCtx,
    caps: &Caps,
    uidvalidity: u32,
    fresh: bool,
) -> Result<usize, ImapError> {
    let cursor = start_uid(ctx, uidvalidity).await?;
    super::owed::redo(s, ctx, caps, uidvalidity, cursor, fresh).await?;
    let mut done = 0;
    let (mut incomplete, mut rechecks) = (0, 0);
    while !ctx.stopping() {
        // Notices so far are about mail this pass lists anyway; the channel
        // must have room for those that come during the listing.
        super::idle::take_notices(s);
        let (n, listed, complete) = drain_pass(s, ctx, caps, uidvalidity).await?;
        done += n;
        if !complete {
            // A UID the server listed but did not return stops the pass just
            // below it; re-listing shows whether it was expunged or must be
            // retried.
            incomplete += 1;
            if incomplete >= super::retry::MAX_ATTEMPTS {
                break;
            }
            continue;
        }
        if listed > 0 {
            rechecks = 0;
            continue;
        }
        if !super::idle::take_notices(s) || rechecks >= MAX_RECHECKS {
            break;
        }
        rechecks += 1;
    }
    super::owed::flush(ctx).await?;
    Ok(done)
}

/// List the sizes above the cursor and import them batch by batch.
/// Returns (committed, listed, complete): `complete` is false when a batch
/// could not be completed (the cursor stopped early).
async fn drain_pass(
    s: &mut ImapSession,
    ctx: &FolderCtx,
    caps: &Caps,
    uidvalidity: u32,
) -> Result<(usize, usize, bool), ImapError> {
    let last = start_uid(ctx, uidvalidity).await?;
    let sizes = uid_fetch(
        s,
        ctx,
        &format!("{}:*", last + 1),
        "(UID RFC822.SIZE)",
        |f| Some(f.size.unwrap_or(0)),
    )
    .await?;
    let mut uids: Vec<(u32, u32)> = sizes.into_iter().filter(|(u, _)| *u > last).collect();
    uids.sort_unstable();
    let mut left = uids.len() as u64;
    ctx.registry
        .update(&ctx.cfg.name, &ctx.folder, |st| st.lag = left);
    let mut done = 0;
    for chunk in uids.chunks(ctx.cfg.fetch_batch.max(1) as usize) {
        if ctx.stopping() {
            break;
        }
        let (n, complete) = batch(s, ctx, caps, uidvalidity, chunk).await?;
        done += n;
        if !complete {
            return Ok((done, uids.len(), false));
        }
        left -= chunk.len() as u64;
        ctx.registry
            .update(&ctx.cfg.name, &ctx.folder, |st| st.lag = left);
    }
    Ok((done, uids.len(), true))
}

/// Fetch, commit (with the cursor at the batch's last UID, or just below
/// the first UID the server did not return), then acknowledge.
async fn batch(
    s: &mut ImapSession,
    ctx: &FolderCtx,
    caps: &Caps,
    uidvalidity: u32,
    chunk: &[(u32, u32)],
) -> Result<(usize, bool), ImapError> {
    let max = ctx.pipeline.settings.max_message_bytes as u64;
    let (small, big): (Vec<_>, Vec<_>) = chunk
        .iter()
        .copied()
        .partition(|(_, size)| (*size as u64) <= max);
    let mut failed = HashMap::new();
    let mut bodies = HashMap::new();
    if !small.is_empty() {
        bodies = retry::fetch_batch(s, ctx, uidvalidity, &small, false, &mut failed).await?;
    }
    let mut headers = HashMap::new();
    if !big.is_empty() {
        headers = retry::fetch_batch(s, ctx, uidvalidity, &big, true, &mut failed).await?;
    }
    let name = &ctx.cfg.name;
    metrics::counter!("intake_messages_fetched_total", "mailbox" => name.clone())
        .increment((bodies.len() + headers.len()) as u64);
    let mut items: Vec<Inbound> = Vec::with_capacity(chunk.len());
    let mut present = Vec::with_capacity(chunk.len());
    let mut keep = Vec::new();
    for &(uid, size) in chunk {
        if let Some(raw) = bodies.remove(&uid) {
            let m = Inbound::Mail(RawMail {
                raw,
                mailbox: Some(name.clone()),
                source: "imap".into(),
            });
            items.push(m);
        } else if let Some(raw) = headers.remove(&uid) {
            tracing::warn!(mailbox = %name, uid, size, message_id = %header_message_id(&raw), max,
                "message larger than limits.max_message_bytes: quarantined with its headers only");
            items.push(Inbound::Quarantine(QuarantineIn {
                source: "imap".into(),
                mailbox: Some(name.clone()),
                reason: format!("message of {size} bytes exceeds limits.max_message_bytes ({max}); only its headers were fetched (UID {uid} in {})", ctx.folder),
                raw,
                size: size as i64,
                truncated: true,
            }));
        } else if let Some(q) = failed.remove(&uid) {
            // Only its headers are stored: the original stays untouched.
            items.push(Inbound::Quarantine(q));
            keep.push(uid);
        } else {
            // Never skipped: the cursor stops below it and the folder is
            // listed again (an expunged message is then simply gone).
            tracing::info!(mailbox = %name, uid, "message listed but not returned by the server (expunged meanwhile?): the cursor stops before it");
            break;
        }
        present.push(uid);
    }
    let chunk_uids: Vec<u32> = chunk.iter().map(|c| c.0).collect();
    let handled: std::collections::HashSet<u32> = present.iter().copied().collect();
    let (last_uid, complete) = retry::commit_cursor(&chunk_uids, |u| handled.contains(&u));
    // Everything present but the unreadable ones (left untouched).
    let ack: Vec<u32> = present
        .iter()
        .copied()
        .filter(|u| !keep.contains(u))
        .collect();
    let owe =
        (ctx.cfg.after_import != crate::config::AfterImport::Keep && !ack.is_empty()).then(|| {
            OwedAck {
                key: super::owed::ack_key(uidvalidity, ack[0]),
                what: super::uid_set(&ack),
                count: ack.len() as u32,
            }
        });
    let checkpoint = Checkpoint {
        source: name.clone(),
        scope: ctx.folder.clone(),
        state: super::owed::state(uidvalidity, last_uid),
        owe: owe.clone(),
        settled: super::owed::settled(ctx),
        ..Default::default()
    };
    let started = Instant::now();
    // Parsing runs on the blocking pool (the pipeline's `prepare_batch`).
    let outcomes = ctx.pipeline.ingest(items, Some(&checkpoint)).await?;
    metrics::histogram!("intake_ingest_latency_seconds", "mailbox" => name.clone())
        .record(started.elapsed().as_secs_f64());
    crate::metrics::record_outcomes(name, &outcomes);
    for (uid, o) in present.iter().zip(&outcomes) {
        let mid = o.message_id.as_deref().unwrap_or("");
        match o.outcome {
            OutcomeKind::Quarantined => {
                tracing::warn!(mailbox = %name, uid, message_id = mid, reason = ?o.reason, quarantine_id = ?o.quarantine_id, "message quarantined")
            }
            k => {
                tracing::debug!(mailbox = %name, uid, message_id = mid, outcome = ?k, ticket_id = ?o.ticket_id, "message stored")
            }
        }
    }
    super::owed::forgotten(ctx, &checkpoint.settled);
    ctx.registry
        .update(name, &ctx.folder, |st| st.imported += present.len() as u64);
    if let Some(o) = &owe {
        super::owed::owe(ctx, o);
        match acknowledge(s, ctx, caps, &ack, last_uid, false).await? {
            Acked::Done => super::owed::done(ctx, o),
            Acked::Owed => super::owed::refused(ctx),
        }
    }
    Ok((present.len(), complete))
}

/// The Message-ID header of a raw header block, for logs.
fn header_message_id(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("message-id")
                .then(|| v.trim().trim_matches(['<', '>']).to_string())
        })
        .unwrap_or_default()
}
