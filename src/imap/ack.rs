//! Acknowledging imported mail on the server, strictly after the commit:
//! `seen` flags it, `move` moves it, `delete` expunges it, `keep` does nothing.
//! A refusal (NO) is logged, counted and shown in the status; it never causes
//! a re-import because the cursor already moved past the message.

use super::connect::{bounded, ImapSession};
use super::worker::FolderCtx;
use super::{uid_set, ImapError};
use async_imap::error::Error as E;
use futures::TryStreamExt;

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

async fn store_flags(
    s: &mut ImapSession,
    ctx: &FolderCtx,
    set: &str,
    flags: &str,
) -> Result<(), ImapError> {
    bounded(ctx.timeout(), "UID STORE", async {
        let st = s.uid_store(set, flags).await?;
        st.try_collect::<Vec<_>>().await
    })
    .await
    .map(|_| ())
}

async fn expunge(
    s: &mut ImapSession,
    ctx: &FolderCtx,
    caps: &Caps,
    set: &str,
    cursor: u32,
) -> Result<(), ImapError> {
    if caps.uidplus {
        bounded(ctx.timeout(), "UID EXPUNGE", async {
            let st = s.uid_expunge(set).await?;
            st.try_collect::<Vec<_>>().await
        })
        .await
        .map(|_| ())
    } else {
        // Plain EXPUNGE removes every \Deleted message, also ones another
        // client flagged that are not imported yet: only when none is.
        let deleted = bounded(ctx.timeout(), "UID SEARCH DELETED", s.uid_search("DELETED")).await?;
        if let Err(why) = expunge_check(deleted.into_iter(), cursor) {
            let err = format!(
                "EXPUNGE skipped: {why}; the server lacks UIDPLUS, so a plain EXPUNGE would remove it too (the imported mail stays flagged \\Deleted in {} and is expunged later)",
                ctx.folder
            );
            tracing::warn!(mailbox = %ctx.cfg.name, folder = %ctx.folder, error = %err, "acknowledgement incomplete");
            ctx.registry
                .update(&ctx.cfg.name, &ctx.folder, |st| st.last_error = Some(err));
            return Ok(());
        }
        bounded(ctx.timeout(), "EXPUNGE", async {
            let st = s.expunge().await?;
            st.try_collect::<Vec<_>>().await
        })
        .await
        .map(|_| ())
    }
}

async fn apply(
    s: &mut ImapSession,
    ctx: &FolderCtx,
    caps: &Caps,
    set: &str,
    cursor: u32,
) -> Result<(), ImapError> {
    match ctx.cfg.after_import.as_str() {
        "keep" => Ok(()),
        "seen" => store_flags(s, ctx, set, "+FLAGS.SILENT (\\Seen)").await,
        "delete" => {
            store_flags(s, ctx, set, "+FLAGS.SILENT (\\Deleted)").await?;
            expunge(s, ctx, caps, set, cursor).await
        }
        "move" => {
            let to = super::utf7::encode(ctx.cfg.move_to.as_deref().unwrap_or_default());
            if caps.r#move {
                bounded(ctx.timeout(), "UID MOVE", s.uid_mv(set, &to)).await
            } else {
                bounded(ctx.timeout(), "UID COPY", s.uid_copy(set, &to)).await?;
                store_flags(s, ctx, set, "+FLAGS.SILENT (\\Deleted)").await?;
                expunge(s, ctx, caps, set, cursor).await
            }
        }
        other => Err(ImapError::Folder(format!("unknown after_import {other:?}"))),
    }
}

/// A plain EXPUNGE is safe when every \Deleted UID is at or below the
/// committed cursor (already imported); otherwise the reason it is not.
pub fn expunge_check(deleted: impl Iterator<Item = u32>, cursor: u32) -> Result<(), String> {
    let mut ahead: Vec<u32> = deleted.filter(|u| *u > cursor).collect();
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
    match apply(s, ctx, caps, &set, cursor).await {
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
        assert!(expunge_check([1, 2, 3].into_iter(), 3).is_ok());
        assert!(expunge_check(std::iter::empty(), 0).is_ok());
        let e = expunge_check([2, 9, 7].into_iter(), 5).unwrap_err();
        assert!(e.contains("UID 7,9") && e.contains("cursor at 5"), "{e}");
    }
}
