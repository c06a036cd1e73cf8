//! Acknowledging imported mail on the server, strictly after the commit:
//! `seen` flags it, `move` moves it, `delete` expunges it, `keep` does nothing.
//! A refusal (NO) is logged, counted and shown in the status; the
//! acknowledgement stays owed (see `owed`) and is done again later, never
//! by re-importing: the cursor already moved past the message. Doing it
//! again is harmless: a UID already flagged, moved or expunged is no error.

use super::connect::{bounded, ImapSession};
use super::worker::FolderCtx;
use super::{uid_set, ImapError};
use crate::config::AfterImport;
use async_imap::error::Error as E;

/// What the server supports, read once per session.
#[derive(Debug, Clone, Default)]
pub struct Caps {
    pub idle: bool,
    pub r#move: bool,
    pub uidplus: bool,
}

/// What became of an acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acked {
    /// The server did it.
    Done,
    /// Refused or left incomplete: still owed, to be done again later.
    Owed,
}

impl Caps {
    pub fn from(c: &async_imap::types::Capabilities) -> Caps {
        Caps {
            idle: c.has_str("IDLE"),
            r#move: c.has_str("MOVE"),
            uidplus: c.has_str("UIDPLUS"),
        }
    }
}

/// `UID STORE` with its tagged status checked (async-imap's `uid_store`
/// stream ends on the tagged response without looking at it, so a NO
/// would pass for success).
async fn store_flags(
    s: &mut ImapSession,
    ctx: &FolderCtx,
    set: &str,
    flags: &str,
) -> Result<(), ImapError> {
    let cmd = format!("UID STORE {set} {flags}");
    bounded(ctx.timeout(), "UID STORE", s.run_command_and_check_ok(&cmd)).await
}

/// `UID EXPUNGE`, or a plain `EXPUNGE` when no \Deleted mail above the
/// cursor would go with it; the tagged status is checked as for STORE.
/// `false` when the plain EXPUNGE had to be skipped. `again`: the UIDs may
/// be gone already (an owed acknowledgement done again).
async fn expunge(
    s: &mut ImapSession,
    ctx: &FolderCtx,
    caps: &Caps,
    uids: &[u32],
    cursor: u32,
    again: bool,
) -> Result<bool, ImapError> {
    let set = uid_set(uids);
    if caps.uidplus {
        let cmd = format!("UID EXPUNGE {set}");
        bounded(
            ctx.timeout(),
            "UID EXPUNGE",
            s.run_command_and_check_ok(&cmd),
        )
        .await?;
        return Ok(true);
    }
    // Plain EXPUNGE removes every \Deleted message, also ones another
    // client flagged that are not imported yet: only when none is.
    let deleted = bounded(ctx.timeout(), "UID SEARCH DELETED", s.uid_search("DELETED")).await?;
    let ours: Vec<u32> = if again {
        // Those still there were just flagged \Deleted; the others are gone.
        uids.iter()
            .copied()
            .filter(|u| deleted.contains(u))
            .collect()
    } else {
        uids.to_vec()
    };
    if ours.is_empty() {
        return Ok(true);
    }
    if let Err(why) = expunge_check(&deleted, &ours, cursor) {
        let err = format!(
            "EXPUNGE skipped: {why}; the server lacks UIDPLUS, so a plain EXPUNGE would remove it too (the imported mail stays flagged \\Deleted in {} and is expunged later)",
            ctx.folder
        );
        tracing::warn!(mailbox = %ctx.cfg.name, folder = %ctx.folder, error = %err, "acknowledgement incomplete");
        ctx.registry
            .update(&ctx.cfg.name, &ctx.folder, |st| st.last_error = Some(err));
        return Ok(false);
    }
    bounded(
        ctx.timeout(),
        "EXPUNGE",
        s.run_command_and_check_ok("EXPUNGE"),
    )
    .await?;
    Ok(true)
}

