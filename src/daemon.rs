//! `intake run`: a worker per (mailbox, folder), the HTTP server, systemd
//! readiness and watchdog, and a bounded graceful shutdown on SIGTERM/SIGINT.

use crate::app::{App, EX_TEMPFAIL};
use crate::config::Config;
use crate::pipeline::Pipeline;
use crate::sources::imap::Registry;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How long shutdown may take before the remaining work is abandoned
/// (uncommitted work is simply fetched again next time).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    #[error("cannot listen on {0}: {1}")]
    Listen(String, std::io::Error),
    #[error("{0}")]
    Config(String),
}

/// Drain every mailbox folder of `cfg` once through `pipeline`,
/// concurrently. `true` when all succeeded.
pub async fn drain_once(cfg: &Config, pipeline: &Pipeline, registry: &Registry) -> bool {
    let app = App {
        config: std::sync::Arc::new(cfg.clone()),
        pipeline: pipeline.clone(),
    };
    crate::sources::drain_once(&app, registry).await
}

/// A running daemon (in-process handle, used by `intake run` and tests).
pub struct Daemon {
    pub addr: SocketAddr,
    pub registry: Registry,
    pub pipeline: Pipeline,
    stop: watch::Sender<bool>,
    workers: JoinSet<()>,
    dead: bool,
    http: tokio::task::JoinHandle<()>,
}

impl Daemon {
    /// Start the workers and the HTTP server on `[http] listen`.
    pub async fn start(cfg: Config) -> Result<Daemon, StartError> {
        Self::start_app(App::build(cfg).await?).await
    }

    /// [`Daemon::start`] for an application built already.
    pub async fn start_app(app: App) -> Result<Daemon, StartError> {
        // Before the sources register their folders (and gauges).
        crate::metrics::handle();
        let (cfg, pipeline) = (app.config.as_ref(), app.pipeline.clone());
        let registry = Registry::default();
        let (stop, rx) = watch::channel(false);
        let sources = crate::sources::workers(&app, &registry, &rx);
        let listener = tokio::net::TcpListener::bind(&cfg.http.listen)
            .await
            .map_err(|e| StartError::Listen(cfg.http.listen.clone(), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| StartError::Listen(cfg.http.listen.clone(), e))?;
        let mut state = crate::http::AppState::new(pipeline.clone(), app.config.clone())
            .map_err(StartError::Config)?;
        state.imap = registry.clone();
        let router = crate::http::router(state);
        let limits = crate::http::server::Limits::from(&cfg.http);
        let mut http_rx = rx.clone();
        let http = tokio::spawn(async move {
            let shutdown = async move {
                let _ = http_rx.wait_for(|v| *v).await;
            };
            crate::http::server::serve(listener, router, limits, shutdown).await;
        });
        let mut workers = JoinSet::new();
        for w in sources {
            workers.spawn(w);
        }
        if cfg.smtp.is_some() {
            let (sender, rx) = (app.sender(), rx.clone());
            workers.spawn(async move {
                let res = match sender {
                    Ok(s) => crate::notify::run_sender(s, rx).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = res {
                    tracing::error!(error = %e, "notification sender cannot run");
                }
            });
        }
        workers.spawn(purge_review(
            pipeline.store.clone(),
            cfg.trust.retention_ms(),
            rx.clone(),
        ));
        if cfg.blobs.gc_interval_hours > 0 {
            workers.spawn(sweep_blobs(
                pipeline.store.clone(),
                cfg.blobs.orphan_grace(),
                Duration::from_secs(cfg.blobs.gc_interval_hours * 3600),
                rx.clone(),
            ));
        }
        if cfg.retention.is_set() {
            workers.spawn(apply_retention(
                pipeline.store.clone(),
                cfg.retention.policy(),
                Duration::from_secs(cfg.retention.interval_minutes * 60),
                rx.clone(),
            ));
        }
        if cfg.trust.authserv_ids.is_empty() {
            tracing::warn!("[trust] authserv_ids is not set: senders are not verified (the From header is believed)");
        }
        tracing::info!(%addr, folders = workers.len(), "intake running");
        Ok(Daemon {
            addr,
            registry,
            pipeline,
            stop,
            workers,
            dead: false,
            http,
        })
    }

    /// Ask every worker to finish its batch and log out.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Stop and wait (bounded by [`SHUTDOWN_GRACE`]).
    pub async fn shutdown(mut self) {
        self.stop();
        let all = async { while self.workers.join_next().await.is_some() {} };
        if tokio::time::timeout(SHUTDOWN_GRACE, all).await.is_err() {
            tracing::warn!("workers did not finish in time: abandoning their uncommitted work");
            self.workers.abort_all();
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), &mut self.http).await;
        self.http.abort();
    }

    /// True while no worker task has ended (they only end on shutdown).
    pub fn workers_alive(&mut self) -> bool {
        if let Some(r) = self.workers.try_join_next() {
            tracing::error!(result = ?r.err(), "a mailbox worker ended unexpectedly");
            self.dead = true;
        }
        !self.dead
    }
}

/// Purge review entries older than the retention, at start and hourly,
/// until the daemon stops.
async fn purge_review(
    store: crate::store::Store,
    retention_ms: i64,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        match store
            .review_purge(crate::store::now_ms() - retention_ms)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "review entries past their retention purged"),
            Err(e) => tracing::warn!(error = %e, "review purge failed; retried in an hour"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = stop.wait_for(|v| *v) => return,
        }
    }
}

