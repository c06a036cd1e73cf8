//! One JMAP round: what is owed acknowledged first; then the candidates —
//! every email of the mailbox (first run, or the server cannot calculate
//! changes from our state) or what `Email/changes` lists since the stored
//! state — less those already imported (`source_seen`), fetched by blob in
//! batches, each committed with its email ids and owed acknowledgement, the
//! new state with the last; then acknowledged.

use super::session::Jmap;
use super::{ack, JmapError};
use crate::sources::poll_batch::{self, HEADER_LIMIT};
use crate::sources::poller::PollCtx;
use futures::StreamExt;
use serde_json::{json, Value};
use std::collections::HashSet;

/// Ids asked per `Email/query` page and per `Email/changes` call.
const PAGE: usize = 1000;
/// Blob downloads in flight at once.
const DOWNLOADS: usize = 8;

/// What one listing found.
struct Round {
    candidates: Vec<String>,
    destroyed: Vec<String>,
    state: String,
    more: bool,
}

/// The mailbox's id, by role (`inbox`, `archive`, ...) or name.
pub async fn mailbox_id(j: &Jmap, want: &str) -> Result<String, JmapError> {
    let r = j
        .call(json!([["Mailbox/get", {"accountId": j.account, "ids": null, "properties": ["name", "role"]}, "m"]]))
        .await?;
    let list = r[0].1["list"].as_array().cloned().unwrap_or_default();
    let lower = want.to_ascii_lowercase();
    list.iter()
        .find(|m| m["role"].as_str() == Some(lower.as_str()))
        .or_else(|| list.iter().find(|m| m["name"].as_str() == Some(want)))
        .and_then(|m| m["id"].as_str().map(str::to_string))
        .ok_or_else(|| JmapError::Protocol(format!("no mailbox with the role or name {want:?}")))
}

/// Every email id in the mailbox, and the Email state read before listing
/// (changes after it are seen by the next round).
async fn full(j: &Jmap, mb: &str) -> Result<Round, JmapError> {
    let r = j
        .call(json!([["Email/get", {"accountId": j.account, "ids": []}, "s"]]))
        .await?;
    let state = r[0].1["state"].as_str().unwrap_or_default().to_string();
    // Paged by position: when the query's state changes between pages (mail
    // removed meanwhile shifts the positions), the listing starts again, a
    // few times at most; a page that adds nothing new ends it.
    'listing: for _ in 0..3 {
        let (mut ids, mut known, mut query_state) = (Vec::new(), HashSet::new(), None);
        loop {
            let r = j
                .call(
                    json!([["Email/query", {"accountId": j.account, "filter": {"inMailbox": mb},
                    "sort": [{"property": "receivedAt", "isAscending": true}],
                    "position": ids.len(), "limit": j.max_objects.min(PAGE)}, "q"]]),
                )
                .await?;
            let qs = r[0].1["queryState"].as_str().map(str::to_string);
            if query_state.is_some() && qs != query_state {
                continue 'listing;
            }
            query_state = qs;
            let before = ids.len();
            for v in r[0].1["ids"].as_array().into_iter().flatten() {
                if let Some(id) = v.as_str().filter(|id| known.insert(id.to_string())) {
                    ids.push(id.to_string());
                }
            }
            if ids.len() == before {
                return Ok(Round {
                    candidates: ids,
                    destroyed: Vec::new(),
                    state,
                    more: false,
                });
            }
        }
    }
    Err(JmapError::Protocol(
        "the mailbox kept changing while it was listed".into(),
    ))
}

