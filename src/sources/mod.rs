//! Mailbox sources: where a mailbox kind differs (connect, list new, fetch,
//! acknowledge, its checkpoint's encoding), it lives in its own folder
//! here. Every kind hands `Inbound` items and an opaque `Checkpoint` to
//! [`Pipeline::ingest`](crate::pipeline::Pipeline::ingest), the one entry
//! point, and acknowledges on its server only after that commit; the
//! webhooks (`http`) and the MTA pipe (`intake ingest`) use the same call.
//!
//! Adding a kind: a folder beside `imap/`, its keys in `[[mailboxes]]`
//! (`config::sections`), and one line in [`workers`] and [`drain_once`].

pub mod api_error;
pub mod archive;
pub mod graph;
pub mod imap;
pub mod jmap;
pub mod poll_batch;
pub mod poller;
pub mod pop3;
pub mod progress;
pub mod session_error;

use crate::app::App;
use crate::config::{MailboxConfig, Protocol};
use crate::store::Backend;
use futures::future::BoxFuture;
use futures::FutureExt;
use imap::{FolderCtx, Registry};
use std::sync::Arc;
use tokio::sync::watch;

/// The IMAP folders of every IMAP mailbox, registered in `registry`.
fn imap_folders(
    app: &App,
    m: &Arc<MailboxConfig>,
    registry: &Registry,
    shutdown: &watch::Receiver<bool>,
) -> Vec<FolderCtx> {
    let use_lease = app.store().backend() == Backend::Postgres;
    m.folder_list()
        .into_iter()
        .map(|folder| {
            registry.register(&m.name, &folder);
            FolderCtx {
                cfg: m.clone(),
                folder,
                pipeline: app.pipeline.clone(),
                registry: registry.clone(),
                shutdown: shutdown.clone(),
                use_lease,
            }
        })
        .collect()
}

/// The context of a polling worker (POP3, JMAP).
fn poll_ctx(
    app: &App,
    m: &Arc<MailboxConfig>,
    registry: &Registry,
    shutdown: &watch::Receiver<bool>,
) -> poller::PollCtx {
    let use_lease = app.store().backend() == Backend::Postgres;
    let scope = match m.protocol {
        Protocol::Jmap | Protocol::Graph => m.folder.clone().unwrap_or_else(|| "inbox".into()),
        _ => pop3::SCOPE.into(),
    };
    poller::PollCtx::new(
        m.clone(),
        app.pipeline.clone(),
        registry.clone(),
        shutdown.clone(),
        use_lease,
        &scope,
    )
}

/// One long-running task per source (per IMAP folder), until `shutdown`.
pub fn workers(
    app: &App,
    registry: &Registry,
    shutdown: &watch::Receiver<bool>,
) -> Vec<BoxFuture<'static, ()>> {
    let mut out = Vec::new();
    for m in &app.config.mailboxes {
        let m = Arc::new(m.clone());
        match m.protocol {
            Protocol::Imap => out.extend(
                imap_folders(app, &m, registry, shutdown)
                    .into_iter()
                    .map(|c| imap::run_folder(c).boxed()),
            ),
            Protocol::Pop3 => out.push(pop3::run(poll_ctx(app, &m, registry, shutdown)).boxed()),
            Protocol::Jmap => out.push(jmap::run(poll_ctx(app, &m, registry, shutdown)).boxed()),
            Protocol::Graph => out.push(graph::run(poll_ctx(app, &m, registry, shutdown)).boxed()),
        }
    }
    out
}

/// Drain every source once, concurrently (`intake run --once`, tests).
/// `true` when all succeeded.
pub async fn drain_once(app: &App, registry: &Registry) -> bool {
    let (_tx, rx) = watch::channel(false);
    let mut set = tokio::task::JoinSet::new();
    for m in &app.config.mailboxes {
        let m = Arc::new(m.clone());
        match m.protocol {
            Protocol::Imap => {
                for c in imap_folders(app, &m, registry, &rx) {
                    set.spawn(async move {
                        imap::drain_folder_once(c).await.map_err(|e| e.to_string())
                    });
                }
            }
            Protocol::Pop3 => {
                let c = poll_ctx(app, &m, registry, &rx);
                set.spawn(pop3::drain_once(c));
            }
            Protocol::Jmap => {
                set.spawn(jmap::drain_once(poll_ctx(app, &m, registry, &rx)));
            }
            Protocol::Graph => {
                set.spawn(graph::drain_once(poll_ctx(app, &m, registry, &rx)));
            }
        }
    }
    let mut ok = true;
    while let Some(r) = set.join_next().await {
        ok &= matches!(r, Ok(Ok(_)));
    }
    ok
}
