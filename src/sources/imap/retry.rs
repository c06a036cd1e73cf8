//! Mail the server fails to deliver: a batch whose FETCH response cannot be
//! parsed is retried UID by UID (on a fresh session when the response
//! stream is broken); a UID that fails [`MAX_ATTEMPTS`] times is quarantined
//! as a placeholder; a UID the server lists but does not return holds the
//! cursor just below it, so it is never skipped unseen.

use super::connect::ImapSession;
use super::fetch::uid_fetch;
use super::status::FetchKey as Key;
use super::worker::FolderCtx;
use super::ImapError;
use crate::model::QuarantineIn;
use async_imap::error::Error as E;
use std::collections::HashMap;

/// Failed attempts (per UID, counted across passes and reconnects, in the
/// folder's [`super::Registry`]) before
/// a message is quarantined as a placeholder and the mailbox moves on.
pub const MAX_ATTEMPTS: u32 = 3;

fn failures(ctx: &FolderCtx) -> std::sync::MutexGuard<'_, HashMap<Key, u32>> {
    ctx.registry.fetch_failures.lock().expect("failure counter")
}

fn key(ctx: &FolderCtx, uv: u32, uid: u32) -> Key {
    (ctx.cfg.name.clone(), ctx.folder.clone(), uv, uid)
}

/// Count one more failure for `uid`; returns the total.
fn bump(ctx: &FolderCtx, uv: u32, uid: u32) -> u32 {
    let mut f = failures(ctx);
    let n = f.entry(key(ctx, uv, uid)).or_insert(0);
    *n += 1;
    *n
}

fn count(ctx: &FolderCtx, uv: u32, uid: u32) -> u32 {
    let f = failures(ctx);
    f.get(&key(ctx, uv, uid)).copied().unwrap_or(0)
}

fn clear(ctx: &FolderCtx, uv: u32, uid: u32) {
    failures(ctx).remove(&key(ctx, uv, uid));
}

/// An error about this response (unparseable, or refused by the server),
/// not about the connection: retrying other UIDs may well succeed.
pub fn is_poison(e: &ImapError) -> bool {
    match e {
        ImapError::Imap(E::Parse(_) | E::No(_) | E::Bad(_)) => true,
        ImapError::Imap(E::Io(io)) => {
            io.kind() == std::io::ErrorKind::Other && io.to_string().contains("during parsing")
        }
        _ => false,
    }
}

/// An error for logs and the quarantine reason: the parser's message
/// quotes the whole unparsed input, which may be megabytes.
fn short(e: &ImapError) -> String {
    const MAX: usize = 300;
    let s = e.to_string();
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}… ({} bytes of error text)", &s[..i], s.len()),
        None => s,
    }
}

/// After an unparseable response the session's input is unusable.
fn breaks_session(e: &ImapError) -> bool {
    !matches!(e, ImapError::Imap(E::No(_) | E::Bad(_)))
}

/// Replace a broken session with a fresh one on the same folder.
async fn reconnect(s: &mut ImapSession, ctx: &FolderCtx, uv: u32) -> Result<(), ImapError> {
    let (fresh, _, uv2) = super::worker::session(ctx).await?;
    if uv2 != uv {
        return Err(ImapError::Folder(format!(
            "{:?}: UIDVALIDITY changed from {uv} to {uv2} during the import",
            ctx.folder
        )));
    }
    *s = fresh;
    Ok(())
}