/// Remove orphan blobs (written by a batch that never committed, or left
/// by an erasure that stopped half way) every `every`, the first time one
/// period after start, until the daemon stops.
async fn sweep_blobs(
    store: crate::store::Store,
    grace: Duration,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|v| *v) => return,
        }
        match store.blobs_gc(grace, false).await {
            Ok(s) if s.removed > 0 => {
                tracing::info!(
                    removed = s.removed,
                    bytes = s.orphan_bytes,
                    "orphan blobs removed"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "orphan blob sweep failed; tried again later"),
        }
    }
}

/// Apply `[retention]` at start and every `every`, until the daemon stops.
async fn apply_retention(
    store: crate::store::Store,
    policy: crate::store::RetentionPolicy,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        match store
            .retention_run(&policy, crate::store::now_ms(), false)
            .await
        {
            Ok(p) => tracing::debug!(?p, "retention applied"),
            Err(e) => tracing::warn!(error = %e, "retention failed; tried again later"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|v| *v) => return,
        }
    }
}

/// `intake run [--once]`: returns the process exit code.
pub async fn run(cfg: Config, once: bool) -> u8 {
    if !once {
        // Installed before the store opens, so nothing it records is lost.
        crate::metrics::handle();
    }
    let app = match App::build(cfg).await {
        Ok(a) => a,
        Err(e) => {
            eprintln!("intake: {e}");
            return if once { EX_TEMPFAIL } else { 1 };
        }
    };
    if once {
        let registry = Registry::default();
        let bars = crate::sources::progress::show(registry.clone());
        let mut ok = crate::sources::drain_once(&app, &registry).await;
        if let Some(b) = bars {
            b.finish().await;
        }
        let cfg = &app.config;
        // Cron deployments have no sender task: deliver what is due now.
        if cfg.smtp.is_some() {
            let sent = match app.sender() {
                Ok(s) => crate::notify::drain(&s).await,
                Err(e) => Err(e),
            };
            if let Err(e) = sent {
                tracing::error!(error = %e, "notifications not sent; they stay pending for the next run");
                ok = false;
            }
        }
        app.store().close().await;
        return if ok { 0 } else { 1 };
    }
    let mut d = match Daemon::start_app(app).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("intake: {e}");
            return 1;
        }
    };
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    let mut usec = 0u64;
    let watchdog =
        sd_notify::watchdog_enabled(false, &mut usec).then(|| Duration::from_micros(usec / 2));
    let mut tick = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("intake: cannot install SIGTERM handler: {e}");
            return 1;
        }
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = tick.tick() => {
                if watchdog.is_some() && d.workers_alive() && d.pipeline.store.ping().await {
                    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
                }
            }
        }
    }
    tracing::info!("shutting down: finishing in-flight batches");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    d.shutdown().await;
    0
}
