//! Why a session with an HTTP mail API ended: one error type for JMAP and
//! Microsoft Graph (`JmapError`, `GraphError`), which differ only in the
//! name their protocol errors carry and in the statuses only Graph gives.

use crate::sources::session_error::{error_chain, LinkError, SessionError};
use crate::store::StoreError;
use std::marker::PhantomData;

/// The API whose session failed: the prefix of its protocol errors.
pub trait Api: std::fmt::Debug + Send + Sync + 'static {
    const NAME: &'static str;
}

#[derive(Debug)]
pub struct Jmap;
impl Api for Jmap {
    const NAME: &'static str = "jmap";
}

#[derive(Debug)]
pub struct Graph;
impl Api for Graph {
    const NAME: &'static str = "graph";
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError<A: Api> {
    /// Connect, authenticate, time out: as every kind fails.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The server answered with something the API does not allow, or a
    /// method error.
    #[error("{}: {}", A::NAME, .0)]
    Protocol(String),
    /// An HTTP error status other than those below.
    #[error("{}: {}", A::NAME, .0)]
    Status(String),
    /// 404 for what must exist (Graph: the folder).
    #[error("{}: {}", A::NAME, .0)]
    NotFound(String),
    /// A delta link the service no longer knows (Graph: 410 Gone).
    #[error("{}: {}", A::NAME, .0)]
    Gone(String),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("lease lost: another daemon works this mailbox now")]
    LeaseLost,
    /// Never made: it only names the API (uninhabited).
    #[doc(hidden)]
    #[error("{0}")]
    _Api(std::convert::Infallible, PhantomData<A>),
}

impl<A: Api> From<reqwest::Error> for ApiError<A> {
    fn from(e: reqwest::Error) -> Self {
        let text = error_chain(&e);
        if e.is_timeout() {
            LinkError::Timeout(text).into()
        } else if e.is_decode() {
            ApiError::Protocol(text)
        } else {
            LinkError::Connect(text).into()
        }
    }
}

impl<A: Api> SessionError for ApiError<A> {
    fn lease_lost(&self) -> bool {
        matches!(self, ApiError::LeaseLost)
    }
}
