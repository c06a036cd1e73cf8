//! One Graph round: what is owed acknowledged first; then the delta query
//! from the committed `@odata.deltaLink` (or from the start), page by page
//! through `@odata.nextLink`; each page's messages not imported yet are
//! fetched (`$value`) and committed in batches with their ids and owed
//! acknowledgement, the round's new delta link with the last batch; then
//! acknowledged. A message deleted between the listing and its fetch is
//! skipped; one over `max_message_bytes` is quarantined with its headers.

use super::client::{encode, Graph};
use super::{ack, GraphError};
use crate::config::AfterImport;
use crate::sources::poll_batch;
use crate::sources::poller::PollCtx;
use std::collections::HashSet;

/// A folder's id: the first segment of `path` is a well-known name (`inbox`,
/// `archive`, …) or a top-level folder's display name, the others child
/// folders' display names.
pub async fn folder_id(g: &mut Graph, path: &str) -> Result<String, GraphError> {
    let mut id: Option<String> = None;
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        let found = match &id {
            None => match g
                .get_json(&format!("{}/mailFolders/{}", g.user_url, encode(seg)))
                .await
            {
                Ok(v) => v["id"].as_str().map(str::to_string),
                Err(GraphError::NotFound(_)) => {
                    child(g, &format!("{}/mailFolders", g.user_url), seg).await?
                }
                Err(e) => return Err(e),
            },
            Some(parent) => {
                let url = format!("{}/mailFolders/{}/childFolders", g.user_url, encode(parent));
                child(g, &url, seg).await?
            }
        };
        id = Some(found.ok_or_else(|| {
            GraphError::Protocol(format!("no mail folder {path:?} (at {seg:?})"))
        })?);
    }
    id.ok_or_else(|| GraphError::Protocol("folder is empty".into()))
}

async fn child(g: &mut Graph, list_url: &str, name: &str) -> Result<Option<String>, GraphError> {
    let q = format!("displayName eq '{}'", name.replace('\'', "''"));
    let url = format!("{list_url}?$filter={}", encode(&q));
    let v = g.get_json(&url).await?;
    Ok(v["value"][0]["id"].as_str().map(str::to_string))
}

/// Import until the delta query has nothing newer; how many were committed.
pub async fn drain(g: &mut Graph, ctx: &PollCtx) -> Result<usize, GraphError> {
    let name = &ctx.cfg.name;
    let store = &ctx.pipeline.store;
    let folder = folder_id(g, &ctx.scope).await?;
    let target = match (&ctx.cfg.after_import, &ctx.cfg.move_to) {
        (AfterImport::Move, Some(to)) => Some(folder_id(g, to).await?),
        _ => None,
    };
    ack::redo(g, ctx, target.as_deref()).await?;
    let mut seen = store.seen_items(name, &ctx.scope).await?;
    let start = format!(
        "{}/mailFolders/{}/messages/delta?$select=id",
        g.user_url,
        encode(&folder)
    );
    let stored = store
        .checkpoint(name, &ctx.scope)
        .await?
        .filter(|s| !s.is_empty());
    let mut url = stored.clone().unwrap_or_else(|| start.clone());
    let mut done = 0;
    // A message the round listed but could not fetch (gone, or refused):
    // the round's delta link is then not committed, so that the next round
    // lists it again.
    let mut missed = false;
    loop {
        if ctx.lost() {
            return Err(GraphError::LeaseLost);
        }
        if ctx.stopping() {
            return Ok(done);
        }
        let page = match g.get_json(&url).await {
            Err(GraphError::Gone(why)) if url != start => {
                tracing::warn!(mailbox = %name, why, "the delta link expired: reading the folder again (imported mail is recognised by its id)");
                url = start.clone();
                continue;
            }
            r => r?,
        };
        let mut fresh = Vec::new();
        let mut gone = Vec::new();
        let mut listed = HashSet::new();
        for m in page["value"].as_array().into_iter().flatten() {
            let Some(id) = m["id"].as_str() else { continue };
            if m.get("@removed").is_some() {
                if seen.remove(id) {
                    gone.push(id.to_string());
                }
            } else if !seen.contains(id) && listed.insert(id.to_string()) {
                fresh.push(id.to_string());
            }
        }
        let delta = page["@odata.deltaLink"].as_str().map(str::to_string);
        let next = page["@odata.nextLink"].as_str().map(str::to_string);
        let keep = stored.clone().unwrap_or_default();
        let batches: Vec<&[String]> = fresh.chunks(ctx.cfg.fetch_batch.max(1) as usize).collect();
        if batches.is_empty() && (delta.is_some() || !gone.is_empty()) {
            let state = match &delta {
                Some(d) if !missed => d.clone(),
                _ => keep.clone(),
            };
            store
                .save_checkpoint(&poll_batch::checkpoint(
                    ctx,
                    state,
                    Vec::new(),
                    std::mem::take(&mut gone),
                    None,
                ))
                .await?;
        }
        ctx.status(|st| st.lag = fresh.len() as u64);
        for (i, chunk) in batches.iter().enumerate() {
            if ctx.lost() {
                return Err(GraphError::LeaseLost);
            }
            let last = i + 1 == batches.len();
            let (ids, acked) = batch(
                g,
                ctx,
                chunk,
                (last, &delta, &keep),
                &mut missed,
                std::mem::take(&mut gone),
            )
            .await?;
            seen.extend(ids.iter().cloned());
            ack::apply(g, ctx, target.as_deref(), &acked).await?;
            done += ids.len();
            ctx.status(|st| {
                st.lag = st.lag.saturating_sub(chunk.len() as u64);
                st.imported += ids.len() as u64;
            });
        }
        match next {
            Some(n) => url = n,
            None => return Ok(done),
        }
    }
}

