//! The pure stages of the pipeline for one inbound message: parse,
//! classify, normalise the sender's contact points, find references and the
//! subject tag. Never fails: what cannot be processed becomes a quarantine
//! record with its reason and its raw bytes.

use super::{Settings, MAIL_SYSTEM_SENDER};
use crate::classify::{classify, MailClass};
use crate::identity::{ContactPoint, EmailAddress};
use crate::model::*;
use crate::store::{now_ms, StoreError};
use crate::trust::{judge, Verdict};
use std::sync::Arc;

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
        Inbound::Mail(m) => prepare_mail(s, m, false),
        Inbound::Released(m) => prepare_mail(s, m, true),
        Inbound::Contact(c) => prepare_contact(s, c),
        Inbound::Quarantine(q) => Prepared::Quarantine(q.clone()),
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

fn prepare_mail(s: &Settings, m: &RawMail, released: bool) -> Prepared {
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
    // DMARC covers the From address only: a sender taken from another
    // header is judged as unauthenticated.
    let from_domain =
        (mail.sender_source == crate::parse::SenderSource::From).then(|| email.domain());
    let verdict = match mail.sender {
        Some(_) => judge(&m.raw, from_domain, &s.trust),
        None => Verdict::Accepted,
    };
    let may_be_agent = matches!(verdict, Verdict::Authenticated | Verdict::Unverified);
    if !released {
        if let Verdict::Review(reason) = verdict {
            return Prepared::Review(ReviewIn {
                source: m.source.clone(),
                mailbox: m.mailbox.clone(),
                message_id: clean(&mail.message_id),
                sender: email.to_string(),
                subject: clean(&mail.subject),
                reason,
                raw: m.raw.clone(),
            });
        }
    }
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
    let attachments = stored_attachments(&mail.attachments, s.max_attachment_bytes);
    // Only an agent's mail can forward on a customer's behalf; whether the
    // sender is one, the store decides (agents are also added at run time).
    let forward = (may_be_agent && class == MailClass::Normal)
        .then(|| crate::forward::find(&mail, s.max_message_bytes))
        .flatten()
        .map(|f| forwarded(s, f, &mail.message_id));
    let sender_recovered = mail.sender.as_ref().and_then(|_| recovered(&mail, &email));
    Prepared::Message(Box::new(PreparedMessage {
        channel: Channel::Email,
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
        visible_body: mail.visible.as_deref().map(clean),
        class,
        refs,
        conversation_key: None,
        public: true,
        copied,
        attachments,
        raw: Some(Blob::new(m.raw.clone())),
        received_at: now_ms(),
        returned_message_ids: mail.returned_message_ids.clone(),
        failed_recipients: mail
            .failed_recipients
            .iter()
            .filter(|f| f.permanent && class == MailClass::Bounce)
            .filter_map(|f| EmailAddress::parse(&f.address).ok())
            .map(|e| e.to_string())
            .collect(),
        may_be_agent,
        forward,
        forwarded_by: None,
        sender_recovered,
    }))
}

/// Where a sender that is not the From header's address came from, and what
/// From said (bounded), for the `sender_recovered` event.
fn recovered(mail: &crate::parse::ParsedMail, email: &EmailAddress) -> Option<String> {
    use crate::parse::SenderSource as S;
    let from = || {
        let f = clean(mail.headers.from.as_deref().unwrap_or_default());
        match f.trim() {
            "" => "no From header".to_string(),
            f => format!("From was {:?}", crate::parse::truncate_str(f, 200)),
        }
    };
    let place = match mail.sender_source {
        S::From => return None,
        S::FromText => "the text of a From header without a well-formed address",
        S::ReplyTo => "Reply-To",
        S::Sender => "Sender",
        S::ReturnPath => "Return-Path",
    };
    Some(format!("sender {email} recovered from {place}; {}", from()))
}

/// Attachments as the store takes them: one over `max` keeps its name,
/// type and size, not its body (the raw message still holds it).
fn stored_attachments(list: &[crate::parse::Attachment], max: Option<usize>) -> Vec<AttachmentIn> {
    list.iter()
        .map(|a| {
            let too_large = max.is_some_and(|m| a.data.len() > m);
            AttachmentIn {
                filename: clean(&a.filename),
                content_type: clean(&a.content_type),
                size: a.data.len() as i64,
                data: (!too_large).then(|| Blob::new(a.data.clone())),
                url: None,
                content_id: a.content_id.as_deref().map(clean),
                inline: a.inline,
                omitted: too_large.then(|| crate::model::OMITTED_TOO_LARGE.to_string()),
            }
        })
        .collect()
}

/// Forwarded by one of our own addresses or agents: not a customer's.
const FORWARDED_FROM_US: &str =
    "forwarded message: its sender is one of the desk's own addresses or agents";

/// A found forward as the store takes it. The customer's message keeps its
/// own Message-ID when it was attached whole; an inline one gets an id
/// derived from the agent's mail's, so a re-delivery finds it again.
fn forwarded(s: &Settings, f: crate::forward::Forward, outer_id: &str) -> ForwardIn {
    use crate::forward::{Forward, NO_ADDRESS};
    let o = match f {
        Forward::Unsure(why) => return ForwardIn::Unsure(why),
        Forward::Original(o) => o,
    };
    let Ok(from) = EmailAddress::parse(&o.from.address) else {
        return ForwardIn::Unsure(NO_ADDRESS);
    };
    if s.own.is_ours(&from) || s.agents.is_agent(&from) {
        return ForwardIn::Unsure(FORWARDED_FROM_US);
    }
    let message_id = o.message_id.map(|m| clean(&m)).unwrap_or_else(|| {
        use sha2::Digest;
        let h = sha2::Sha256::digest(outer_id.as_bytes());
        format!("{}@forwarded.intake", hex::encode(&h[..16]))
    });
    ForwardIn::Original(Box::new(ForwardedIn {
        client: o.client,
        message_id,
        contact: ContactPoint::Email(from),
        sender_name: o
            .from
            .name
            .as_deref()
            .map(clean)
            .filter(|n| !n.trim().is_empty()),
        subject: clean(&o.subject),
        visible_body: crate::reply::of_text(&o.text).text.map(|v| clean(&v)),
        body: clean(&o.text),
        received_at: o.date.filter(|d| *d > 0).unwrap_or_else(now_ms),
        attachments: stored_attachments(&o.attachments, s.max_attachment_bytes),
        raw: o.raw.map(Blob::new),
        note: clean(&o.note),
        note_attachments: stored_attachments(&o.note_attachments, s.max_attachment_bytes),
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
        channel: Channel::named(&c.channel),
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
        visible_body: None,
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
                content_id: None,
                inline: false,
                omitted: None,
            })
            .collect(),
        raw: None,
        received_at: c.occurred_at.unwrap_or_else(now_ms),
        returned_message_ids: vec![],
        failed_recipients: vec![],
        may_be_agent: false,
        forward: None,
        forwarded_by: None,
        sender_recovered: None,
    }))
}
