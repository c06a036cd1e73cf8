//! Hostile input and faults (one test binary): bounded work per input,
//! HTTP limits, storage faults recovered in place, no lost IMAP wake-ups,
//! acknowledgements owed across crashes, notification claims of a dead
//! sender, webhook claims of a dead daemon, the desk's own addresses in
//! every spelling, and addresses stored in an old spelling.

#[path = "../common/mod.rs"]
mod common;
#[path = "../http_common/mod.rs"]
mod http_common;
#[path = "../support/smtp.rs"]
mod smtp;
#[path = "../support/mod.rs"]
mod support;

mod http_limits;
mod imap_acks;
mod imap_wakeups;
mod old_spellings;
mod own_addresses;
mod parse_bounds;
mod sender_claims;
mod storage_faults;
mod webhook_input;
mod webhook_takeover;
