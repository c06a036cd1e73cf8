//! JMAP mailboxes (RFC 8620 core, RFC 8621 mail): one worker per mailbox
//! that finds the session (the configured session URL, or the server's
//! `/.well-known/jmap`), picks the mail account and the mailbox (by role,
//! default `inbox`, or by name), and imports new mail: the first time, and
//! whenever the server cannot calculate changes, by `Email/query` on the
//! mailbox; afterwards by `Email/changes` from the stored Email state. Raw
//! messages come by blob download. Each batch is committed with the email
//! ids it stored (`source_seen`, so a full resync never stores twice) and
//! the acknowledgement it owes; the state string is committed with the last
//! batch of a round; only then is mail flagged `$seen`, moved or destroyed
//! by `Email/set`. Between rounds the worker listens on the server's
//! EventSource for a new Email state, or polls.

pub mod ack;
pub mod push;
pub mod session;
pub mod sync;

use crate::sources::api_error::{self, ApiError};
use crate::sources::poller::{self, PollCtx};
use futures::future::BoxFuture;

/// Why a JMAP session ended.
pub type JmapError = ApiError<api_error::Jmap>;

fn session(ctx: &PollCtx) -> BoxFuture<'_, Result<usize, JmapError>> {
    Box::pin(async move {
        let j = session::Jmap::open(&ctx.cfg).await?;
        ctx.status(|s| s.state = crate::sources::imap::State::Connected);
        sync::drain(&j, ctx).await
    })
}

/// Work the mailbox until shutdown: push where offered, polling otherwise.
pub async fn run(ctx: PollCtx) {
    poller::run(ctx, session, push::wait).await
}

/// Drain the mailbox once (`intake run --once`).
pub async fn drain_once(ctx: PollCtx) -> Result<usize, String> {
    poller::drain_once(ctx, session).await
}