/// What changed since `since`; `None` when the server cannot tell.
async fn changes(j: &Jmap, since: &str) -> Result<Option<Round>, JmapError> {
    // A state too old (cannotCalculateChanges) or not the server's at all
    // (invalidArguments: another server, a restored one) both mean: read
    // the mailbox again.
    let r = j
        .call_allowing(
            json!([["Email/changes", {"accountId": j.account, "sinceState": since, "maxChanges": PAGE}, "c"]]),
            &["cannotCalculateChanges", "invalidArguments"],
        )
        .await?;
    let (name, a) = &r[0];
    if name == "error" {
        return Ok(None);
    }
    let strs = |k: &str| -> Vec<String> {
        a[k].as_array()
            .map(|v| {
                v.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut candidates = strs("created");
    candidates.extend(strs("updated"));
    Ok(Some(Round {
        candidates,
        destroyed: strs("destroyed"),
        state: a["newState"].as_str().unwrap_or_default().to_string(),
        more: a["hasMoreChanges"].as_bool().unwrap_or(false),
    }))
}

/// Import until the server has nothing newer; how many were committed.
pub async fn drain(j: &Jmap, ctx: &PollCtx) -> Result<usize, JmapError> {
    let name = &ctx.cfg.name;
    let store = &ctx.pipeline.store;
    let mb = mailbox_id(j, &ctx.scope).await?;
    let target = ack::target(j, ctx).await?;
    ack::redo(j, ctx, &mb, target.as_deref()).await?;
    let mut seen = store.seen_items(name, &ctx.scope).await?;
    let mut done = 0;
    loop {
        if ctx.lost() {
            return Err(JmapError::LeaseLost);
        }
        let stored = store.checkpoint(name, &ctx.scope).await?;
        let round = match stored.as_deref() {
            None | Some("") => full(j, &mb).await?,
            Some(s) => match changes(j, s).await? {
                Some(r) => r,
                None => {
                    tracing::warn!(mailbox = %name, "the server cannot calculate changes from our state: reading the whole mailbox again (imported mail is recognised by its id)");
                    full(j, &mb).await?
                }
            },
        };
        let mut fresh: Vec<String> = Vec::new();
        let mut listed = HashSet::new();
        for id in round.candidates {
            if !seen.contains(&id) && listed.insert(id.clone()) {
                fresh.push(id);
            }
        }
        let emails = describe(j, &fresh, &mb).await?;
        ctx.status(|st| st.lag = emails.len() as u64);
        let batches: Vec<&[Value]> = emails.chunks(ctx.cfg.fetch_batch.max(1) as usize).collect();
        let mut gone = round.destroyed;
        gone.retain(|id| seen.remove(id));
        if batches.is_empty() {
            let cp =
                poll_batch::checkpoint(ctx, round.state.clone(), Vec::new(), gone.clone(), None);
            store.save_checkpoint(&cp).await?;
        }
        // A message the server refused to serve this time is listed again
        // only from a state before it: the round's state is not committed.
        let mut held_back = false;
        for (i, chunk) in batches.iter().enumerate() {
            if ctx.stopping() {
                return Ok(done);
            }
            if ctx.lost() {
                return Err(JmapError::LeaseLost);
            }
            let last = i + 1 == batches.len();
            let before = stored.clone().unwrap_or_default();
            let state = if last && !held_back {
                round.state.clone()
            } else {
                before.clone()
            };
            let gone = std::mem::take(&mut gone);
            let (ids, acked, deferred) = batch(j, ctx, chunk, (state, before), gone).await?;
            held_back |= deferred;
            seen.extend(ids.iter().cloned());
            ack::apply(j, ctx, &mb, target.as_deref(), &acked).await?;
            done += chunk.len();
            ctx.status(|st| {
                st.lag -= chunk.len() as u64;
                st.imported += chunk.len() as u64;
            });
        }
        // Tried again next session, not at once.
        if !round.more || held_back {
            return Ok(done);
        }
    }
}

/// The candidates that are in the mailbox now, with blob and size.
async fn describe(j: &Jmap, ids: &[String], mb: &str) -> Result<Vec<Value>, JmapError> {
    let mut out = Vec::new();
    for part in ids.chunks(j.max_objects.min(PAGE)) {
        let r = j
            .call(json!([["Email/get", {"accountId": j.account, "ids": part,
                "properties": ["id", "blobId", "size", "mailboxIds"]}, "g"]]))
            .await?;
        for e in r[0].1["list"].as_array().into_iter().flatten() {
            if e["mailboxIds"][mb].as_bool() == Some(true) {
                out.push(e.clone());
            }
        }
    }
    Ok(out)
}

/// Download and commit one batch with the checkpoint `state` (`state.1`,
/// the state before the round, when the server refused to serve one of
/// its messages this time): the ids it stored, those of them to
/// acknowledge (not the quarantined ones the server refused to serve), and
/// whether it left one to try again.
async fn batch(
    j: &Jmap,
    ctx: &PollCtx,
    chunk: &[Value],
    state: (String, String),
    gone: Vec<String>,
) -> Result<(Vec<String>, Vec<String>, bool), JmapError> {
    let max = ctx.pipeline.settings.max_message_bytes;
    let mut items = Vec::with_capacity(chunk.len());
    let mut ids = Vec::with_capacity(chunk.len());
    // Downloads run a few at a time (the server serves each blob on its
    // own request); the items keep the batch's order.
    type Got<'a> = Result<(&'a Value, u64, (Vec<u8>, bool)), JmapError>;
    let downloads: Vec<futures::future::BoxFuture<'_, Got<'_>>> = chunk
        .iter()
        .map(|e| {
            let size = e["size"].as_u64().unwrap_or(0);
            let limit = if size as usize > max {
                HEADER_LIMIT
            } else {
                max
            };
            let blob = e["blobId"].as_str().unwrap_or_default();
            Box::pin(async move { j.download(blob, limit).await.map(|r| (e, size, r)) })
                as futures::future::BoxFuture<'_, Got<'_>>
        })
        .collect();
    let fetched: Vec<Got<'_>> = futures::stream::iter(downloads)
        .buffered(DOWNLOADS)
        .collect()
        .await;
    // Refused and quarantined: remembered, but left where they are.
    let mut kept = Vec::new();
    let mut deferred = false;
    for (e, f) in chunk.iter().zip(fetched) {
        let id = e["id"].as_str().unwrap_or_default().to_string();
        match f {
            Ok((_, size, (raw, truncated))) => {
                items.push(poll_batch::item(
                    ctx,
                    &id,
                    raw,
                    size as usize > max || truncated,
                    size,
                ));
            }
            // The server will not serve this blob: the others go on; it is
            // tried again, and after its third refusal quarantined.
            Err(JmapError::Status(why)) => {
                if ctx.refused(&id) < poll_batch::MAX_REFUSALS {
                    tracing::warn!(mailbox = %ctx.cfg.name, id = %id, error = %why, "the server refused a download: tried again next session");
                    deferred = true;
                    continue;
                }
                items.push(poll_batch::refused_item(ctx, &id, &why));
                kept.push(id.clone());
            }
            Err(e) => return Err(e),
        }
        ids.push(id);
    }
    let acked: Vec<String> = ids.iter().filter(|i| !kept.contains(i)).cloned().collect();
    let state = if deferred { state.1 } else { state.0 };
    let cp = poll_batch::checkpoint(ctx, state, ids.clone(), gone, poll_batch::owe(ctx, &acked));
    poll_batch::commit(ctx, items, &cp).await?;
    Ok((ids, acked, deferred))
}
