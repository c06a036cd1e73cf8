//! The pipeline: inbound messages in, committed outcomes out.
//!
//! `prepare` (`pipeline/prepare.rs`) runs the pure stages (parse, classify, normalise the sender's
//! contact points, find references and the subject tag); the store then
//! resolves users and organizations, threads and writes a whole batch in one
//! transaction, together with the IMAP cursor when there is one.

use crate::classify::OwnAddresses;
use crate::config::Config;
use crate::identity::FreeMail;
use crate::model::*;
use crate::store::{Store, StoreError};
use crate::thread::TicketTag;
use std::sync::Arc;

mod prepare;
pub use prepare::{prepare, prepare_batch};

/// Settings the stages need, derived once from the configuration.
pub struct Settings {
    pub own: OwnAddresses,
    pub free_mail: FreeMail,
    pub auto_create_orgs: bool,
    pub phone_region: String,
    pub tag: TicketTag,
    pub max_message_bytes: usize,
    pub batch_size: usize,
    pub desk_domain: String,
    /// Triggers and notification settings.
    pub notify: Arc<crate::notify::NotifySettings>,
}

impl Settings {
    pub fn from_config(cfg: &Config) -> Self {
        Settings {
            own: cfg.own(),
            free_mail: FreeMail::new(&cfg.organizations.free_mail_domains),
            auto_create_orgs: cfg.organizations.auto_create,
            phone_region: cfg.identities.default_phone_region.clone(),
            tag: TicketTag::new(&cfg.desk.ticket_tag),
            max_message_bytes: cfg.limits.max_message_bytes,
            batch_size: cfg.limits.batch_size,
            desk_domain: cfg.desk.domain.clone(),
            notify: Arc::new(crate::notify::NotifySettings::from_config(cfg)),
        }
    }
}

/// The pipeline: settings plus the store. Cheap to clone.
#[derive(Clone)]
pub struct Pipeline {
    pub store: Store,
    pub settings: Arc<Settings>,
}

impl Pipeline {
    pub fn new(store: Store, settings: Settings) -> Self {
        Pipeline {
            store,
            settings: Arc::new(settings),
        }
    }

    /// Run inbound messages through every stage and commit them, in batches
    /// of `batch_size`, in one transaction each. The cursor, when given, is
    /// committed with the last batch.
    pub async fn ingest(
        &self,
        items: Vec<Inbound>,
        cursor: Option<&CursorUpdate>,
    ) -> Result<Vec<Outcome>, StoreError> {
        let prepared = prepare_batch(self.settings.clone(), items).await?;
        self.ingest_prepared(prepared, cursor).await
    }

    /// Commit already prepared messages.
    pub async fn ingest_prepared(
        &self,
        prepared: Vec<Prepared>,
        cursor: Option<&CursorUpdate>,
    ) -> Result<Vec<Outcome>, StoreError> {
        let mut out = Vec::with_capacity(prepared.len());
        let n = prepared.len().max(1).div_ceil(self.settings.batch_size);
        let mut chunks = prepared.chunks(self.settings.batch_size.max(1)).peekable();
        if chunks.peek().is_none() {
            if let Some(c) = cursor {
                self.store.save_cursor(c).await?;
            }
            return Ok(out);
        }
        for (i, chunk) in chunks.enumerate() {
            let cur = if i + 1 == n { cursor } else { None };
            out.extend(self.commit_chunk(chunk, cur).await?);
        }
        Ok(out)
    }

    /// Commit one chunk. A permanent database error (one message the database
    /// refuses) must not stall the source: the chunk is retried message by
    /// message and the refused message is quarantined with the error. A
    /// storage fault (full disk, I/O error, lost connection) is no refusal:
    /// it is returned for the source to retry later, and nothing is
    /// quarantined for it, not even while the store is known to be failing.
    async fn commit_chunk(
        &self,
        chunk: &[Prepared],
        cursor: Option<&CursorUpdate>,
    ) -> Result<Vec<Outcome>, StoreError> {
        use crate::store::ingest::ingest_batch;
        match ingest_batch(&self.store, &self.settings, chunk, cursor).await {
            Err(e) if !e.is_transient() => {
                self.refusal(&e)?;
                tracing::warn!(error = %e, size = chunk.len(), "batch refused by the database, retrying message by message");
                let mut out = Vec::with_capacity(chunk.len());
                for (i, item) in chunk.iter().enumerate() {
                    let cur = if i + 1 == chunk.len() { cursor } else { None };
                    let one = std::slice::from_ref(item);
                    match ingest_batch(&self.store, &self.settings, one, cur).await {
                        Ok(o) => out.extend(o),
                        Err(e) if !e.is_transient() => {
                            self.refusal(&e)?;
                            let q = refused(item, &e);
                            out.extend(ingest_batch(&self.store, &self.settings, &[q], cur).await?);
                        }
                        Err(e) => return Err(e),
                    }
                }
                Ok(out)
            }
            r => r,
        }
    }
}

