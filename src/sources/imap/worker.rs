//! The life of one folder worker: hold the lease, connect, select, drain,
//! wait (IDLE or poll), and on any failure back off with jitter and retry.
//! The drain ends only when a pass finds nothing new (see `fetch`), and
//! IDLE ends on the server's new-mail notice or after a fixed time (see
//! `idle`), so mail arriving at any moment is picked up.

use super::ack::Caps;
use super::connect::{bounded, open, ImapSession};
use super::status::{Registry, State};
use super::{fetch, lease, ImapError};
use crate::config::MailboxConfig;
use crate::pipeline::Pipeline;
use crate::store::now_ms;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The longest an IDLE lasts before it is ended and re-issued (servers
/// drop IDLE after 29 minutes; a silent peer may be gone: the DONE then
/// times out and the worker reconnects).
pub const IDLE_REISSUE: Duration = Duration::from_secs(5 * 60);

/// How long one IDLE lasts, counted from its start whatever the server
/// sends meanwhile (keepalives included), before DONE + re-IDLE proves the
/// connection alive: three command timeouts (at least 5 s), at most
/// [`IDLE_REISSUE`]. A half-open connection (a NAT or proxy that stopped
/// forwarding) is thus noticed within about four timeouts, not minutes.
pub fn idle_check(timeout: Duration) -> Duration {
    (timeout * 3).max(Duration::from_secs(5)).min(IDLE_REISSUE)
}
pub(crate) const BACKOFF_MIN: Duration = Duration::from_secs(1);
pub(crate) const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// Everything a folder worker needs.
#[derive(Clone)]
pub struct FolderCtx {
    pub cfg: Arc<MailboxConfig>,
    pub folder: String,
    pub pipeline: Pipeline,
    pub registry: Registry,
    /// Becomes `true` when the daemon shuts down.
    pub shutdown: watch::Receiver<bool>,
    /// Take a lease before working the folder.
    pub use_lease: bool,
}

impl FolderCtx {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.cfg.timeout.max(1))
    }
    pub fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }
    fn set(&self, state: State) {
        self.registry.set_state(&self.cfg.name, &self.folder, state);
    }
    fn fail(&self, state: State, e: &ImapError) {
        self.registry.update(&self.cfg.name, &self.folder, |s| {
            s.state = state;
            s.last_error = Some(e.to_string());
        });
    }
}

use super::idle::Wake;

/// Resolves once `rx` turns true (never when its sender is gone).
pub(super) async fn stopped(rx: &mut watch::Receiver<bool>) {
    if rx.wait_for(|v| *v).await.is_err() {
        std::future::pending::<()>().await
    }
}

/// Connect, select the folder and read its UIDVALIDITY and capabilities.
pub(crate) async fn session(ctx: &FolderCtx) -> Result<(ImapSession, Caps, u32), ImapError> {
    let mut s = open(&ctx.cfg).await?;
    let caps = bounded(ctx.timeout(), "CAPABILITY", s.capabilities()).await?;
    let caps = Caps::from(&caps);
    let wire = super::utf7::encode(&ctx.folder);
    let mb = bounded(ctx.timeout(), "SELECT", s.select(&wire))
        .await
        .map_err(|e| match e {
            ImapError::Imap(async_imap::error::Error::No(m)) => {
                ImapError::Folder(format!("{:?} cannot be selected: {m}", ctx.folder))
            }
            e => e,
        })?;
    let uv = mb.uid_validity.ok_or_else(|| {
        ImapError::Folder(format!("{:?}: server sent no UIDVALIDITY", ctx.folder))
    })?;
    Ok((s, caps, uv))
}

async fn logout(ctx: &FolderCtx, mut s: ImapSession) {
    let _ = tokio::time::timeout(ctx.timeout().min(Duration::from_secs(3)), s.logout()).await;
}

/// A complete drain: the folder has recovered from any earlier error once
/// nothing is owed on the server either.
fn succeeded(ctx: &FolderCtx) {
    ctx.registry.update(&ctx.cfg.name, &ctx.folder, |s| {
        s.last_success = Some(now_ms());
        if s.acks_owed == 0 {
            s.last_error = None;
        }
        if s.state != State::Idle {
            s.state = State::Connected;
        }
    });
}