/// Fetch and commit one batch: the ids it stored (not those gone
/// meanwhile), and those of them to acknowledge (not the quarantined ones
/// Graph refused to serve, which stay where they are).
/// `(last, delta, keep)`: the last batch of a page commits the page's delta
/// link, if it has one and nothing of the round was `missed`.
async fn batch(
    g: &mut Graph,
    ctx: &PollCtx,
    chunk: &[String],
    (last, delta, keep): (bool, &Option<String>, &String),
    missed: &mut bool,
    gone: Vec<String>,
) -> Result<(Vec<String>, Vec<String>), GraphError> {
    let max = ctx.pipeline.settings.max_message_bytes;
    let mut items = Vec::with_capacity(chunk.len());
    let mut ids = Vec::with_capacity(chunk.len());
    // Refused and quarantined: remembered, but left where they are.
    let mut kept = Vec::new();
    for id in chunk {
        let item = match g.mime(id, max).await {
            Ok(Some((raw, truncated))) => {
                let size = if truncated { 0 } else { raw.len() as u64 };
                poll_batch::item(ctx, id, raw, truncated, size)
            }
            Ok(None) => {
                tracing::info!(mailbox = %ctx.cfg.name, id = %id, "message not found between the listing and its fetch: skipped, listed again next round");
                *missed = true;
                continue;
            }
            Err(GraphError::Status(why)) => {
                if ctx.refused(id) < poll_batch::MAX_REFUSALS {
                    tracing::warn!(mailbox = %ctx.cfg.name, id = %id, error = %why, "Graph refused a message's MIME: tried again next round");
                    *missed = true;
                    continue;
                }
                kept.push(id.clone());
                poll_batch::refused_item(ctx, id, &why)
            }
            Err(e) => return Err(e),
        };
        items.push(item);
        ids.push(id.clone());
    }
    let state = match delta {
        Some(d) if last && !*missed => d.clone(),
        _ => keep.clone(),
    };
    let acked: Vec<String> = ids.iter().filter(|i| !kept.contains(i)).cloned().collect();
    let cp = poll_batch::checkpoint(ctx, state, ids.clone(), gone, poll_batch::owe(ctx, &acked));
    poll_batch::commit(ctx, items, &cp).await?;
    Ok((ids, acked))
}
