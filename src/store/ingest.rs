//! Store stage: a batch of prepared messages written inside the transaction
//! the pipeline's commit step owns.
//!
//! Look-ups are set-based (one query per kind for the whole batch: known
//! Message-IDs, contact points, references, candidate tickets); the batch is
//! then walked in order with in-memory maps, so a reply threads to a ticket
//! created earlier in the same batch; comments, attachments, references,
//! participants and events are written with multi-row inserts. Only new
//! users, organizations and tickets cost a statement each. Requesters are
//! resolved before the walk (`requesters.rs`), and every row another batch
//! may also want (domains, contact points, references, participants, ticket
//! updates) is taken in the order of its key, so concurrent batches never
//! deadlock.

use super::lookup::{self, Known};
use super::requesters::Policy;
use super::write::*;
use super::{now_ms, StoreError};
use crate::identity::ContactPoint;
use crate::model::*;
use crate::thread::{decide, kept_names, Author, Decision, TicketState, TicketStatus};
use sqlx::any::Any;
use sqlx::Transaction;
use std::collections::HashMap;

type Tx<'a> = Transaction<'a, Any>;

/// What storing a batch produced: an outcome per item, the events some
/// trigger listens to with the facts memory could tell, and our own
/// notifications' Message-IDs that the batch's bounces returned.
#[derive(Debug, Default)]
pub struct StoredBatch {
    pub outcomes: Vec<Outcome>,
    pub events: Vec<EventFacts>,
    pub bounced: Vec<String>,
    /// Addresses the batch's delivery reports say failed permanently.
    pub failed_recipients: Vec<String>,
}

