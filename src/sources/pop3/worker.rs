//! The life of a POP3 worker: hold the mailbox's lease (PostgreSQL), open a
//! session, drain, QUIT, wait `poll_interval` (POP3 has no push), again;
//! on any failure back off with jitter. `intake run --once` drains once.

use super::client::Pop3;
use super::{drain, Pop3Error, SCOPE};
use crate::config::MailboxConfig;
use crate::pipeline::Pipeline;
use crate::sources::imap::status::FolderStatus;
use crate::sources::imap::worker::{jitter, BACKOFF_MAX, BACKOFF_MIN};
use crate::sources::imap::{lease, Registry, State};
use crate::store::now_ms;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Everything a POP3 worker needs.
#[derive(Clone)]
pub struct Pop3Ctx {
    pub cfg: Arc<MailboxConfig>,
    pub pipeline: Pipeline,
    pub registry: Registry,
    /// Becomes `true` when the daemon shuts down.
    pub shutdown: watch::Receiver<bool>,
    /// Take a lease before working the mailbox.
    pub use_lease: bool,
    /// Becomes `true` when the lease could not be renewed.
    pub lease_lost: watch::Receiver<bool>,
    /// Sessions whose RETR of a UIDL was refused, across sessions.
    refusals: Arc<Mutex<HashMap<String, u32>>>,
}

impl Pop3Ctx {
    pub fn new(
        cfg: Arc<MailboxConfig>,
        pipeline: Pipeline,
        registry: Registry,
        shutdown: watch::Receiver<bool>,
        use_lease: bool,
    ) -> Pop3Ctx {
        registry.register_kind(&cfg.name, SCOPE, "pop3");
        Pop3Ctx {
            cfg,
            pipeline,
            registry,
            shutdown,
            use_lease,
            lease_lost: watch::channel(false).1,
            refusals: Default::default(),
        }
    }
    pub fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }
    pub fn lost(&self) -> bool {
        *self.lease_lost.borrow()
    }
    pub fn status(&self, f: impl FnOnce(&mut FolderStatus)) {
        self.registry.update(&self.cfg.name, SCOPE, f);
    }
    fn set(&self, state: State) {
        self.status(|s| s.state = state);
    }
    fn fail(&self, state: State, e: &Pop3Error) {
        self.status(|s| {
            s.state = state;
            s.last_error = Some(e.to_string());
        });
    }
    /// Count one more refusal of `uidl`; how many so far.
    pub(super) fn refused(&self, uidl: &str) -> u32 {
        let mut m = self.refusals.lock().expect("refusals lock");
        let n = m.entry(uidl.to_string()).or_default();
        *n += 1;
        *n
    }
    fn lease_name(&self) -> String {
        format!("pop3:{}", self.cfg.name)
    }
}

/// One session: connect, log in, drain, QUIT (which carries out DELE).
async fn session(ctx: &Pop3Ctx) -> Result<usize, Pop3Error> {
    ctx.set(State::Starting);
    let mut c = Pop3::open(&ctx.cfg).await?;
    ctx.set(State::Connected);
    let n = drain::drain(&mut c, ctx).await?;
    c.quit().await?;
    ctx.status(|s| {
        s.last_success = Some(now_ms());
        s.last_error = None;
        s.acks_owed = 0;
    });
    Ok(n)
}

async fn stopped(rx: &mut watch::Receiver<bool>) {
    if rx.wait_for(|v| *v).await.is_err() {
        std::future::pending::<()>().await
    }
}

/// Start renewing the lease; the handle stops it.
fn renew(ctx: &mut Pop3Ctx) -> tokio::task::JoinHandle<()> {
    let (tx, rx) = watch::channel(false);
    ctx.lease_lost = rx;
    let (store, name) = (ctx.pipeline.store.clone(), ctx.lease_name());
    tokio::spawn(async move {
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
    })
}

/// Drain once and stop (`intake run --once`).
pub async fn drain_once(mut ctx: Pop3Ctx) -> Result<usize, Pop3Error> {
    let (store, name, holder) = (
        ctx.pipeline.store.clone(),
        ctx.lease_name(),
        lease::holder_id(),
    );
    let mut renewer = None;
    if ctx.use_lease {
        let deadline = tokio::time::Instant::now() + lease::TTL + lease::RENEW;
        while !lease::acquire(&store, &name, &holder).await? {
            if tokio::time::Instant::now() > deadline {
                let e = Pop3Error::LeaseBusy;
                ctx.fail(State::Error, &e);
                return Err(e);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        renewer = Some(renew(&mut ctx));
    }
    let res = session(&ctx).await;
    if let Some(r) = renewer {
        r.abort();
        let _ = lease::release(&store, &name, &holder).await;
    }
    match &res {
        Ok(n) => {
            tracing::info!(mailbox = %ctx.cfg.name, imported = n, "POP3 maildrop drained");
            ctx.set(State::Stopped);
        }
        Err(e) => {
            tracing::error!(mailbox = %ctx.cfg.name, error = %e, "POP3 drain failed");
            ctx.fail(State::Error, e);
        }
    }
    res
}

/// Work the mailbox until shutdown.
pub async fn run(mut ctx: Pop3Ctx) {
    let (store, name, holder) = (
        ctx.pipeline.store.clone(),
        ctx.lease_name(),
        lease::holder_id(),
    );
    let mut shutdown = ctx.shutdown.clone();
    let mut backoff = BACKOFF_MIN;
    let poll = Duration::from_secs(ctx.cfg.poll_interval.max(1));
    while !ctx.stopping() {
        let mut renewer = None;
        if ctx.use_lease {
            match lease::acquire(&store, &name, &holder).await {
                Ok(true) => renewer = Some(renew(&mut ctx)),
                other => {
                    if let Err(e) = other {
                        ctx.fail(State::BackingOff, &e.into());
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
            let wait = match session(&ctx).await {
                Ok(_) => {
                    backoff = BACKOFF_MIN;
                    ctx.set(State::Idle);
                    poll
                }
                Err(e) => {
                    let wait = jitter(backoff);
                    tracing::warn!(mailbox = %ctx.cfg.name, error = %e, retry_in_ms = wait.as_millis() as u64, "POP3 session ended");
                    ctx.fail(State::BackingOff, &e);
                    ctx.status(|s| s.reconnects += 1);
                    metrics::counter!("intake_imap_reconnects_total", "mailbox" => ctx.cfg.name.clone()).increment(1);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    wait
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
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