/// Drain the folder once and log out (`intake run --once`).
pub async fn drain_folder_once(ctx: FolderCtx) -> Result<usize, ImapError> {
    let lname = lease::name(&ctx.cfg.name, &ctx.folder);
    let holder = lease::holder_id();
    if ctx.use_lease {
        let deadline = tokio::time::Instant::now() + lease::TTL + lease::RENEW;
        while !lease::acquire(&ctx.pipeline.store, &lname, &holder).await? {
            if tokio::time::Instant::now() > deadline {
                let e = ImapError::LeaseBusy;
                ctx.fail(State::Error, &e);
                return Err(e);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let res = async {
        let (mut s, caps, uv) = session(&ctx).await?;
        ctx.set(State::Connected);
        let n = fetch::drain(&mut s, &ctx, &caps, uv, true).await?;
        logout(&ctx, s).await;
        Ok::<_, ImapError>(n)
    }
    .await;
    if ctx.use_lease {
        let _ = lease::release(&ctx.pipeline.store, &lname, &holder).await;
    }
    match &res {
        Ok(n) => {
            succeeded(&ctx);
            tracing::info!(mailbox = %ctx.cfg.name, folder = %ctx.folder, imported = n, "folder drained");
            ctx.set(State::Stopped);
        }
        Err(e) => {
            tracing::error!(mailbox = %ctx.cfg.name, folder = %ctx.folder, error = %e, "folder drain failed");
            ctx.fail(State::Error, e);
        }
    }
    res
}

/// One connected session: drain, wait, drain... until shutdown or an error.
async fn connected(
    ctx: &FolderCtx,
    lost: &mut watch::Receiver<bool>,
    backoff: &mut Duration,
) -> Result<(), ImapError> {
    ctx.set(State::Starting);
    let (mut s, caps, uv) = session(ctx).await?;
    ctx.set(State::Connected);
    let mut shutdown = ctx.shutdown.clone();
    let mut fresh = true;
    loop {
        fetch::drain(&mut s, ctx, &caps, uv, fresh).await?;
        fresh = false;
        succeeded(ctx);
        *backoff = BACKOFF_MIN;
        if ctx.stopping() {
            logout(ctx, s).await;
            return Ok(());
        }
        if *lost.borrow() {
            logout(ctx, s).await;
            return Err(ImapError::LeaseLost);
        }
        if ctx.cfg.idle && caps.idle {
            let (s2, wake) =
                super::idle::idle(s, ctx, &mut shutdown, lost, || ctx.set(State::Idle)).await?;
            s = s2;
            if wake == Wake::NewMail {
                tracing::debug!(mailbox = %ctx.cfg.name, folder = %ctx.folder, "new mail announced");
            }
            ctx.set(State::Connected);
        } else {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(ctx.cfg.poll_interval.max(1))) => {}
                _ = stopped(&mut shutdown) => {}
                _ = stopped(lost) => {}
            }
            bounded(ctx.timeout(), "NOOP", s.noop()).await?;
        }
    }
}

/// Work a folder until shutdown: lease, session, backoff, repeat.
pub async fn run_folder(ctx: FolderCtx) {
    let lname = lease::name(&ctx.cfg.name, &ctx.folder);
    let holder = lease::holder_id();
    let store = ctx.pipeline.store.clone();
    let mut shutdown = ctx.shutdown.clone();
    let mut backoff = BACKOFF_MIN;
    while !ctx.stopping() {
        let (lost_tx, mut lost) = watch::channel(false);
        let renewer = if ctx.use_lease {
            match lease::acquire(&store, &lname, &holder).await {
                Ok(true) => {}
                Ok(false) => {
                    ctx.set(State::Standby);
                    tokio::select! { _ = tokio::time::sleep(lease::RENEW) => {}, _ = stopped(&mut shutdown) => {} }
                    continue;
                }
                Err(e) => {
                    ctx.fail(State::BackingOff, &e.into());
                    tokio::select! { _ = tokio::time::sleep(lease::RENEW) => {}, _ = stopped(&mut shutdown) => {} }
                    continue;
                }
            }
            let (store, lname, holder) = (store.clone(), lname.clone(), holder.clone());
            Some(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(lease::RENEW).await;
                    if !matches!(lease::acquire(&store, &lname, &holder).await, Ok(true)) {
                        tracing::warn!(lease = %lname, "lease renewal failed: stopping work on this folder");
                        let _ = lost_tx.send(true);
                        return;
                    }
                }
            }))
        } else {
            None
        };
        let res = connected(&ctx, &mut lost, &mut backoff).await;
        if let Some(r) = renewer {
            r.abort();
        }
        match res {
            Ok(()) => break,
            Err(e) => {
                let wait = jitter(backoff);
                tracing::warn!(mailbox = %ctx.cfg.name, folder = %ctx.folder, error = %e, retry_in_ms = wait.as_millis() as u64, "mailbox session ended");
                ctx.fail(State::BackingOff, &e);
                ctx.registry
                    .update(&ctx.cfg.name, &ctx.folder, |s| s.reconnects += 1);
                metrics::counter!("intake_mailbox_reconnects_total", "mailbox" => ctx.cfg.name.clone()).increment(1);
                backoff = (backoff * 2).min(BACKOFF_MAX);
                // A storage fault: come back as soon as writes succeed again.
                let store_fault = matches!(&e, ImapError::Store(se) if se.is_transient());
                let recovered = async {
                    tokio::time::sleep(BACKOFF_MIN).await;
                    store.wait_writable().await
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {},
                    _ = recovered, if store_fault => {},
                    _ = stopped(&mut shutdown) => {},
                }
            }
        }
    }
    if ctx.use_lease {
        let _ = lease::release(&store, &lname, &holder).await;
    }
    ctx.set(State::Stopped);
}

/// Between half and the full delay, so that many workers do not reconnect in step.
pub(crate) fn jitter(d: Duration) -> Duration {
    let ms = d.as_millis() as u64;
    Duration::from_millis(ms / 2 + rand::random::<u64>() % (ms / 2 + 1))
}
