//! POP3 maildrops (RFC 1939): one worker per mailbox that lists the
//! maildrop by UIDL, imports what it has not seen (RETR, pipelined where
//! the server offers PIPELINING; oversize mail quarantined with its headers
//! from TOP), commits each batch with the UIDLs it covers (the set of
//! imported UIDLs is the checkpoint, `source_seen`), and only after that
//! commit marks them DELE (`after_import = "delete"`), which the server
//! carries out at QUIT. A crash anywhere leaves mail either uncommitted
//! (fetched again) or committed and still on the server (recognised by its
//! UIDL, deleted on the next session): never lost, never stored twice.
//!
//! The wire is our own (`client`): the POP3 crates on crates.io need
//! OpenSSL through async-native-tls, and the protocol is small enough that
//! bounding every line and timing every step ourselves is simpler.

pub mod client;
pub mod drain;

use crate::sources::imap::ImapError;
use crate::sources::poller::{self, PollCtx};
use crate::sources::session_error::{LinkError, SessionError};
use crate::store::StoreError;
use futures::future::BoxFuture;

/// The one scope of a POP3 source (a maildrop has no folders).
pub const SCOPE: &str = "INBOX";

/// Why a POP3 session ended.
#[derive(Debug, thiserror::Error)]
pub enum Pop3Error {
    /// Connect, authenticate, time out: as every kind fails.
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The server answered a command with -ERR.
    #[error("pop3: {0}")]
    Refused(String),
    /// The server said something POP3 does not allow, or lacks what we need.
    #[error("pop3: {0}")]
    Protocol(String),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("lease lost: another daemon works this mailbox now")]
    LeaseLost,
    #[error("lease for this mailbox is held by another daemon")]
    LeaseBusy,
}

impl From<tokio::time::error::Elapsed> for Pop3Error {
    fn from(e: tokio::time::error::Elapsed) -> Self {
        LinkError::from(e).into()
    }
}

/// The TLS and token helpers are shared with IMAP.
impl From<ImapError> for Pop3Error {
    fn from(e: ImapError) -> Self {
        match e {
            ImapError::Link(l) => Pop3Error::Link(l),
            ImapError::Io(e) => Pop3Error::Io(e),
            ImapError::Store(e) => Pop3Error::Store(e),
            other => LinkError::Connect(other.to_string()).into(),
        }
    }
}

impl SessionError for Pop3Error {
    fn lease_lost(&self) -> bool {
        matches!(self, Pop3Error::LeaseLost)
    }
}

/// One session: connect, log in, drain, QUIT (which carries out DELE).
fn session(ctx: &PollCtx) -> BoxFuture<'_, Result<usize, Pop3Error>> {
    Box::pin(async move {
        let mut c = client::Pop3::open(&ctx.cfg).await?;
        ctx.status(|s| s.state = crate::sources::imap::State::Connected);
        let n = drain::drain(&mut c, ctx).await?;
        c.quit().await?;
        Ok(n)
    })
}

/// Work the maildrop until shutdown, polling.
pub async fn run(ctx: PollCtx) {
    poller::run(ctx, session, poller::poll_wait).await
}

/// Drain the maildrop once (`intake run --once`).
pub async fn drain_once(ctx: PollCtx) -> Result<usize, String> {
    poller::drain_once(ctx, session).await
}
