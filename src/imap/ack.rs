//! Acknowledging imported mail on the server, strictly after the commit:
//! `seen` flags it, `move` moves it, `delete` expunges it, `keep` does nothing.
//! A refusal (NO) is logged, counted and shown in the status; it never causes
//! a re-import because the cursor already moved past the message.

use super::connect::{bounded, ImapSession};
use super::worker::FolderCtx;
use super::{uid_set, ImapError};
use async_imap::error::Error as E;

/// What the server supports, read once per session.
#[derive(Debug, Clone, Default)]
pub struct Caps {
    pub idle: bool,
    pub r#move: bool,
    pub uidplus: bool,
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
async fn expunge(
    s: &mut ImapSession,
    ctx: &FolderCtx,
    caps: &Caps,
    uids: &[u32],
    cursor: u32,
) -> Result<(), ImapError> {
    let set = uid_set(uids);
    if caps.uidplus {
        let cmd = format!("UID EXPUNGE {set}");
        bounded(
            ctx.timeout(),
            "UID EXPUNGE",
            s.run_command_and_check_ok(&cmd),
        )
        .await
    } else {
        // Plain EXPUNGE removes every \Deleted message, also ones another
        // client flagged that are not imported yet: only when none is.
        let deleted = bounded(ctx.timeout(), "UID SEARCH DELETED", s.uid_search("DELETED")).await?;
        if let Err(why) = expunge_check(&deleted, uids, cursor) {
            let err = format!(
                "EXPUNGE skipped: {why}; the server lacks UIDPLUS, so a plain EXPUNGE would remove it too (the imported mail stays flagged \\Deleted in {} and is expunged later)",
                ctx.folder
            );
            tracing::warn!(mailbox = %ctx.cfg.name, folder = %ctx.folder, error = %err, "acknowledgement incomplete");
            ctx.registry
                .update(&ctx.cfg.name, &ctx.folder, |st| st.last_error = Some(err));
            return Ok(());
        }
        bounded(
            ctx.timeout(),
            "EXPUNGE",
            s.run_command_and_check_ok("EXPUNGE"),
        )
        .await
    }
}

async fn apply(
    s: &mut ImapSession,
    ctx: &FolderCtx,
    caps: &Caps,
    uids: &[u32],
    cursor: u32,
) -> Result<(), ImapError> {
    let set = &uid_set(uids);
    match ctx.cfg.after_import.as_str() {
        "keep" => Ok(()),
        "seen" => store_flags(s, ctx, set, "+FLAGS.SILENT (\\Seen)").await,
        "delete" => {
            store_flags(s, ctx, set, "+FLAGS.SILENT (\\Deleted)").await?;
            expunge(s, ctx, caps, uids, cursor).await
        }
        "move" => {
            let to = super::utf7::encode(ctx.cfg.move_to.as_deref().unwrap_or_default());
            if caps.r#move {
                bounded(ctx.timeout(), "UID MOVE", s.uid_mv(set, &to)).await
            } else {
                bounded(ctx.timeout(), "UID COPY", s.uid_copy(set, &to)).await?;
                store_flags(s, ctx, set, "+FLAGS.SILENT (\\Deleted)").await?;
                expunge(s, ctx, caps, uids, cursor).await
            }
        }
        other => Err(ImapError::Folder(format!("unknown after_import {other:?}"))),
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

/// Acknowledge committed UIDs (`cursor`: the UID committed up to). Only a
/// lost connection is an error; a refusal is recorded and the mail is left
/// where it is.
pub async fn acknowledge(
    s: &mut ImapSession,
    ctx: &FolderCtx,
    caps: &Caps,
    uids: &[u32],
    cursor: u32,
) -> Result<(), ImapError> {
    if uids.is_empty() || ctx.cfg.after_import == "keep" {
        return Ok(());
    }
    let set = uid_set(uids);
    match apply(s, ctx, caps, uids, cursor).await {
        Ok(()) => Ok(()),
        Err(ImapError::Imap(E::No(msg) | E::Bad(msg))) => {
            let what = match ctx.cfg.after_import.as_str() {
                "move" => format!("move to {:?}", ctx.cfg.move_to.as_deref().unwrap_or("")),
                other => other.to_string(),
            };
            let err = format!(
                "after_import {what} refused by the server: {msg}; the mail stays in {} (already imported, it will not be imported again)",
                ctx.folder
            );
            tracing::error!(mailbox = %ctx.cfg.name, folder = %ctx.folder, uids = %set, error = %err, "acknowledgement failed");
            metrics::counter!("intake_imap_ack_failures_total", "mailbox" => ctx.cfg.name.clone())
                .increment(1);
            ctx.registry.update(&ctx.cfg.name, &ctx.folder, |st| {
                st.ack_failures += 1;
                st.last_error = Some(err);
            });
            Ok(())
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
