//! Acknowledgements owed on the server. Each committed batch records, with
//! the cursor and in its transaction, the UIDs whose flag, move or delete it
//! owes; once the server has done it the record is forgotten, in the next
//! batch's transaction or at the end of the drain. At the start of every
//! drain what is still owed is done again (on a new connection always,
//! after a refusal with backoff), so that a crash, a dropped connection or
//! a refused command between commit and acknowledgement never leaves mail
//! unacknowledged for good. Doing it again is idempotent (see `ack`).

use super::ack::{acknowledge, Acked, Caps};
use super::connect::ImapSession;
use super::status::{key, AckLedger};
use super::worker::{idle_check, FolderCtx, IDLE_REISSUE};
use super::{parse_uid_set, ImapError};
use crate::model::OwedAck;
use std::time::Instant;

/// An owed acknowledgement's key: UIDVALIDITY and the batch's first UID,
/// zero-padded so that keys sort as the numbers do.
pub(super) fn ack_key(uidvalidity: u32, first_uid: u32) -> String {
    format!("{uidvalidity:010}:{first_uid:010}")
}

/// The UIDVALIDITY an owed acknowledgement's key names.
fn key_uidvalidity(key: &str) -> Option<u32> {
    key.split_once(':')?.0.parse().ok()
}

/// The folder's checkpoint state: UIDVALIDITY and the last committed UID.
pub(super) fn state(uidvalidity: u32, last_uid: u32) -> String {
    format!("{uidvalidity}:{last_uid}")
}

/// [`state`] read back (None for anything else: the folder starts over).
pub(super) fn parse_state(s: &str) -> Option<(u32, u32)> {
    let (v, last) = s.split_once(':')?;
    Some((v.parse().ok()?, last.parse().ok()?))
}

fn with_ledger<T>(ctx: &FolderCtx, f: impl FnOnce(&mut AckLedger) -> T) -> T {
    let mut g = ctx.registry.ledgers.lock().expect("ack ledger");
    f(g.entry(key(&ctx.cfg.name, &ctx.folder)).or_default())
}

fn add_owed(ctx: &FolderCtx, n: i64) {
    ctx.registry.update(&ctx.cfg.name, &ctx.folder, |st| {
        st.acks_owed = (st.acks_owed as i64 + n).max(0) as u64
    });
}

/// The batch `o` was committed: its acknowledgement is owed.
pub(super) fn owe(ctx: &FolderCtx, o: &OwedAck) {
    add_owed(ctx, o.count as i64);
}

/// The server did the acknowledgement of `o`.
pub(super) fn done(ctx: &FolderCtx, o: &OwedAck) {
    with_ledger(ctx, |l| {
        l.settled.push(o.key.clone());
        l.retry_at = None;
        l.backoff = Default::default();
    });
    add_owed(ctx, -(o.count as i64));
}

/// The server refused (or left incomplete) an acknowledgement: owed ones
/// are not tried again before a backoff (3 × timeout doubling to 5 min),
/// except on a new connection.
pub(super) fn refused(ctx: &FolderCtx) {
    let first = idle_check(ctx.timeout());
    with_ledger(ctx, |l| {
        let wait = if l.backoff.is_zero() {
            first
        } else {
            l.backoff
        };
        l.retry_at = Some(Instant::now() + wait);
        l.backoff = (wait * 2).min(IDLE_REISSUE);
    });
}

/// Settled batches still in the database: forgotten with the next checkpoint.
pub(super) fn settled(ctx: &FolderCtx) -> Vec<String> {
    with_ledger(ctx, |l| l.settled.clone())
}

/// The database has forgotten these settled batches.
pub(super) fn forgotten(ctx: &FolderCtx, keys: &[String]) {
    if keys.is_empty() {
        return;
    }
    with_ledger(ctx, |l| l.settled.retain(|s| !keys.contains(s)));
}

/// Forget settled batches in the database now (end of a drain).
pub(super) async fn flush(ctx: &FolderCtx) -> Result<(), ImapError> {
    let rows = with_ledger(ctx, |l| l.settled.clone());
    if rows.is_empty() {
        return Ok(());
    }
    ctx.pipeline
        .store
        .forget_acks(&ctx.cfg.name, &ctx.folder, &rows)
        .await?;
    with_ledger(ctx, |l| l.settled.retain(|s| !rows.contains(s)));
    Ok(())
}

/// Do again what the folder still owes (`fresh`: first drain of a new
/// connection, which ignores the backoff). Records of another UIDVALIDITY
/// name no message any more and are dropped, as are all of them when the
/// mailbox now keeps its mail.
pub(super) async fn redo(
    s: &mut ImapSession,
    ctx: &FolderCtx,
    caps: &Caps,
    uv: u32,
    cursor: u32,
    fresh: bool,
) -> Result<(), ImapError> {
    let (name, folder) = (&ctx.cfg.name, &ctx.folder);
    let store = &ctx.pipeline.store;
    let settled = with_ledger(ctx, |l| l.settled.clone());
    let rows: Vec<OwedAck> = store
        .owed_acks(name, folder)
        .await?
        .into_iter()
        .filter(|r| !settled.contains(&r.key))
        .collect();
    let keep = ctx.cfg.after_import == crate::config::AfterImport::Keep;
    let (current, stale): (Vec<OwedAck>, Vec<OwedAck>) = rows
        .into_iter()
        .partition(|r| key_uidvalidity(&r.key) == Some(uv) && !keep);
    if !stale.is_empty() {
        let n: u32 = stale.iter().map(|r| r.count).sum();
        tracing::warn!(mailbox = %name, folder = %folder, messages = n, keep,
            "owed acknowledgements dropped: UIDVALIDITY changed (the UIDs name other messages now) or after_import is \"keep\"");
        let keys: Vec<String> = stale.iter().map(|r| r.key.clone()).collect();
        store.forget_acks(name, folder, &keys).await?;
    }
    let owed: u64 = current.iter().map(|r| r.count as u64).sum();
    ctx.registry.update(name, folder, |st| st.acks_owed = owed);
    let waiting = with_ledger(ctx, |l| l.retry_at.is_some_and(|t| t > Instant::now()));
    if current.is_empty() || (waiting && !fresh) {
        return Ok(());
    }
    for r in &current {
        let Some(uids) = parse_uid_set(&r.what) else {
            tracing::error!(mailbox = %name, folder = %folder, uids = %r.what, "owed acknowledgement with an unreadable UID set: dropped");
            store
                .forget_acks(name, folder, std::slice::from_ref(&r.key))
                .await?;
            add_owed(ctx, -(r.count as i64));
            continue;
        };
        tracing::info!(mailbox = %name, folder = %folder, uids = %r.what, "doing an owed acknowledgement again");
        match acknowledge(s, ctx, caps, &uids, cursor, true).await? {
            Acked::Done => done(ctx, r),
            Acked::Owed => {
                refused(ctx);
                break;
            }
        }
    }
    Ok(())
}
