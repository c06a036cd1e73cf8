//! The life of a worker for a mailbox kind without a standing connection
//! (POP3, JMAP): hold the mailbox's lease (PostgreSQL), run a session that
//! drains it, wait (`poll_interval`, or the kind's own push), again; on any
//! failure back off with jitter. `intake run --once` drains once. The kind
//! gives its session and its wait as functions.

use crate::config::MailboxConfig;
use crate::pipeline::Pipeline;
use crate::sources::imap::status::FolderStatus;
use crate::sources::imap::worker::{jitter, BACKOFF_MAX, BACKOFF_MIN};
use crate::sources::imap::{lease, Registry, State};
use crate::sources::session_error::SessionError;
use crate::store::now_ms;
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Everything a polling worker needs.
#[derive(Clone)]
pub struct PollCtx {
    pub cfg: Arc<MailboxConfig>,
    pub pipeline: Pipeline,
    pub registry: Registry,
    /// Becomes `true` when the daemon shuts down.
    pub shutdown: watch::Receiver<bool>,
    /// Take a lease before working the mailbox.
    pub use_lease: bool,
    /// Becomes `true` when the lease could not be renewed.
    pub lease_lost: watch::Receiver<bool>,
    /// The scope shown in the status (a POP3 maildrop: INBOX).
    pub scope: String,
}

impl PollCtx {
    pub fn new(
        cfg: Arc<MailboxConfig>,
        pipeline: Pipeline,
        registry: Registry,
        shutdown: watch::Receiver<bool>,
        use_lease: bool,
        scope: &str,
    ) -> PollCtx {
        registry.register_kind(&cfg.name, scope, cfg.protocol.as_str());
        PollCtx {
            scope: scope.to_string(),
            cfg,
            pipeline,
            registry,
            shutdown,
            use_lease,
            lease_lost: watch::channel(false).1,
        }
    }
    pub fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }
    pub fn lost(&self) -> bool {
        *self.lease_lost.borrow()
    }
    pub fn status(&self, f: impl FnOnce(&mut FolderStatus)) {
        self.registry.update(&self.cfg.name, &self.scope, f);
    }
    fn set(&self, state: State) {
        self.status(|s| s.state = state);
    }
    fn fail(&self, state: State, e: &dyn std::fmt::Display) {
        self.status(|s| {
            s.state = state;
            s.last_error = Some(e.to_string());
        });
    }
    /// Count one more refusal of `uidl`; how many so far.
    pub fn refused(&self, uidl: &str) -> u32 {
        let mut m = self.registry.refusals.lock().expect("refusals lock");
        let key = format!("{}/{}/{uidl}", self.cfg.name, self.scope);
        let n = m.entry(key).or_default();
        *n += 1;
        *n
    }
    fn lease_name(&self) -> String {
        format!("{}:{}", self.cfg.protocol.as_str(), self.cfg.name)
    }
}

/// A kind's session (drain once) and its wait between sessions.
pub type Session<E> = for<'a> fn(&'a PollCtx) -> BoxFuture<'a, Result<usize, E>>;

async fn session<E: SessionError>(ctx: &PollCtx, f: Session<E>) -> Result<usize, E> {
    ctx.set(State::Starting);
    let n = f(ctx).await?;
    ctx.status(|s| {
        s.last_success = Some(now_ms());
        s.last_error = None;
        s.acks_owed = 0;
    });
    Ok(n)
}

/// Sleep `poll_interval`, the wait of kinds without push.
pub fn poll_wait(ctx: &PollCtx) -> BoxFuture<'_, ()> {
    Box::pin(tokio::time::sleep(Duration::from_secs(
        ctx.cfg.poll_interval.max(1),
    )))
}

async fn stopped(rx: &mut watch::Receiver<bool>) {
    if rx.wait_for(|v| *v).await.is_err() {
        std::future::pending::<()>().await
    }
}

/// Stops the lease renewal when dropped, also when the worker panics.
struct Renewer(tokio::task::JoinHandle<()>);

impl Renewer {
    fn abort(&self) {
        self.0.abort();
    }
}

