//! The pipeline: inbound messages in, committed outcomes out.
//!
//! `prepare` runs the pure stages (parse, classify, normalise the sender's
//! contact points, find references and the subject tag); the store then
//! resolves users and organizations, threads and writes a whole batch in one
//! transaction, together with the IMAP cursor when there is one.

use crate::classify::{classify, MailClass, OwnAddresses};
use crate::config::Config;
use crate::identity::{ContactPoint, EmailAddress, FreeMail};
use crate::model::*;
use crate::store::{now_ms, Store, StoreError};
use crate::thread::TicketTag;
use std::sync::Arc;

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

/// Text columns cannot hold NUL (PostgreSQL refuses it); drop it everywhere.
fn clean(s: &str) -> String {
    if s.contains('\0') {
        s.replace('\0', "")
    } else {
        s.to_string()
    }
}

/// Parse, classify and normalise one inbound message. Never fails: what
/// cannot be processed becomes a quarantine record with its reason.
pub fn prepare(s: &Settings, item: &Inbound) -> Prepared {
    match item {
        Inbound::Mail(m) => prepare_mail(s, m),
        Inbound::Contact(c) => prepare_contact(s, c),
    }
}

/// [`prepare`] for a whole batch. Parsing mail is CPU work: a batch holding
/// mail is prepared on tokio's blocking pool (one task per batch), so that the
/// runtime's other tasks (HTTP, IMAP IDLE, timers) keep running meanwhile;
/// contacts alone are cheap and prepared in place.
pub async fn prepare_batch(
    settings: Arc<Settings>,
    items: Vec<Inbound>,
) -> Result<Vec<Prepared>, StoreError> {
    if !items.iter().any(|i| matches!(i, Inbound::Mail(_))) {
        return Ok(items.iter().map(|i| prepare(&settings, i)).collect());
    }
    let work = move || items.iter().map(|i| prepare(&settings, i)).collect();
    match tokio::task::spawn_blocking(work).await {
        Ok(prepared) => Ok(prepared),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(StoreError::Unavailable(format!(
            "message preparation did not finish (runtime shutting down?): {e}"
        ))),
    }
}

fn quarantine(m: &RawMail, reason: String) -> Prepared {
    Prepared::Quarantine(QuarantineIn {
        source: m.source.clone(),
        mailbox: m.mailbox.clone(),
        reason,
        size: m.raw.len() as i64,
        raw: m.raw.clone(),
        truncated: false,
    })
}

fn prepare_mail(s: &Settings, m: &RawMail) -> Prepared {
    let mail = match crate::parse::parse(&m.raw, s.max_message_bytes) {
        Ok(p) => p,
        Err(e) => return quarantine(m, e.to_string()),
    };
    let class = classify(&mail, &s.own);
    // Mail-system messages (bounces) may carry no address at all: they are
    // stored under one system identity so they can still be attached to the
    // notification they return; anything else without a sender is quarantined.
    let system_sender = crate::parse::Mailbox {
        address: MAIL_SYSTEM_SENDER.into(),
        name: Some("Mail Delivery System".into()),
    };
    let sender = match mail.sender.as_ref() {
        Some(s) => s,
        None if class == MailClass::Bounce => &system_sender,
        None => return quarantine(m, "no sender address".into()),
    };
    let email = match EmailAddress::parse(&sender.address) {
        Ok(e) => e,
        Err(e) => return quarantine(m, format!("sender: {e}")),
    };
    if class == MailClass::Loop {
        return quarantine(
            m,
            format!("loop: mail from our own address {email} or carrying our loop header"),
        );
    }
    let copied = mail
        .to
        .iter()
        .chain(mail.cc.iter())
        .filter_map(|a| EmailAddress::parse(&a.address).ok())
        .filter(|a| !s.own.is_ours(a) && *a != email)
        .collect();
    let mut refs: Vec<String> = mail.in_reply_to.clone();
    refs.extend(mail.references.iter().rev().cloned());
    refs.iter_mut().for_each(|r| *r = clean(r));
    refs.dedup();
    if class == MailClass::Bounce {
        // A bounce of our notification threads to its ticket (as an internal note).
        refs.extend(mail.returned_message_ids.iter().cloned());
    }
    let attachments = mail
        .attachments
        .iter()
        .map(|a| AttachmentIn {
            filename: clean(&a.filename),
            content_type: clean(&a.content_type),
            size: a.data.len() as i64,
            data: Some(a.data.clone()),
            url: None,
        })
        .collect();
    Prepared::Message(Box::new(PreparedMessage {
        channel: "email".into(),
        mailbox: m.mailbox.clone(),
        message_id: clean(&mail.message_id),
        contacts: vec![ContactPoint::Email(email)],
        sender_name: sender
            .name
            .as_deref()
            .map(clean)
            .filter(|n| !n.trim().is_empty()),
        tag_ticket: s.tag.find(&mail.subject),
        subject: clean(&mail.subject),
        body: clean(&mail.text),
        class,
        refs,
        conversation_key: None,
        public: true,
        copied,
        attachments,
        raw: Some(m.raw.clone()),
        received_at: now_ms(),
        returned_message_ids: mail.returned_message_ids.clone(),
    }))
}

fn prepare_contact(s: &Settings, c: &Contact) -> Prepared {
    // A contact point of ours never becomes a customer's.
    let (ours, contacts): (Vec<&ContactPoint>, Vec<&ContactPoint>) = c
        .contacts
        .iter()
        .partition(|p| matches!(p, ContactPoint::Email(e) if s.own.is_ours(e)));
    if let Some(p) = ours.first() {
        tracing::warn!(source = %c.source, address = %p.value(), "contact names one of our own addresses");
        if contacts.is_empty() {
            let raw = format!(
                "source: {}\nchannel: {}\ncontacts: {}\nsubject: {}\n\n{}",
                c.source,
                c.channel,
                p.value(),
                c.subject,
                c.message
            );
            return Prepared::Quarantine(QuarantineIn {
                source: c.source.clone(),
                mailbox: None,
                reason: format!("loop: the contact's address {} is our own", p.value()),
                size: raw.len() as i64,
                raw: raw.into_bytes(),
                truncated: false,
            });
        }
    }
    Prepared::Message(Box::new(PreparedMessage {
        channel: c.channel.clone(),
        mailbox: None,
        message_id: c.message_id.clone(),
        contacts: contacts.into_iter().cloned().collect(),
        sender_name: c
            .name
            .as_deref()
            .map(clean)
            .filter(|n| !n.trim().is_empty()),
        subject: clean(&c.subject),
        body: clean(&c.message),
        class: MailClass::Normal,
        refs: vec![],
        tag_ticket: None,
        conversation_key: c
            .conversation_id
            .as_ref()
            .map(|id| format!("{}:{}", c.source, id)),
        public: c.public,
        copied: vec![],
        attachments: c
            .attachments
            .iter()
            .map(|a| AttachmentIn {
                filename: a.filename.clone(),
                content_type: a.content_type.clone(),
                size: 0,
                data: None,
                url: Some(a.url.clone()),
            })
            .collect(),
        raw: None,
        received_at: c.occurred_at.unwrap_or_else(now_ms),
        returned_message_ids: vec![],
    }))
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
