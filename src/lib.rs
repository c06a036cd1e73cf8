//! intake: the front door of a help desk.
//!
//! # Layout
//! Inbound messages flow through one module per stage:
//!
//! * [`parse`]: raw RFC 5322 bytes → [`parse::ParsedMail`] (mail-parser stays inside).
//! * [`classify`]: auto-reply, bounce, list, loop or normal.
//! * [`identity`]: contact points and registrable domains, normalised.
//! * [`pipeline`]: runs the pure stages, hands batches to the store.
//! * [`trust`]: whether a mail may act as its From address (`[trust]`).
//! * [`thread`]: which ticket a message joins, and whether publicly.
//! * [`store`]: the only module with SQL; resolves users and organizations,
//!   threads and writes a batch in one transaction (SQLite or PostgreSQL).
//! * [`notify`]: triggers, the transactional outbox and the SMTP sender.
//! * [`sanitize`]: text cleaners shared by mail and webhook input (file names, links).
//! * [`config`]: the TOML file, validated with line-precise errors.
//! * [`status`]: the status report, shown by the status page and `intake status`.
//! * [`cli`]: the `intake` command line.
#![forbid(unsafe_code)]

pub mod app;
pub mod classify;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod forward;
pub mod http;
pub mod identity;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod parse;
pub mod pipeline;
pub mod reply;
pub mod sanitize;
pub mod sources;
pub mod status;
pub mod store;
pub mod telemetry;
pub mod thread;
pub mod trust;