/// `UID FETCH` of a batch (`header`: headers only), falling back to one UID
/// at a time when the batch response is poison. Returns what was fetched;
/// UIDs that failed [`MAX_ATTEMPTS`] times are pushed to `quarantine`; UIDs
/// in neither were not returned by the server this time.
pub async fn fetch_batch(
    s: &mut ImapSession,
    ctx: &FolderCtx,
    uv: u32,
    uids: &[(u32, u32)],
    header: bool,
    quarantine: &mut HashMap<u32, QuarantineIn>,
) -> Result<HashMap<u32, Vec<u8>>, ImapError> {
    let set = super::uid_set(&uids.iter().map(|u| u.0).collect::<Vec<_>>());
    let mut got = match fetch(s, ctx, &set, header).await {
        Ok(m) => m,
        Err(e) if is_poison(&e) => {
            tracing::warn!(mailbox = %ctx.cfg.name, folder = %ctx.folder, uids = %set, error = %short(&e),
                "batch FETCH failed: retrying UID by UID");
            if breaks_session(&e) {
                reconnect(s, ctx, uv).await?;
            }
            HashMap::new()
        }
        Err(e) => return Err(e),
    };
    for &(uid, size) in uids {
        if got.contains_key(&uid) {
            clear(ctx, uv, uid);
            continue;
        }
        let mut last = String::from("the server returned no data for it");
        loop {
            match fetch(s, ctx, &uid.to_string(), header).await {
                Ok(mut m) => match m.remove(&uid) {
                    Some(raw) => {
                        got.insert(uid, raw);
                        clear(ctx, uv, uid);
                        break;
                    }
                    // Expunged meanwhile, or withheld: held back for a re-listing.
                    None => {
                        bump(ctx, uv, uid);
                        break;
                    }
                },
                Err(e) if is_poison(&e) => {
                    let n = bump(ctx, uv, uid);
                    last = short(&e);
                    tracing::warn!(mailbox = %ctx.cfg.name, folder = %ctx.folder, uid, attempt = n, error = %last,
                        "FETCH of one message failed");
                    if breaks_session(&e) {
                        reconnect(s, ctx, uv).await?;
                    }
                    if n >= MAX_ATTEMPTS {
                        break;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        if count(ctx, uv, uid) >= MAX_ATTEMPTS {
            let q = placeholder(s, ctx, uv, uid, size, &last).await?;
            quarantine.insert(uid, q);
        }
    }
    Ok(got)
}

async fn fetch(
    s: &mut ImapSession,
    ctx: &FolderCtx,
    set: &str,
    header: bool,
) -> Result<HashMap<u32, Vec<u8>>, ImapError> {
    if header {
        uid_fetch(s, ctx, set, "(UID BODY.PEEK[HEADER])", |f| {
            f.header().map(<[u8]>::to_vec)
        })
        .await
    } else {
        uid_fetch(s, ctx, set, "(UID BODY.PEEK[])", |f| {
            f.body().map(<[u8]>::to_vec)
        })
        .await
    }
}

/// The quarantine entry for a message the server would not deliver: its
/// headers when they can be fetched, else nothing but the reason.
async fn placeholder(
    s: &mut ImapSession,
    ctx: &FolderCtx,
    uv: u32,
    uid: u32,
    size: u32,
    err: &str,
) -> Result<QuarantineIn, ImapError> {
    let raw = match fetch(s, ctx, &uid.to_string(), true).await {
        Ok(mut m) => m.remove(&uid).unwrap_or_default(),
        Err(e) if is_poison(&e) => {
            if breaks_session(&e) {
                reconnect(s, ctx, uv).await?;
            }
            Vec::new()
        }
        Err(e) => return Err(e),
    };
    clear(ctx, uv, uid);
    tracing::error!(mailbox = %ctx.cfg.name, folder = %ctx.folder, uid, error = %err,
        "message could not be fetched {MAX_ATTEMPTS} times: quarantined as a placeholder");
    Ok(QuarantineIn {
        source: "imap".into(),
        mailbox: Some(ctx.cfg.name.clone()),
        reason: format!(
            "IMAP server response for UID {uid} in {} could not be parsed: {err} ({MAX_ATTEMPTS} attempts; only the headers were kept, if any)",
            ctx.folder
        ),
        raw,
        size: size as i64,
        truncated: true,
    })
}

/// The cursor a batch may commit and whether the whole batch was handled:
/// its last UID when every UID was stored or quarantined, otherwise just
/// below the first UID that was not (the next pass re-lists from there).
pub fn commit_cursor(chunk: &[u32], handled: impl Fn(u32) -> bool) -> (u32, bool) {
    match chunk.iter().find(|u| !handled(**u)) {
        Some(first) => (first - 1, false),
        None => (chunk.last().copied().unwrap_or(0), true),
    }
}

#[cfg(test)]
mod tests {
    use super::commit_cursor;

    #[test]
    fn cursor_never_passes_an_unhandled_uid() {
        let chunk = [4, 5, 7, 9];
        assert_eq!(commit_cursor(&chunk, |_| true), (9, true));
        assert_eq!(commit_cursor(&chunk, |u| u != 7), (6, false));
        assert_eq!(commit_cursor(&chunk, |u| u != 4), (3, false));
        assert_eq!(commit_cursor(&chunk, |u| u < 9), (8, false));
        assert_eq!(commit_cursor(&[], |_| false), (0, true));
    }
}
