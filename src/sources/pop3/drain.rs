//! One POP3 session's drain: list the maildrop (UIDL, LIST), forget the
//! remembered UIDLs that are gone, mark DELE what was imported earlier but
//! is still there (`after_import = "delete"`: its deletion was owed), then
//! fetch the new mail batch by batch, each batch committed with its UIDLs
//! and marked DELE only after that commit. The caller's QUIT makes the
//! deletions happen.

use super::client::{Fetched, Pop3};
use super::{Pop3Error, SCOPE};
use crate::config::AfterImport;
use crate::model::{Checkpoint, Inbound, QuarantineIn, RawMail};
use crate::sources::poll_batch;
use crate::sources::poller::PollCtx;
use std::collections::{HashMap, HashSet};

/// The checkpoint state of a POP3 source (its position is the seen set).
const STATE: &str = "uidl";
/// Sessions in which a RETR was refused before the message is quarantined
/// with its headers and left on the server.
const MAX_REFUSALS: u32 = 3;
/// The prefix of a remembered UIDL whose message stays on the server
/// (quarantined because the server would not hand it over): a space, which
/// a UIDL (0x21 to 0x7E) cannot contain.
pub const KEPT: &str = " ";

/// Drain the maildrop once; returns how many messages were committed.
pub async fn drain(c: &mut Pop3, ctx: &PollCtx) -> Result<usize, Pop3Error> {
    let name = &ctx.cfg.name;
    let listing = c.uidl().await?;
    let sizes = c.list().await?;
    let store = &ctx.pipeline.store;
    let seen = store.seen_items(name, SCOPE).await?;
    let listed: HashSet<&str> = listing.iter().map(|(_, u)| u.as_str()).collect();
    let gone: Vec<String> = seen
        .iter()
        .filter(|s| !listed.contains(s.strip_prefix(KEPT).unwrap_or(s)))
        .cloned()
        .collect();
    if !gone.is_empty() {
        store
            .save_checkpoint(&checkpoint(ctx, Vec::new(), gone))
            .await?;
    }
    let delete = ctx.cfg.after_import == AfterImport::Delete;
    let owed: Vec<u32> = listing
        .iter()
        .filter(|(_, u)| delete && seen.contains(u))
        .map(|(n, _)| *n)
        .collect();
    if !owed.is_empty() {
        tracing::info!(mailbox = %name, count = owed.len(), "deleting mail imported in an earlier session");
        // A refusal leaves the mail for the next session; it does not stop
        // the import of new mail.
        if let Err(Pop3Error::Refused(e)) = c.dele_many(&owed).await {
            tracing::warn!(mailbox = %name, error = %e, "a deletion owed from an earlier session was refused");
        }
    }
    let fresh: Vec<(u32, String, u64)> = listing
        .into_iter()
        .filter(|(_, u)| !seen.contains(u) && !seen.contains(&format!("{KEPT}{u}")))
        .map(|(n, u)| {
            let size = sizes.get(&n).copied().unwrap_or(0);
            (n, u, size)
        })
        .collect();
    let mut left = fresh.len() as u64;
    ctx.status(|st| {
        st.lag = left;
        st.acks_owed = owed.len() as u64;
    });
    let mut done = 0;
    for chunk in fresh.chunks(ctx.cfg.fetch_batch.max(1) as usize) {
        if ctx.stopping() {
            break;
        }
        if ctx.lost() {
            return Err(Pop3Error::LeaseLost);
        }
        let nums = batch(c, ctx, chunk).await?;
        if delete && !nums.is_empty() {
            c.dele_many(&nums).await?;
        }
        done += chunk.len();
        left -= chunk.len() as u64;
        ctx.status(|st| {
            st.lag = left;
            st.imported += chunk.len() as u64;
        });
    }
    Ok(done)
}

fn checkpoint(ctx: &PollCtx, seen: Vec<String>, gone: Vec<String>) -> Checkpoint {
    poll_batch::checkpoint(ctx, STATE.into(), seen, gone, None)
}

/// Fetch and commit one batch; the numbers that may now be deleted.
async fn batch(
    c: &mut Pop3,
    ctx: &PollCtx,
    chunk: &[(u32, String, u64)],
) -> Result<Vec<u32>, Pop3Error> {
    let name = &ctx.cfg.name;
    let max = ctx.pipeline.settings.max_message_bytes;
    let (small, big): (Vec<_>, Vec<_>) = chunk.iter().partition(|m| m.2 as usize <= max);
    let nums = |v: &[&(u32, String, u64)]| v.iter().map(|m| m.0).collect::<Vec<_>>();
    let mut got: HashMap<u32, Result<Fetched, String>> = HashMap::new();
    let bodies = c.fetch_many(&nums(&small), false, max).await?;
    got.extend(nums(&small).into_iter().zip(bodies));
    let headers = c
        .fetch_many(&nums(&big), true, poll_batch::HEADER_LIMIT)
        .await?;
    let mut heads: HashMap<u32, Result<Fetched, String>> =
        nums(&big).into_iter().zip(headers).collect();
    let mut items = Vec::with_capacity(chunk.len());
    let mut seen = Vec::with_capacity(chunk.len());
    let mut deletable = Vec::with_capacity(chunk.len());
    for (n, uidl, size) in chunk {
        let quarantine = |raw: Vec<u8>, reason: String| {
            Inbound::Quarantine(QuarantineIn {
                source: "pop3".into(),
                mailbox: Some(name.clone()),
                reason,
                size: *size as i64,
                raw,
                truncated: true,
            })
        };
        let item = match (got.remove(n), heads.remove(n)) {
            (Some(Ok(f)), _) if !f.truncated => Inbound::Mail(RawMail {
                raw: f.bytes,
                mailbox: Some(name.clone()),
                source: "pop3".into(),
            }),
            (Some(Ok(f)), _) => quarantine(
                poll_batch::header_block(f.bytes),
                format!("message {uidl} is larger than limits.max_message_bytes ({max}) although LIST said {size} bytes; only its headers were kept"),
            ),
            (None, Some(Ok(f))) => {
                tracing::warn!(mailbox = %name, uidl = %uidl, size, max, "message larger than limits.max_message_bytes: quarantined with its headers only");
                quarantine(
                    poll_batch::header_block(f.bytes),
                    format!("message of {size} bytes exceeds limits.max_message_bytes ({max}); only its headers were fetched (UIDL {uidl})"),
                )
            }
            (Some(Err(e)), _) | (None, Some(Err(e))) => {
                let n = ctx.refused(uidl);
                if n < MAX_REFUSALS {
                    // Neither remembered nor deleted: tried again next
                    // session; the rest of the batch goes on.
                    tracing::warn!(mailbox = %name, uidl = %uidl, refusals = n, error = %e, "the server refused to hand over a message: tried again next session");
                    continue;
                }
                seen.push(format!("{KEPT}{uidl}"));
                items.push(quarantine(Vec::new(), format!("the server refused to hand over message {uidl} in {MAX_REFUSALS} sessions ({e}); it is left on the server")));
                continue;
            }
            (None, None) => continue,
        };
        items.push(item);
        seen.push(uidl.clone());
        deletable.push(*n);
    }
    let cp = checkpoint(ctx, seen, Vec::new());
    poll_batch::commit(ctx, items, &cp).await?;
    Ok(deletable)
}