async fn apply(
    s: &mut ImapSession,
    ctx: &FolderCtx,
    caps: &Caps,
    uids: &[u32],
    cursor: u32,
    again: bool,
) -> Result<bool, ImapError> {
    let set = &uid_set(uids);
    match ctx.cfg.after_import {
        AfterImport::Keep => Ok(true),
        AfterImport::Seen => store_flags(s, ctx, set, "+FLAGS.SILENT (\\Seen)")
            .await
            .map(|()| true),
        AfterImport::Delete => {
            store_flags(s, ctx, set, "+FLAGS.SILENT (\\Deleted)").await?;
            expunge(s, ctx, caps, uids, cursor, again).await
        }
        AfterImport::Move => {
            let to = super::utf7::encode(ctx.cfg.move_to.as_deref().unwrap_or_default());
            if caps.r#move {
                bounded(ctx.timeout(), "UID MOVE", s.uid_mv(set, &to)).await?;
                Ok(true)
            } else {
                // Done again after a crash between COPY and EXPUNGE, the
                // copy is made twice: only servers without MOVE.
                bounded(ctx.timeout(), "UID COPY", s.uid_copy(set, &to)).await?;
                store_flags(s, ctx, set, "+FLAGS.SILENT (\\Deleted)").await?;
                expunge(s, ctx, caps, uids, cursor, again).await
            }
        }
    }
}

/// A plain EXPUNGE is safe when every \\Deleted UID is at or below the
/// committed cursor (already imported); otherwise the reason it is not.
/// `ours` (just flagged) must be among them, or the SEARCH answer is not
/// to be trusted (async-imap reads a refused SEARCH as an empty result).
pub fn expunge_check(
    deleted: &std::collections::HashSet<u32>,
    ours: &[u32],
    cursor: u32,
) -> Result<(), String> {
    if let Some(u) = ours.iter().find(|u| !deleted.contains(u)) {
        return Err(format!(
            "UID SEARCH DELETED did not list UID {u}, flagged \\Deleted just before"
        ));
    }
    let mut ahead: Vec<u32> = deleted.iter().copied().filter(|u| *u > cursor).collect();
    if ahead.is_empty() {
        return Ok(());
    }
    ahead.sort_unstable();
    Err(format!(
        "UID {} flagged \\Deleted by another client but not imported yet (cursor at {cursor})",
        uid_set(&ahead)
    ))
}

/// Acknowledge committed UIDs (`cursor`: the UID committed up to;
/// `again`: an owed acknowledgement done again). Only a lost connection is
/// an error; a refusal is recorded and the acknowledgement stays owed.
pub async fn acknowledge(
    s: &mut ImapSession,
    ctx: &FolderCtx,
    caps: &Caps,
    uids: &[u32],
    cursor: u32,
    again: bool,
) -> Result<Acked, ImapError> {
    if uids.is_empty() || ctx.cfg.after_import == AfterImport::Keep {
        return Ok(Acked::Done);
    }
    let set = uid_set(uids);
    match apply(s, ctx, caps, uids, cursor, again).await {
        Ok(true) => Ok(Acked::Done),
        Ok(false) => Ok(Acked::Owed),
        Err(ImapError::Imap(E::No(msg) | E::Bad(msg))) => {
            let what = match ctx.cfg.after_import {
                AfterImport::Move => {
                    format!("move to {:?}", ctx.cfg.move_to.as_deref().unwrap_or(""))
                }
                other => other.as_str().to_string(),
            };
            let err = format!(
                "after_import {what} refused by the server: {msg}; the mail stays in {} for now (already imported, it will not be imported again; the acknowledgement is owed and retried)",
                ctx.folder
            );
            tracing::error!(mailbox = %ctx.cfg.name, folder = %ctx.folder, uids = %set, error = %err, "acknowledgement failed");
            metrics::counter!("intake_mailbox_ack_failures_total", "mailbox" => ctx.cfg.name.clone())
                .increment(1);
            ctx.registry.update(&ctx.cfg.name, &ctx.folder, |st| {
                st.ack_failures += 1;
                st.last_error = Some(err);
            });
            Ok(Acked::Owed)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::expunge_check;

    #[test]
    fn plain_expunge_only_when_no_unimported_mail_is_deleted() {
        let set = |v: &[u32]| {
            v.iter()
                .copied()
                .collect::<std::collections::HashSet<u32>>()
        };
        assert!(expunge_check(&set(&[1, 2, 3]), &[2, 3], 3).is_ok());
        let e = expunge_check(&set(&[2, 9, 7, 5]), &[5], 5).unwrap_err();
        assert!(e.contains("UID 7,9") && e.contains("cursor at 5"), "{e}");
        let e = expunge_check(&set(&[]), &[4], 4).unwrap_err();
        assert!(e.contains("did not list UID 4"), "{e}");
    }
}
