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

use crate::sources::poller::{self, PollCtx, SessionError};
use crate::store::StoreError;
use futures::future::BoxFuture;

/// Why a Graph session ended.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("connect: {0}")]
    Connect(String),
    #[error("authentication: {0}")]
    Auth(String),
    #[error("timeout: {0}")]
    Timeout(String),
    #[error("graph: {0}")]
    NotFound(String),
    /// The delta link expired (410 Gone).
    #[error("graph: {0}")]
    Gone(String),
    #[error("graph: {0}")]
    Protocol(String),
    /// An HTTP error status Graph gave for one request (not 401/403/404/410).
    #[error("graph: {0}")]
    Status(String),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("lease lost: another daemon works this mailbox now")]
    LeaseLost,
}

impl From<reqwest::Error> for GraphError {
    fn from(e: reqwest::Error) -> Self {
        let text = crate::sources::jmap::error_chain(&e);
        if e.is_timeout() {
            GraphError::Timeout(text)
        } else if e.is_decode() {
            GraphError::Protocol(text)
        } else {
            GraphError::Connect(text)
        }
    }
}

impl SessionError for GraphError {
    fn lease_lost(&self) -> bool {
        matches!(self, GraphError::LeaseLost)
    }
}

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