/// Store one batch inside the caller's transaction.
pub(super) async fn store_batch(
    tx: &mut Tx<'_>,
    s: &Policy<'_>,
    wants: &(dyn Fn(EventKind) -> bool + Sync),
    items: &[Prepared],
    numbers: &super::BlobNumbers,
) -> Result<StoredBatch, StoreError> {
    let msgs: Vec<&PreparedMessage> = items
        .iter()
        .filter_map(|p| match p {
            Prepared::Message(m) => Some(m.as_ref()),
            _ => None,
        })
        .collect();
    let held: Vec<&str> = items
        .iter()
        .filter_map(|p| match p {
            Prepared::Review(r) => Some(r.message_id.as_str()),
            _ => None,
        })
        .collect();
    let mut known = lookup::load(tx, &msgs, &held).await?;
    // An agent's forward becomes the customer's message and the agent's note.
    let expanded = super::forwards::expand(s, &known, items);
    let items: &[Prepared] = &expanded.items;
    let now = now_ms();
    let mut out = Vec::with_capacity(items.len());
    let mut comments: Vec<NewComment> = Vec::new();
    let mut events: Vec<NewEvent> = Vec::new();
    let mut status_changes: HashMap<i64, TicketStatus> = HashMap::new();
    let mut touched: Vec<i64> = Vec::new();
    let mut new_names: Vec<(String, i64)> = Vec::new();
    let mut new_links: std::collections::BTreeSet<(i64, i64)> = Default::default();
    let mut new_participants: Vec<(i64, String)> = Vec::new();
    let mut new_tickets: std::collections::HashSet<i64> = Default::default();
    keep_unlinked_bounces(&mut known, items);
    let requesters = super::requesters::resolve(tx, s, &mut known, items, now).await?;

    for (item, requester) in items.iter().zip(requesters) {
        let m = match item {
            Prepared::Quarantine(q) => {
                out.push(super::quarantine::insert(tx, q, now).await?);
                continue;
            }
            Prepared::Review(r) => {
                out.push(super::review_gate::hold(tx, &mut known, r, now).await?);
                continue;
            }
            Prepared::Message(m) => m.as_ref(),
        };
        // Stored before, held for review or rejected: not stored again.
        let released_by = match super::review_gate::gate(tx, &mut known, m, now).await? {
            super::review_gate::Gate::Done(o) => {
                out.push(o);
                continue;
            }
            super::review_gate::Gate::Store { released_by } => released_by,
        };
        if known.kept.contains(&m.message_id) {
            let o = super::bounces::keep(tx, m, now).await?;
            // Its row names the raw mail by hash alone.
            if let (OutcomeKind::Kept, Some(b)) = (o.outcome, &m.raw) {
                super::tx::key_raw(tx, numbers, &b.sha256, now).await?;
            }
            out.push(o);
            continue;
        }
        let (user_id, user_org) =
            requester.ok_or_else(|| StoreError::conflict("requester of a message not resolved"))?;
        let sender_email = m.contacts.iter().find_map(|c| match c {
            ContactPoint::Email(e) => Some(e),
            _ => None,
        });
        // An agent (by configuration, or marked by the admin API or CLI) is
        // never a stranger on a ticket: their reply is an agent comment. Only
        // mail whose From our MTA authenticated (or any mail when senders
        // are not verified) may be an agent's; a webhook contact never is.
        let agent = m.may_be_agent
            && (sender_email.is_some_and(|e| s.agents.is_agent(e))
                || known.agent_users.contains(&user_id));
        let author = Author {
            user: user_id,
            email: sender_email,
            agent,
        };
        let cand = super::links::candidate(tx, &mut known, m).await?;
        let (mut candidate, trusted) = (cand.ticket, cand.trusted);
        let mut decision = decide(candidate.as_ref(), author, trusted, m.class);
        // A reply to a closed ticket joins the follow-up already opened
        // from it, rather than opening another.
        if let Some((f, d)) =
            super::links::into_follow_up(&known, candidate.as_ref(), &decision, author, m.class)
        {
            candidate = known.tickets.get(&f).cloned();
            decision = d;
            // Who joined by the closed ticket's thread takes part from now on.
            if let Some(e) = sender_email.filter(|_| {
                candidate
                    .as_ref()
                    .is_some_and(|t| t.requester_id != user_id)
            }) {
                if known
                    .tickets
                    .get_mut(&f)
                    .is_some_and(|t| t.participants.insert(e.clone()))
                {
                    new_participants.push((f, e.as_str().to_string()));
                }
            }
        }
        let mut created = None;
        if let Decision::NewTicket { follow_up_of } = decision {
            if let (Some(old), Some(k)) = (follow_up_of, &m.conversation_key) {
                // The conversation continues on the follow-up, not the closed ticket.
                sqlx::query("UPDATE tickets SET conversation_key = NULL WHERE id = $1")
                    .bind(old)
                    .execute(&mut **tx)
                    .await?;
                known.conversations.remove(k);
            }
            created = insert_ticket(tx, m, user_id, user_org, follow_up_of, now).await?;
            if created.is_none() {
                // Another transaction opened this conversation's ticket first:
                // decide again against that ticket.
                let k = m.conversation_key.as_deref().unwrap_or_default();
                let id = lookup::ticket_by_conversation(tx, k)
                    .await?
                    .ok_or_else(|| StoreError::conflict("conversation ticket vanished"))?;
                lookup::load_tickets(tx, &mut known, &[id]).await?;
                known.conversations.insert(k.to_string(), id);
                candidate = known.tickets.get(&id).cloned();
                decision = decide(candidate.as_ref(), author, trusted, m.class);
                if matches!(decision, Decision::NewTicket { .. }) {
                    return Err(StoreError::Busy(format!(
                        "conversation {k} changed concurrently"
                    )));
                }
            }
        }
        // An agent's mail that looks forwarded but names no certain customer
        // opens its ticket as before, flagged: never a guess.
        let unsure = match (&m.forward, &decision) {
            (Some(ForwardIn::Unsure(why)), Decision::NewTicket { .. }) if agent => Some(*why),
            _ => None,
        };
        let mut o = Outcome::new(OutcomeKind::Created);
        o.user_id = Some(user_id);
        o.message_id = Some(m.message_id.clone());
        o.class = Some(m.class);
        let (ticket_id, public, flag) = match decision {
            Decision::NewTicket { follow_up_of } => {
                let key = m.conversation_key.clone();
                let ticket = created.ok_or_else(|| StoreError::conflict("ticket insert lost"))?;
                known.tickets.insert(
                    ticket,
                    TicketState {
                        id: ticket,
                        status: TicketStatus::New,
                        public: m.public,
                        requester_id: user_id,
                        organization_id: user_org,
                        participants: Default::default(),
                    },
                );
                if let Some(k) = key {
                    known.conversations.insert(k, ticket);
                }
                new_tickets.insert(ticket);
                if let Some(old) = follow_up_of {
                    known.open_follow_up.insert(old, ticket);
                }
                known.meta.insert(
                    ticket,
                    super::lookup::TicketMeta {
                        channel: m.channel.to_string(),
                        tags: String::new(),
                    },
                );
                events.push(NewEvent {
                    ticket_id: ticket,
                    kind: "ticket_created",
                    comment_of: Some(comments.len()),
                    detail: String::new(),
                });
                if let Some(agent) = &m.forwarded_by {
                    events.push(NewEvent {
                        ticket_id: ticket,
                        kind: "forwarded_by_agent",
                        comment_of: Some(comments.len()),
                        detail: format!("opened on the customer's behalf by {agent}"),
                    });
                }
                o.follow_up_of = follow_up_of;
                for c in &m.copied {
                    if known
                        .tickets
                        .get_mut(&ticket)
                        .is_some_and(|t| t.participants.insert(c.clone()))
                    {
                        new_participants.push((ticket, c.as_str().to_string()));
                    }
                }
                (
                    ticket,
                    m.public && known.tickets.get(&ticket).is_none_or(|t| t.public),
                    unsure,
                )
            }
            Decision::Append {
                ticket_id,
                public,
                reopen,
                flag,
            } => {
                o.outcome = OutcomeKind::Appended;
                // A gateway may log a private note on a public conversation.
                let public = public && m.public;
                if let Some(st) = reopen {
                    status_changes.insert(ticket_id, st);
                    if let Some(t) = known.tickets.get_mut(&ticket_id) {
                        t.status = st;
                    }
                    events.push(NewEvent {
                        ticket_id,
                        kind: "status_changed",
                        comment_of: None,
                        detail: st.to_string(),
                    });
                }
                touched.push(ticket_id);
                events.push(NewEvent {
                    ticket_id,
                    kind: "comment_added",
                    comment_of: Some(comments.len()),
                    detail: flag.unwrap_or_default().to_string(),
                });
                if flag.is_none() {
                    for c in &m.copied {
                        if known
                            .tickets
                            .get_mut(&ticket_id)
                            .is_some_and(|t| t.participants.insert(c.clone()))
                        {
                            new_participants.push((ticket_id, c.as_str().to_string()));
                        }
                    }
                }
                (ticket_id, public, flag)
            }
        };
        if let Some(detail) = &m.sender_recovered {
            events.push(NewEvent {
                ticket_id,
                kind: "sender_recovered",
                comment_of: Some(comments.len()),
                detail: detail.clone(),
            });
        }
        if let Some((review_id, by)) = released_by {
            events.push(NewEvent {
                ticket_id,
                kind: "released_from_review",
                comment_of: Some(comments.len()),
                detail: format!("review entry {review_id} released by {by}"),
            });
        }
        // An agent's text starting with the private marker is an internal note.
        let public = public && !(agent && s.agents.is_private(&m.body));
        o.ticket_id = Some(ticket_id);
        o.public = Some(public);
        o.flag = flag.map(str::to_string);
        known
            .message_ids
            .insert(m.message_id.clone(), (ticket_id, None));
        // Later messages of this batch may reply to this one, or be named
        // by it.
        let own = lookup::Ref {
            ticket: ticket_id,
            ours: false,
        };
        known.refs.insert(m.message_id.clone(), own);
        // A name that is a stored message's own id is found by that id
        // (in `comments`): only names of absent messages are kept.
        for n in kept_names(&m.refs).filter(|n| !known.refs.contains_key(*n)) {
            let list = known.named.entry(n.clone()).or_default();
            if !list.contains(&ticket_id) {
                list.push(ticket_id);
            }
            new_names.push((n.clone(), ticket_id));
        }
        // The other tickets a participant's message links are related.
        if flag.is_none()
            && candidate
                .as_ref()
                .is_some_and(|c| c.id == ticket_id || o.follow_up_of == Some(c.id))
        {
            for r in cand
                .related
                .iter()
                .filter(|&&r| r != ticket_id && Some(r) != o.follow_up_of)
            {
                new_links.insert((ticket_id.min(*r), ticket_id.max(*r)));
            }
        }
        tracing::info!(message_id = %m.message_id, ticket_id, user_id, class = m.class.as_str(), public, outcome = ?o.outcome, "message stored");
        comments.push(NewComment {
            msg: m,
            ticket_id,
            author_id: user_id,
            public,
            flag,
            role: if agent { "agent" } else { "end_user" },
            out_index: out.len(),
        });
        out.push(o);
    }

    let ids = insert_comments(tx, &comments, numbers, now).await?;
    for (c, id) in comments.iter().zip(&ids) {
        out[c.out_index].comment_id = Some(*id);
    }
    insert_attachments(tx, &comments, &ids, numbers).await?;
    super::links::insert_names(tx, &new_names).await?;
    for (a, b) in super::links::insert_links(tx, &new_links, now).await? {
        for (t, other) in [(a, b), (b, a)] {
            events.push(NewEvent {
                ticket_id: t,
                kind: "ticket_linked",
                comment_of: None,
                detail: format!("related to ticket #{other}"),
            });
        }
    }
    insert_participants(tx, &new_participants).await?;
    update_tickets(tx, &status_changes, &touched, now).await?;
    let event_ids = insert_events(tx, &events, &ids, now).await?;
    let reports = || {
        msgs.iter()
            .filter(|m| m.class == crate::classify::MailClass::Bounce)
    };
    let bounced = reports()
        .flat_map(|m| m.returned_message_ids.iter().cloned())
        .collect();
    let failed_recipients = reports()
        .flat_map(|m| m.failed_recipients.iter().cloned())
        .collect();
    // Only events some trigger listens to are worth the notifier's time.
    let events = super::events::partial_facts(
        &known,
        wants,
        &new_tickets,
        &events,
        &event_ids,
        &comments,
        &ids,
    );
    Ok(StoredBatch {
        outcomes: super::forwards::merge(out, &expanded.origin),
        events,
        bounced,
        failed_recipients,
    })
}

/// A delivery report that names none of our notifications (by a returned
/// Message-ID, a reference or our subject tag) is kept for ops: it never
/// becomes a user, an organization or a ticket.
fn keep_unlinked_bounces(known: &mut Known, items: &[Prepared]) {
    for item in items {
        let Prepared::Message(m) = item else { continue };
        let linked = m.tag_ticket.is_some()
            || m.conversation_key.is_some()
            || m.refs
                .iter()
                .any(|r| known.refs.get(r).is_some_and(|x| x.ours));
        if m.class == crate::classify::MailClass::Bounce
            && !linked
            && !known.message_ids.contains_key(&m.message_id)
        {
            known.kept.insert(m.message_id.clone());
        }
    }
}
