//! Microsoft Graph mailboxes (Microsoft 365, Exchange Online): one worker
//! per mailbox folder that takes an app-only token (client credentials),
//! finds the folder (a well-known name such as `inbox`, or a path of
//! display names), and imports new mail by delta query: the pages of a
//! round (`@odata.nextLink`) are imported batch by batch, each committed
//! with the message ids it stored (`source_seen`) and the acknowledgement it
//! owes, and the round's `@odata.deltaLink` is committed with its last
//! batch as the checkpoint. Raw MIME comes from `/messages/{id}/$value`.
//! After the commit mail is marked read, moved or deleted. A delta link the
//! service no longer knows (410) starts a full round again, exactly once
//! through the remembered ids. Graph pushes only to public webhooks, so the
//! worker polls.

pub mod ack;
pub mod assertion;
pub mod client;
pub mod sync;

use crate::sources::api_error::{self, ApiError};
use crate::sources::poller::{self, PollCtx};
use futures::future::BoxFuture;

/// Why a Graph session ended.
pub type GraphError = ApiError<api_error::Graph>;

fn session(ctx: &PollCtx) -> BoxFuture<'_, Result<usize, GraphError>> {
    Box::pin(async move {
        let mut g = client::Graph::open(&ctx.cfg).await?;
        ctx.status(|s| s.state = crate::sources::imap::State::Connected);
        sync::drain(&mut g, ctx).await
    })
}

/// Work the folder until shutdown, polling.
pub async fn run(ctx: PollCtx) {
    poller::run(ctx, session, poller::poll_wait).await
}

/// Drain the folder once (`intake run --once`).
pub async fn drain_once(ctx: PollCtx) -> Result<usize, String> {
    poller::drain_once(ctx, session).await
}
