//! The planner: which notifications a batch's events call for. Pure: the
//! pipeline's commit step hands it the events with their facts (told by the
//! store) and writes what it returns (outbox rows, ticket changes of `set`
//! actions) through the store, in the same transaction. The rows name their
//! template (trigger and action) instead of carrying rendered text; the
//! sender renders them and puts the loop brakes on at send time (see
//! `compose`, `brakes`). A row's Message-ID is random and names its ticket:
//! that is how a customer's reply finds its ticket.

use super::triggers::{select, EventContext, OrgVars, RequesterVars, TicketVars};
use super::NotifySettings;
use crate::model::{
    EventFacts, EventKind, OutboxPlan, OutboxRow, OutboxStatus, PublishedTickets, TicketChanges,
};
use std::collections::HashMap;

/// Plan every event (in event order): the rows to queue, with the queue-time
/// brake applied, and the ticket changes of `set` actions.
pub fn plan_outbox(
    n: &NotifySettings,
    events: &[EventFacts],
    published: &PublishedTickets,
) -> OutboxPlan {
    let mut rows: Vec<OutboxRow> = Vec::new();
    let mut changes: HashMap<i64, (TicketChanges, String)> = HashMap::new();
    for e in events {
        let ticket_id = e.ticket_id;
        let c = match e.kind {
            EventKind::TicketPublished => published
                .first_comment
                .get(&ticket_id)
                .unwrap_or(&e.comment),
            _ => &e.comment,
        };
        // Automatic mail never triggers anything.
        if c.class != "normal" {
            continue;
        }
        // Only what conditions and recipients need: templates render at send time.
        let mut ctx = EventContext {
            kind: None,
            channel: e.channel.clone(),
            requester_is_new: e.requester_is_new,
            class: c.class.clone(),
            author_role: if c.agent { "agent" } else { "end_user" }.into(),
            forwarded_by_agent: c.forwarded,
            ticket: TicketVars {
                id: ticket_id,
                tag: String::new(),
                subject: String::new(),
                status: e.status.to_string(),
                url: None,
            },
            requester: RequesterVars {
                name: String::new(),
                email: e.requester_email.clone(),
            },
            organization: e.org_name.clone().map(|name| OrgVars { name }),
            comment: Default::default(),
        };
        let kinds: &[EventKind] = match e.kind {
            EventKind::TicketPublished => &[EventKind::TicketPublished, EventKind::TicketCreated],
            EventKind::TicketCreated => &[EventKind::TicketCreated],
            EventKind::CommentAdded => &[EventKind::CommentAdded],
        };
        // Public only: a private ticket or an internal note notifies nobody.
        let visible = e.ticket_public && c.public && !c.flag;
        for k in kinds {
            ctx.kind = Some(*k);
            let (selected, ch) = select(&n.triggers, &ctx);
            if !ch.is_empty() {
                let entry = changes
                    .entry(ticket_id)
                    .or_insert_with(|| (TicketChanges::default(), e.tags.clone()));
                merge(&mut entry.0, ch);
            }
            if !visible {
                continue;
            }
            for sel in selected {
                let Some(to) = sel.to else { continue };
                if *k == EventKind::TicketCreated
                    && e.kind == EventKind::TicketPublished
                    && published.fired.contains(&(ticket_id, sel.trigger.clone()))
                {
                    continue;
                }
                rows.push(OutboxRow {
                    ticket_id,
                    event_id: e.event_id,
                    comment_id: c.id,
                    trigger: sel.trigger,
                    action: sel.action as i64,
                    to: to.to_lowercase(),
                    message_id: super::new_message_id(ticket_id, &n.desk_domain),
                    status: OutboxStatus::Pending,
                    reason: None,
                });
            }
        }
    }
    super::brakes::at_queue(n, &mut rows);
    let mut changes: Vec<(i64, TicketChanges, String)> = changes
        .into_iter()
        .map(|(t, (c, old))| (t, c, old))
        .collect();
    changes.sort_by_key(|c| c.0);
    OutboxPlan { rows, changes }
}

fn merge(into: &mut TicketChanges, c: TicketChanges) {
    into.assignee = c.assignee.or(into.assignee.take());
    into.group = c.group.or(into.group.take());
    into.tags.extend(c.tags);
}