impl Drop for Renewer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Start renewing the lease; the handle stops it (also when dropped).
fn renew(ctx: &mut PollCtx) -> Renewer {
    let (tx, rx) = watch::channel(false);
    ctx.lease_lost = rx;
    let (store, name) = (ctx.pipeline.store.clone(), ctx.lease_name());
    Renewer(tokio::spawn(async move {
        loop {
            tokio::time::sleep(lease::RENEW).await;
            if !matches!(
                lease::acquire(&store, &name, &lease::holder_id()).await,
                Ok(true)
            ) {
                tracing::warn!(lease = %name, "lease renewal failed: stopping work on this mailbox");
                let _ = tx.send(true);
                return;
            }
        }
    }))
}

/// Drain once and stop (`intake run --once`).
pub async fn drain_once<E: SessionError>(mut ctx: PollCtx, f: Session<E>) -> Result<usize, String> {
    let (store, name, holder) = (
        ctx.pipeline.store.clone(),
        ctx.lease_name(),
        lease::holder_id(),
    );
    let mut renewer = None;
    if ctx.use_lease {
        let deadline = tokio::time::Instant::now() + lease::TTL + lease::RENEW;
        while !lease::acquire(&store, &name, &holder)
            .await
            .map_err(|e| e.to_string())?
        {
            if tokio::time::Instant::now() > deadline {
                let e = "lease for this mailbox is held by another daemon";
                ctx.fail(State::Error, &e);
                return Err(e.into());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        renewer = Some(renew(&mut ctx));
    }
    let res = session(&ctx, f).await.map_err(|e| e.to_string());
    if let Some(r) = renewer {
        r.abort();
        let _ = lease::release(&store, &name, &holder).await;
    }
    match &res {
        Ok(n) => {
            tracing::info!(mailbox = %ctx.cfg.name, kind = ctx.cfg.protocol.as_str(), imported = n, "mailbox drained");
            ctx.set(State::Stopped);
        }
        Err(e) => {
            tracing::error!(mailbox = %ctx.cfg.name, kind = ctx.cfg.protocol.as_str(), error = %e, "mailbox drain failed");
            ctx.fail(State::Error, e);
        }
    }
    res
}

/// Work the mailbox until shutdown.
pub async fn run<E: SessionError>(
    mut ctx: PollCtx,
    f: Session<E>,
    wait: for<'a> fn(&'a PollCtx) -> BoxFuture<'a, ()>,
) {
    let (store, name, holder) = (
        ctx.pipeline.store.clone(),
        ctx.lease_name(),
        lease::holder_id(),
    );
    let mut shutdown = ctx.shutdown.clone();
    let mut backoff = BACKOFF_MIN;
    while !ctx.stopping() {
        let mut renewer = None;
        if ctx.use_lease {
            match lease::acquire(&store, &name, &holder).await {
                Ok(true) => renewer = Some(renew(&mut ctx)),
                other => {
                    if let Err(e) = other {
                        ctx.fail(State::BackingOff, &e);
                    } else {
                        ctx.set(State::Standby);
                    }
                    tokio::select! { _ = tokio::time::sleep(lease::RENEW) => {}, _ = stopped(&mut shutdown) => {} }
                    continue;
                }
            }
        }
        let mut lost = ctx.lease_lost.clone();
        while !ctx.stopping() && !ctx.lost() {
            let pause = match session(&ctx, f).await {
                Ok(_) => {
                    backoff = BACKOFF_MIN;
                    ctx.set(State::Idle);
                    None
                }
                Err(e) if e.lease_lost() => break,
                Err(e) => {
                    let wait = jitter(backoff);
                    tracing::warn!(mailbox = %ctx.cfg.name, kind = ctx.cfg.protocol.as_str(), error = %e, retry_in_ms = wait.as_millis() as u64, "mailbox session ended");
                    ctx.fail(State::BackingOff, &e);
                    ctx.status(|s| s.reconnects += 1);
                    metrics::counter!("intake_mailbox_reconnects_total", "mailbox" => ctx.cfg.name.clone()).increment(1);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    Some(wait)
                }
            };
            let waiting = async {
                match pause {
                    Some(d) => tokio::time::sleep(d).await,
                    None => wait(&ctx).await,
                }
            };
            tokio::select! {
                _ = waiting => {}
                _ = stopped(&mut shutdown) => {}
                _ = stopped(&mut lost) => {}
            }
        }
        if let Some(r) = renewer {
            r.abort();
        }
    }
    if ctx.use_lease {
        let _ = lease::release(&store, &name, &holder).await;
    }
    ctx.set(State::Stopped);
}