impl Pipeline {
    /// Is a permanent error a refusal of the messages? Not while the
    /// store's writes are failing: then it is returned as a fault.
    fn refusal(&self, e: &StoreError) -> Result<(), StoreError> {
        match self.store.outage() {
            None => Ok(()),
            Some(o) => Err(StoreError::Unavailable(format!(
                "{e} (while database writes fail: {})",
                o.error
            ))),
        }
    }
}

/// Identity of bounces that name no sender at all (`.invalid` never routes).
pub const MAIL_SYSTEM_SENDER: &str = "mailer-daemon@mail-system.invalid";

/// A quarantine record for a message the database refused.
fn refused(item: &Prepared, e: &StoreError) -> Prepared {
    match item {
        Prepared::Quarantine(q) => Prepared::Quarantine(QuarantineIn {
            reason: format!("{}; then storage failed: {e}", q.reason),
            ..q.clone()
        }),
        Prepared::Message(m) => {
            let raw = m
                .raw
                .clone()
                .unwrap_or_else(|| format!("{m:?}").into_bytes());
            Prepared::Quarantine(QuarantineIn {
                source: m.channel.clone(),
                mailbox: m.mailbox.clone(),
                reason: format!("storage failed: {e}"),
                size: raw.len() as i64,
                raw,
                truncated: false,
            })
        }
    }
}

impl Pipeline {
    /// Run a quarantined message through the pipeline again. A message that
    /// now succeeds is marked `replayed`; one that fails again stays pending
    /// with its new reason.
    pub async fn replay(&self, id: i64) -> Result<Outcome, StoreError> {
        let (entry, raw) = self.store.quarantine_get(id).await?;
        if entry.truncated {
            return Err(StoreError::Conflict(format!(
                "quarantine entry {id} holds only part of the original ({} bytes): fetch it again from its source",
                entry.size
            )));
        }
        let item = Inbound::Mail(RawMail {
            raw,
            mailbox: entry.mailbox.clone(),
            source: "replay".into(),
        });
        let outcome = self.ingest(vec![item], None).await?.remove(0);
        if outcome.outcome != OutcomeKind::Quarantined {
            let summary = serde_json::to_string(&outcome).unwrap_or_default();
            self.store.quarantine_mark(id, "replayed", &summary).await?;
        }
        Ok(outcome)
    }
}

impl Pipeline {
    /// Refuse free-mail domains and our own: they must never become an
    /// organization's.
    fn check_domains(&self, domains: &[String]) -> Result<(), StoreError> {
        for d in domains {
            if let Some(r) = crate::identity::RegistrableDomain::of(d) {
                if self.settings.free_mail.contains(&r) {
                    return Err(StoreError::Invalid(format!(
                        "{d} is a free-mail domain: its users are not one organization"
                    )));
                }
                if self.settings.own.owns_domain(&r) {
                    return Err(StoreError::Invalid(format!(
                        "{d} is the desk's own domain ({}): it cannot be a customer organization's",
                        r.as_str()
                    )));
                }
            }
        }
        Ok(())
    }

    /// [`Store::create_organization`], refusing free-mail and own domains.
    pub async fn create_organization(
        &self,
        name: &str,
        domains: &[String],
    ) -> Result<i64, StoreError> {
        self.check_domains(domains)?;
        self.store.create_organization(name, domains).await
    }

    /// [`Store::add_domain`], refusing free-mail and own domains.
    pub async fn add_domain(&self, org: i64, domain: &str) -> Result<u64, StoreError> {
        self.check_domains(&[domain.to_string()])?;
        self.store.add_domain(org, domain).await
    }
}
