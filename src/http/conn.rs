//! One HTTP connection's progress, as the server's timeouts and its
//! connection cap see it: the socket wrapper ([`Tracked`]) notes when a
//! request head starts to arrive, the service marks a request as started
//! and answered, and the body wrapper ([`Watched`]) notes when the body has
//! been read and cuts it at its deadline.
//!
//! A connection waits on its client while it is idle between requests, while
//! a request head arrives and while a body arrives; only then may it be
//! closed to make room for another (never while its request is handled).

use axum::body::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

/// Where a connection is in its request cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Accepted, or bytes of a request head arrived: the head is due within
    /// `header_read_timeout`.
    Head,
    /// Between requests: closed after `keepalive_timeout`.
    Idle,
    /// The head is in, the body is arriving (bounded by `body_read_timeout`).
    Body,
    /// The request is being handled and answered.
    Handling,
}

/// Shared progress of one connection.
#[derive(Debug)]
pub struct ConnState {
    phase: Mutex<(Phase, Instant)>,
    evicted: AtomicBool,
    /// Woken on every phase change and on eviction.
    pub changed: Notify,
}

impl ConnState {
    /// A connection just accepted: its first head is due.
    pub fn new() -> Arc<ConnState> {
        Arc::new(ConnState {
            phase: Mutex::new((Phase::Head, Instant::now())),
            evicted: AtomicBool::new(false),
            changed: Notify::new(),
        })
    }

    /// The phase and since when.
    pub fn phase(&self) -> (Phase, Instant) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, p: Phase, only_from: Option<Phase>) {
        let mut g = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        if only_from.is_none_or(|f| g.0 == f) && g.0 != p {
            *g = (p, Instant::now());
            drop(g);
            self.changed.notify_one();
        }
    }

    /// Bytes arrived: after an idle spell, that is a new request head.
    fn bytes_read(&self) {
        self.set(Phase::Head, Some(Phase::Idle));
    }

    /// A request head was parsed; `empty` when it has no body.
    pub fn request_started(&self, empty: bool) {
        self.set(if empty { Phase::Handling } else { Phase::Body }, None);
    }

    fn body_done(&self) {
        self.set(Phase::Handling, Some(Phase::Body));
    }

    /// The answer is ready: the connection waits for the next request.
    pub fn request_done(&self) {
        self.set(Phase::Idle, None);
    }

    /// Since when this connection waits on its client; `None` while its
    /// request is handled.
    pub fn waiting_since(&self) -> Option<Instant> {
        let (p, since) = self.phase();
        (p != Phase::Handling).then_some(since)
    }

    /// When the connection is due to be closed for slowness, if ever.
    pub fn deadline(&self, header: Duration, keepalive: Duration) -> Option<Instant> {
        match self.phase() {
            (Phase::Head, since) => Some(since + header),
            (Phase::Idle, since) => Some(since + keepalive),
            (Phase::Body | Phase::Handling, _) => None,
        }
    }

    /// Ask the connection to close (it waits on a slow client and the
    /// server needs its slot).
    pub fn evict(&self) {
        self.evicted.store(true, Ordering::Relaxed);
        self.changed.notify_one();
    }

    pub fn is_evicted(&self) -> bool {
        self.evicted.load(Ordering::Relaxed)
    }
}

/// The socket, reporting reads to the connection's state.
pub struct Tracked {
    pub io: TcpStream,
    pub st: Arc<ConnState>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.st.bytes_read();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// The body did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("request body not received within {0} s (http.body_read_timeout)")]
pub struct BodyTimeout(pub u64);

/// Is `e`, or what caused it, a [`BodyTimeout`]?
pub fn is_body_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if e.is::<BodyTimeout>() {
            return true;
        }
        cur = e.source();
    }
    false
}

/// A request body with a deadline for the whole of it, reporting its end
/// (or its abandonment by the handler) to the connection's state.
pub struct Watched {
    inner: Incoming,
    st: Arc<ConnState>,
    deadline: Pin<Box<Sleep>>,
    limit: Duration,
}

impl Watched {
    pub fn new(inner: Incoming, st: Arc<ConnState>, limit: Duration) -> Watched {
        Watched {
            inner,
            st,
            deadline: Box::pin(tokio::time::sleep(limit)),
            limit,
        }
    }
}

impl Body for Watched {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                self.st.body_done();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                self.st.body_done();
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(Some(Ok(f))) => Poll::Ready(Some(Ok(f))),
            Poll::Pending => {
                if self.deadline.as_mut().poll(cx).is_ready() {
                    self.st.body_done();
                    let secs = self.limit.as_secs();
                    return Poll::Ready(Some(Err(Box::new(BodyTimeout(secs)))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.st.body_done();
    }
}
