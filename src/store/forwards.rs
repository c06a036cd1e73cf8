//! Agent forwarding inside the store: an agent's mail that forwards a
//! customer's message (and joins no ticket) becomes two messages, the
//! customer's own, written by the customer (resolved or created by contact
//! point, organization from their domain), and the agent's text as an
//! internal note that threads to it. Only the store can tell an agent:
//! some are added at run time.

use super::lookup::Known;
use super::requesters::{key, Policy};
use crate::identity::ContactPoint;
use crate::model::{ForwardIn, Outcome, OutcomeKind, Prepared, PreparedMessage};
use std::borrow::Cow;

/// The batch as the store walks it, and for each walked item the index of
/// the item it came from.
pub(super) struct Expanded<'a> {
    pub items: Cow<'a, [Prepared]>,
    pub origin: Vec<usize>,
}

/// Whether `m` was written by an agent: authenticated (or unverified) mail
/// from a configured agent address or domain, or from a user marked as an
/// agent.
pub(super) fn by_agent(s: &Policy<'_>, known: &Known, m: &PreparedMessage) -> bool {
    m.may_be_agent
        && m.contacts.first().is_some_and(|c| match c {
            ContactPoint::Email(e) => {
                s.agents.is_agent(e)
                    || known
                        .users
                        .get(&key(c))
                        .is_some_and(|(u, _)| known.agent_users.contains(u))
            }
            _ => false,
        })
}

/// Whether `m` names a ticket: then it is a reply, not a forward.
fn joins_ticket(known: &Known, m: &PreparedMessage) -> bool {
    m.tag_ticket.is_some()
        || m.conversation_key.is_some()
        || m.refs.iter().any(|r| known.refs.contains_key(r))
}

/// Split every agent forward of `items` in two; borrow the batch when
/// there is none.
pub(super) fn expand<'a>(s: &Policy<'_>, known: &Known, items: &'a [Prepared]) -> Expanded<'a> {
    let splits = |p: &Prepared| match p {
        Prepared::Message(m) => {
            matches!(m.forward, Some(ForwardIn::Original(_)))
                && !known.message_ids.contains_key(&m.message_id)
                && !joins_ticket(known, m)
                && by_agent(s, known, m)
        }
        _ => false,
    };
    if !items.iter().any(splits) {
        return Expanded {
            items: Cow::Borrowed(items),
            origin: (0..items.len()).collect(),
        };
    }
    let mut out = Vec::with_capacity(items.len() + 1);
    let mut origin = Vec::with_capacity(items.len() + 1);
    for (i, item) in items.iter().enumerate() {
        let (Prepared::Message(m), true) = (item, splits(item)) else {
            out.push(item.clone());
            origin.push(i);
            continue;
        };
        let Some(ForwardIn::Original(f)) = &m.forward else {
            unreachable!("checked by splits")
        };
        let agent = m.contacts.first().map(|c| c.value().to_string());
        let customer = PreparedMessage {
            message_id: f.message_id.clone(),
            contacts: vec![f.contact.clone()],
            sender_name: f.sender_name.clone(),
            subject: f.subject.clone(),
            body: f.body.clone(),
            visible_body: f.visible_body.clone(),
            refs: vec![],
            tag_ticket: None,
            copied: vec![],
            attachments: f.attachments.clone(),
            raw: f.raw.clone(),
            received_at: f.received_at,
            returned_message_ids: vec![],
            failed_recipients: vec![],
            may_be_agent: false,
            forward: None,
            forwarded_by: agent,
            sender_recovered: None,
            ..(**m).clone()
        };
        let note = PreparedMessage {
            body: f.note.clone(),
            visible_body: None,
            refs: vec![f.message_id.clone()],
            attachments: f.note_attachments.clone(),
            public: false,
            forward: None,
            ..(**m).clone()
        };
        out.push(Prepared::Message(Box::new(customer)));
        out.push(Prepared::Message(Box::new(note)));
        origin.extend([i, i]);
    }
    Expanded {
        items: Cow::Owned(out),
        origin,
    }
}

/// One outcome per original item: a forward's is its customer message's,
/// unless that was already stored and only the agent's note was new.
pub(super) fn merge(outcomes: Vec<Outcome>, origin: &[usize]) -> Vec<Outcome> {
    if outcomes.len() == origin.iter().max().map_or(0, |m| m + 1) {
        return outcomes;
    }
    let mut out: Vec<Outcome> = Vec::with_capacity(outcomes.len());
    let mut last = None;
    for (o, &i) in outcomes.into_iter().zip(origin) {
        if last == Some(i) {
            let first = out.last_mut().expect("a first half");
            if first.outcome == OutcomeKind::Duplicate && o.outcome != OutcomeKind::Duplicate {
                *first = o;
            }
        } else {
            out.push(o);
        }
        last = Some(i);
    }
    out
}
