//! Acknowledging imported mail on a JMAP server, strictly after the
//! commit, by `Email/set`: `seen` sets the `$seen` keyword, `move` moves
//! it to `move_to` (a role or a name), `delete` destroys it, `keep` does
//! nothing. The batch's commit recorded the acknowledgement as owed; it is
//! forgotten once the server did it, and done again at the next round
//! otherwise. Doing it again is harmless (an email already flagged, moved
//! or gone is no error).

use super::session::Jmap;
use super::JmapError;
use crate::config::AfterImport;
use crate::sources::poll_batch;
use crate::sources::poller::PollCtx;
use serde_json::{json, Map, Value};

/// The mailbox `move_to` names, when mail is moved.
pub async fn target(j: &Jmap, ctx: &PollCtx) -> Result<Option<String>, JmapError> {
    match (&ctx.cfg.after_import, &ctx.cfg.move_to) {
        (AfterImport::Move, Some(to)) => Ok(Some(super::sync::mailbox_id(j, to).await?)),
        _ => Ok(None),
    }
}

/// Do what earlier rounds still owe.
pub async fn redo(
    j: &Jmap,
    ctx: &PollCtx,
    mb: &str,
    target: Option<&str>,
) -> Result<(), JmapError> {
    for ids in poll_batch::owed(ctx).await? {
        apply(j, ctx, mb, target, &ids).await?;
    }
    Ok(())
}

/// Acknowledge `ids` and forget the owed acknowledgement keyed by the
/// first; a refusal other than "not found" stays owed and is reported.
pub async fn apply(
    j: &Jmap,
    ctx: &PollCtx,
    mb: &str,
    target: Option<&str>,
    ids: &[String],
) -> Result<(), JmapError> {
    let Some(first) = ids.first() else {
        return Ok(());
    };
    if ctx.cfg.after_import == AfterImport::Keep {
        return Ok(());
    }
    // At most the server's maxObjectsInSet per Email/set.
    let mut refused = Vec::new();
    for part in ids.chunks(j.max_objects) {
        match set(j, ctx, mb, target, part).await {
            Ok(r) => refused.extend(r),
            // A method-level refusal of the whole call: owed, reported, and
            // the import goes on.
            Err(JmapError::Protocol(e) | JmapError::Status(e)) => refused.push(e),
            Err(e) => return Err(e),
        }
    }
    if !refused.is_empty() {
        poll_batch::refused(ctx, &refused.join(", "));
        return Ok(());
    }
    // Moved out of the mailbox: never listed here again, so no longer
    // remembered (a copy moved back is a duplicate the store recognises).
    let unseen: &[String] = if target.is_some() { ids } else { &[] };
    ctx.pipeline
        .store
        .settle(
            &ctx.cfg.name,
            &ctx.scope,
            std::slice::from_ref(first),
            unseen,
        )
        .await?;
    Ok(())
}

/// One `Email/set` for `ids`; the ids it refused (other than not found).
async fn set(
    j: &Jmap,
    ctx: &PollCtx,
    mb: &str,
    target: Option<&str>,
    ids: &[String],
) -> Result<Vec<String>, JmapError> {
    let args = match ctx.cfg.after_import {
        AfterImport::Keep => return Ok(Vec::new()),
        AfterImport::Delete => json!({"accountId": j.account, "destroy": ids}),
        AfterImport::Seen => patch(j, ids, json!({"keywords/$seen": true})),
        AfterImport::Move => {
            let to = target.unwrap_or_default();
            let mut p = Map::new();
            p.insert(format!("mailboxIds/{mb}"), Value::Null);
            p.insert(format!("mailboxIds/{to}"), Value::Bool(true));
            patch(j, ids, Value::Object(p))
        }
    };
    let r = j.call(json!([["Email/set", args, "a"]])).await?;
    let a = &r[0].1;
    let refused: Vec<String> = ["notUpdated", "notDestroyed"]
        .iter()
        .filter_map(|k| a[*k].as_object())
        .flat_map(|m| m.iter())
        .filter(|(_, e)| e["type"].as_str() != Some("notFound"))
        .map(|(id, e)| format!("{id}: {}", e["type"].as_str().unwrap_or("?")))
        .collect();
    Ok(refused)
}

fn patch(j: &Jmap, ids: &[String], p: Value) -> Value {
    let update: Map<String, Value> = ids.iter().map(|id| (id.clone(), p.clone())).collect();
    json!({"accountId": j.account, "update": update})
}
