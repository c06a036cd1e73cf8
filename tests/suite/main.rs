//! The integration tests, one binary (one link instead of thirty): real
//! SQLite and PostgreSQL, a private Dovecot, an SMTP capture server, real
//! HTTP. Shared support lives in `common` (databases, config, mail),
//! `http_common` (a daemon's HTTP server), and `support` (Dovecot, faults,
//! an IMAP proxy, the SMTP sink, a desk with triggers).

#[macro_use]
mod common;
mod http_common;
mod support;

#[allow(unused_imports)]
use support::smtp;

// The engine on both databases.
mod anchors;
mod blob_held;
mod blob_migrate;
mod blob_reuse;
mod blob_s3;
mod blob_store;
mod blob_verify;
mod bounce_corpora;
mod cli;
mod cli_export;
mod cli_import;
mod cli_ops;
mod cli_status;
mod corpora_classify;
mod erasure;
mod golden;
mod ingest;
mod inline_attachments;
mod layering;
mod readable_replies;
mod readme_tour;
mod reply_fixtures;
mod retention;
mod scale_schema;
mod status_page;
mod store_locking;
mod systemd_unit;

// IMAP sources against Dovecot.
mod graph;
mod graph_process;
mod imap;
mod imap_daemon;
mod imap_e2e;
mod imap_exactly_once;
mod imap_failures;
mod imap_process;
mod jmap;
mod jmap_process;
mod mailbox_config;
mod pop3;
mod pop3_process;

// HTTP: webhooks and the admin API.
mod admin_api;
mod admin_files;
mod agent_forwarding;
mod agent_trust;
mod agents;
mod api_docs;
mod openapi;
mod webhooks;
mod webhooks_concurrency;

// Notifications.
mod notify;
mod notify_admin;
mod notify_delivery;
mod notify_facts;
mod notify_upgrade;

// What ops deploy beside the daemon: alert rules and the dashboard, and
// the metrics they read.
mod ops_contrib;
mod ops_metrics;

// Hostile input and faults.
mod http_limits;
mod imap_acks;
mod imap_wakeups;
mod old_spellings;
mod own_addresses;
mod parse_bounds;
mod review_races;
mod sender_accuracy;
mod sender_claims;
mod storage_faults;
mod thread_order;
mod trust_review;
mod webhook_input;
mod webhook_takeover;
