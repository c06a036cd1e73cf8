//! The pipeline: inbound messages in, committed outcomes out.
//!
//! Every source hands [`Inbound`] items and an opaque [`Checkpoint`] to
//! [`Pipeline::ingest`]. `prepare` (`pipeline/prepare.rs`) runs the pure
//! stages (parse, classify, normalise the sender's contact points, find
//! references and the subject tag); the commit step (`pipeline/commit.rs`)
//! owns the transaction in which the store resolves users and
//! organizations, threads and writes a batch, the notifier's plan is
//! written and the checkpoint saved.

use crate::classify::OwnAddresses;
use crate::config::Config;
use crate::identity::FreeMail;
use crate::model::*;
use crate::store::{Store, StoreError};
use crate::thread::TicketTag;
use std::sync::Arc;

mod commit;
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
    /// Attachments larger than this are stored without their body.
    pub max_attachment_bytes: Option<usize>,
    pub batch_size: usize,
    pub desk_domain: String,
    /// Triggers and notification settings.
    pub notify: Arc<crate::notify::NotifySettings>,
    /// Who may act as their From address (`[trust]`).
    pub trust: crate::trust::Trust,
    /// The desk's agents by configuration (`[agents]`).
    pub agents: crate::identity::Agents,
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
            max_attachment_bytes: cfg.limits.max_attachment_bytes,
            batch_size: cfg.limits.batch_size,
            desk_domain: cfg.desk.domain.clone(),
            notify: Arc::new(crate::notify::NotifySettings::from_config(cfg)),
            trust: cfg.trust.settings(),
            agents: crate::identity::Agents::new(
                cfg.agents.addresses.iter().cloned(),
                cfg.agents.domains.iter().cloned(),
                &cfg.agents.private_marker,
            ),
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

    /// The one entry point of every source: run inbound messages through
    /// every stage and commit them, in chunks of `batch_size`, in one
    /// transaction each. The source's checkpoint, when given, is committed
    /// with the last chunk (on its own when there is nothing to store); the
    /// source acknowledges only after this returns.
    pub async fn ingest(
        &self,
        items: Vec<Inbound>,
        checkpoint: Option<&Checkpoint>,
    ) -> Result<Vec<Outcome>, StoreError> {
        let prepared = prepare_batch(self.settings.clone(), items).await?;
        let size = self.settings.batch_size.max(1);
        let mut out = Vec::with_capacity(prepared.len());
        if prepared.is_empty() {
            if let Some(c) = checkpoint {
                self.store.save_checkpoint(c).await?;
            }
            return Ok(out);
        }
        let n = prepared.len().div_ceil(size);
        for (i, chunk) in prepared.chunks(size).enumerate() {
            let cp = if i + 1 == n { checkpoint } else { None };
            out.extend(commit::commit_chunk(&self.store, &self.settings, chunk, cp).await?);
        }
        Ok(out)
    }

    /// Make a ticket public or private; publishing fires, in the same
    /// transaction, the notifications the ticket skipped while private.
    pub async fn set_ticket_public(&self, id: i64, public: bool) -> Result<(), StoreError> {
        let write = async {
            let mut tx = self.store.begin().await?;
            if let Some(event) = tx.set_ticket_public(id, public).await? {
                let events = tx.event_facts(&[event]).await?;
                commit::notify(&mut tx, &self.settings, events, crate::store::now_ms()).await?;
            }
            tx.commit().await
        };
        self.store.observe(write.await)
    }
}

/// Identity of bounces that name no sender at all (`.invalid` never routes).
pub const MAIL_SYSTEM_SENDER: &str = "mailer-daemon@mail-system.invalid";

impl Pipeline {
    /// Run a quarantined message through the pipeline again. A message that
    /// now succeeds is marked `replayed`; one that fails again stays pending
    /// with its new reason.
    pub async fn replay(&self, id: i64) -> Result<Outcome, StoreError> {
        let (entry, raw) = self.store.quarantine_get(id).await?;
        if entry.truncated {
            return Err(StoreError::conflict(format!(
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
        crate::metrics::record_outcomes("replay", std::slice::from_ref(&outcome));
        if outcome.outcome != OutcomeKind::Quarantined {
            let summary = serde_json::to_string(&outcome).unwrap_or_default();
            self.store.quarantine_mark(id, "replayed", &summary).await?;
        }
        Ok(outcome)
    }
}

impl Pipeline {
    /// Release a review entry: its mail runs through the pipeline as
    /// trusted (it acts as its From address), and the entry records the
    /// outcome and `by` (who or what released it: `cli`, `api`, `status page`).
    pub async fn release(&self, id: i64, by: &str) -> Result<Outcome, StoreError> {
        let (entry, raw) = self.store.review_claim(id, by).await?;
        let item = Inbound::Released(RawMail {
            raw,
            mailbox: entry.mailbox.clone(),
            source: "review".into(),
        });
        let outcome = self.ingest(vec![item], None).await?.remove(0);
        crate::metrics::record_outcomes("review", std::slice::from_ref(&outcome));
        self.store.review_released(id, by, &outcome).await?;
        tracing::info!(review_id = id, by, outcome = ?outcome.outcome, "released from review");
        Ok(outcome)
    }

    /// Refuse free-mail domains and our own: they must never become an
    /// organization's.
    fn check_domains(&self, domains: &[String]) -> Result<(), DomainError> {
        for d in domains {
            if let Some(r) = crate::identity::RegistrableDomain::of(d) {
                if self.settings.free_mail.contains(&r) {
                    return Err(DomainError::Invalid(format!(
                        "{d} is a free-mail domain: its users are not one organization"
                    )));
                }
                if self.settings.agents.owns_domain(d) {
                    return Err(DomainError::Invalid(format!(
                        "{d} is an agent domain ([agents] domains): it cannot be a customer organization's"
                    )));
                }
                if self.settings.own.owns_domain(&r) {
                    return Err(DomainError::Invalid(format!(
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
