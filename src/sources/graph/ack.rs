//! Acknowledging imported mail in Graph, strictly after the commit: `seen`
//! marks it read (PATCH `isRead`), `move` moves it to `move_to` (POST
//! `/move`), `delete` deletes it, `keep` does nothing. The commit recorded
//! the acknowledgement as owed; it is forgotten once Graph did it for every
//! message and done again at the next round otherwise. A message already
//! gone (404) counts as done.

use super::client::{encode, Graph};
use super::GraphError;
use crate::config::AfterImport;
use crate::sources::poll_batch;
use crate::sources::poller::PollCtx;
use crate::sources::session_error::LinkError;
use reqwest::Method;
use serde_json::json;

/// Do what earlier rounds still owe.
pub async fn redo(g: &mut Graph, ctx: &PollCtx, target: Option<&str>) -> Result<(), GraphError> {
    for ids in poll_batch::owed(ctx).await? {
        apply(g, ctx, target, &ids).await?;
    }
    Ok(())
}

/// Acknowledge `ids`, then forget the owed acknowledgement keyed by the
/// first. A refusal leaves it owed and is reported; a lost connection ends
/// the session (and it is done again next time).
pub async fn apply(
    g: &mut Graph,
    ctx: &PollCtx,
    target: Option<&str>,
    ids: &[String],
) -> Result<(), GraphError> {
    let Some(first) = ids.first() else {
        return Ok(());
    };
    if ctx.cfg.after_import == AfterImport::Keep {
        return Ok(());
    }
    let mut refused = Vec::new();
    for id in ids {
        let url = format!("{}/messages/{}", g.user_url, encode(id));
        let res = match ctx.cfg.after_import {
            AfterImport::Keep => unreachable!("returned above"),
            AfterImport::Seen => {
                g.send(Method::PATCH, &url, |r| r.json(&json!({"isRead": true})))
                    .await
            }
            AfterImport::Delete => g.send(Method::DELETE, &url, |r| r).await,
            AfterImport::Move => {
                let to = target.unwrap_or_default().to_string();
                g.send(Method::POST, &format!("{url}/move"), move |r| {
                    r.json(&json!({"destinationId": to}))
                })
                .await
            }
        };
        match res {
            Ok(_) | Err(GraphError::NotFound(_)) => {}
            Err(GraphError::Link(LinkError::Auth(e))) | Err(GraphError::Protocol(e)) => {
                refused.push(format!("{id}: {e}"))
            }
            Err(e) => return Err(e),
        }
    }
    if !refused.is_empty() {
        let what = format!("{} message(s), first {}", refused.len(), refused[0]);
        poll_batch::refused(ctx, &what);
        return Ok(());
    }
    poll_batch::done(ctx, first).await?;
    Ok(())
}
