//! The batch's events as the notifier sees them, told from what the batch
//! holds in memory (tickets, their requesters, the comments just written),
//! so queuing notifications costs no look-up in the common case. A fact
//! memory cannot tell is left unknown and the notifier reads it.

use super::lookup::Known;
use super::write::{NewComment, NewEvent};
use crate::identity::ContactPoint;
use crate::model::{CommentFacts, EventFacts, EventKind, Needs};
use std::collections::HashSet;

/// `events` (with their ids) that some trigger listens to, as facts; what
/// memory cannot tell is marked `unknown`.
pub(super) fn partial_facts(
    known: &Known,
    wants: &(dyn Fn(EventKind) -> bool + Sync),
    new_tickets: &HashSet<i64>,
    events: &[NewEvent],
    event_ids: &[i64],
    comments: &[NewComment<'_>],
    comment_ids: &[i64],
) -> Vec<EventFacts> {
    events
        .iter()
        .zip(event_ids)
        .filter_map(|(e, id)| {
            let kind = EventKind::parse(e.kind).filter(|k| wants(*k))?;
            let i = e.comment_of?;
            let c = comments.get(i)?;
            let t = known.tickets.get(&e.ticket_id)?;
            let meta = known.meta.get(&e.ticket_id).cloned().unwrap_or_default();
            let m = c.msg;
            let wrote_from = m.contacts.iter().find_map(|c| match c {
                ContactPoint::Email(e) => Some(e.as_str().to_string()),
                _ => None,
            });
            // The requester wrote this by email: answer that address. A user
            // this batch created has only the addresses the batch gave it.
            let requester_wrote = wrote_from.is_some() && c.author_id == t.requester_id;
            let requester_email = match wrote_from {
                Some(a) if requester_wrote => Some(Some(a)),
                _ => known.new_users.get(&t.requester_id).cloned(),
            };
            let requester_is_new = new_tickets
                .contains(&e.ticket_id)
                .then(|| known.new_users.contains_key(&t.requester_id));
            // An organization is known to be absent; its name is not known.
            let org_name = t.organization_id.is_none().then_some(None);
            Some(EventFacts {
                event_id: *id,
                kind,
                ticket_id: e.ticket_id,
                status: t.status,
                channel: meta.channel,
                ticket_public: t.public,
                tags: meta.tags,
                unknown: Needs {
                    requester_email: requester_email.is_none(),
                    org_name: org_name.is_none(),
                    requester_is_new: requester_is_new.is_none(),
                },
                requester_is_new: requester_is_new.unwrap_or_default(),
                requester_email: requester_email.flatten(),
                requester_wrote,
                org_name: org_name.flatten(),
                comment: CommentFacts {
                    id: comment_ids.get(i).copied(),
                    class: m.class.as_str().to_string(),
                    public: c.public,
                    flag: c.flag.is_some(),
                    message_id: Some(m.message_id.clone()),
                    email: m.channel.is_email(),
                    agent: c.role == "agent",
                    forwarded: m.forwarded_by.is_some(),
                },
            })
        })
        .collect()
}
