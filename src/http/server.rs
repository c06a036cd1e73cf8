//! The HTTP listener: a router and `[http]` limits in, connections served
//! until shutdown.
//!
//! * At most `max_connections` connections are open at once. At the limit,
//!   the connection that has waited longest on its client (idle between
//!   requests, or sending its head or body) is closed to make room; only
//!   when every connection is being handled does accepting pause (new
//!   clients then wait in the kernel's backlog, holding no descriptor of
//!   ours). Slow clients therefore cannot hold every slot, and `/healthz`
//!   and `/readyz` keep answering under such a flood: a health check sends
//!   its request at once and is answered long before it is the oldest.
//! * A request head must arrive within `header_read_timeout` (counted from
//!   the connection's accept, or from the first byte after an idle spell),
//!   its body within `body_read_timeout` (counted from the head; then
//!   `408`), and an idle keep-alive connection is closed after
//!   `keepalive_timeout`.

use super::conn::{ConnState, Tracked, Watched};
use crate::config::HttpConfig;
use axum::Router;
use hyper::body::{Body as _, Incoming};
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tower::ServiceExt;

/// The `[http]` limits, as durations.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub keepalive_timeout: Duration,
}

impl From<&HttpConfig> for Limits {
    fn from(c: &HttpConfig) -> Limits {
        Limits {
            max_connections: c.max_connections.max(1),
            header_read_timeout: Duration::from_secs(c.header_read_timeout),
            body_read_timeout: Duration::from_secs(c.body_read_timeout),
            keepalive_timeout: Duration::from_secs(c.keepalive_timeout),
        }
    }
}

/// Every open connection, to pick one to close at the limit.
#[derive(Default)]
struct Table {
    open: Mutex<Vec<Arc<ConnState>>>,
}

impl Table {
    fn add(&self, st: &Arc<ConnState>) {
        self.lock().push(st.clone());
    }

    fn remove(&self, st: &Arc<ConnState>) {
        let mut open = self.lock();
        if let Some(i) = open.iter().position(|c| Arc::ptr_eq(c, st)) {
            open.swap_remove(i);
        }
    }

    /// Close the connection that has waited longest on its client. `false`
    /// when every connection is being handled.
    fn evict_oldest(&self) -> bool {
        let open = self.lock();
        let oldest = open
            .iter()
            .filter(|c| !c.is_evicted())
            .filter_map(|c| c.waiting_since().map(|t| (t, c)))
            .min_by_key(|(t, _)| *t);
        match oldest {
            Some((_, c)) => {
                c.evict();
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<ConnState>>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Serve `app` on `listener` under `limits` until `shutdown` resolves; then
/// every connection finishes its request in progress and closes.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    warn_if_descriptors_short(limits.max_connections);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let table = Arc::new(Table::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = &mut shutdown => break,
        };
        while conns.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors or a connection reset before accept:
                // back off a little instead of spinning.
                tracing::warn!(error = %e, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                let evicted = table.evict_oldest();
                metrics::counter!("intake_http_connections_at_limit_total").increment(1);
                if !evicted {
                    tracing::warn!(
                        max = limits.max_connections,
                        "every HTTP connection is busy: accepting pauses until one ends"
                    );
                }
                tokio::select! {
                    p = slots.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                    _ = &mut shutdown => break,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let st = ConnState::new();
        table.add(&st);
        let (app, table, stop) = (app.clone(), table.clone(), stop_rx.clone());
        conns.spawn(async move {
            serve_conn(stream, peer, app, st.clone(), limits, stop).await;
            table.remove(&st);
            drop(permit);
        });
    }
    let _ = stop_tx.send(true);
    while conns.join_next().await.is_some() {}
}

/// One connection: HTTP/1.1 with keep-alive, closed when it is evicted or
/// overstays its phase's deadline.
async fn serve_conn(
    stream: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    app: Router,
    st: Arc<ConnState>,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let io = TokioIo::new(Tracked {
        io: stream,
        st: st.clone(),
    });
    let svc_st = st.clone();
    let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let (app, st) = (app.clone(), svc_st.clone());
        async move {
            st.request_started(req.body().is_end_stream());
            let mut req = req;
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            let req = req.map(|b| {
                axum::body::Body::new(Watched::new(b, st.clone(), limits.body_read_timeout))
            });
            let res = app.oneshot(req).await;
            st.request_done();
            res
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .header_read_timeout(None)
        .serve_connection(io, svc);
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        if st.is_evicted() {
            metrics::counter!("intake_http_connections_closed_total", "reason" => "evicted")
                .increment(1);
            return;
        }
        let deadline = st.deadline(limits.header_read_timeout, limits.keepalive_timeout);
        let changed = st.changed.notified();
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "HTTP connection ended with an error");
                }
                return;
            }
            _ = changed => {}
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(far_future)), if deadline.is_some() => {
                if st.deadline(limits.header_read_timeout, limits.keepalive_timeout)
                    .is_some_and(|d| d <= tokio::time::Instant::now())
                {
                    metrics::counter!("intake_http_connections_closed_total", "reason" => "timeout")
                        .increment(1);
                    return;
                }
            }
            _ = stop.wait_for(|v| *v), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Descriptors kept for the database pool, mailboxes, SMTP and the process.
const OTHER_DESCRIPTORS: usize = 128;

/// Say so at start when the process may run out of descriptors before it
/// reaches `max_connections` (Linux; elsewhere nothing is checked).
fn warn_if_descriptors_short(max_connections: usize) {
    let Ok(limits) = std::fs::read_to_string("/proc/self/limits") else {
        return;
    };
    let soft = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<usize>().ok());
    if let Some(soft) = soft.filter(|s| *s < max_connections + OTHER_DESCRIPTORS) {
        tracing::warn!(
            soft_limit = soft,
            max_connections,
            "the open-file limit is below [http] max_connections plus {OTHER_DESCRIPTORS}: raise LimitNOFILE or lower max_connections"
        );
    }
}

fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(86_400)
}
