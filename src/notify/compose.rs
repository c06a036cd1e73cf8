//! Send-time rendering: the outbox row names its template (trigger name and
//! action index) and the comment it quotes; the sender loads the ticket,
//! requester, organization and comment of a claimed batch in one query and
//! renders. Rows queued before migration 0005 carry their rendered text.

use super::triggers::{CommentVars, EventContext, OrgVars, RequesterVars, TicketVars};
use super::NotifySettings;
use crate::model::{Claimed, SendContext};
use crate::store::{Store, StoreError};
use std::collections::HashMap;

/// A notification's text and threading headers, ready for the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    /// The customer's Message-ID this answers (a comment that came by email).
    pub in_reply_to: Option<String>,
    /// The address of the mailbox the ticket came in by.
    pub reply_to: Option<String>,
}

/// The content of each claimed row, by outbox id: Err(reason) when it
/// cannot be rendered (a permanent failure). The threading headers are the
/// row's own when it was queued with them (before this version), otherwise
/// derived from its comment and ticket.
pub async fn contents(
    store: &Store,
    n: &NotifySettings,
    rows: &[Claimed],
) -> Result<HashMap<i64, Result<Content, String>>, StoreError> {
    let mut out = HashMap::new();
    let todo: Vec<i64> = rows
        .iter()
        .filter(|r| r.template.is_some())
        .map(|r| r.id)
        .collect();
    let found = if todo.is_empty() {
        HashMap::new()
    } else {
        store.send_contexts(&todo).await?
    };
    for r in rows {
        let Some((trigger, action)) = &r.template else {
            out.insert(
                r.id,
                Ok(Content {
                    subject: super::header_text::subject(&r.subject),
                    text: r.body_text.clone(),
                    html: r.body_html.clone(),
                    in_reply_to: r.in_reply_to.clone(),
                    reply_to: r.reply_to.clone(),
                }),
            );
            continue;
        };
        let content = match found.get(&r.id) {
            None => Err("its ticket no longer exists".to_string()),
            // The notifier's own last check, whatever happened since queuing.
            Some(c) if !c.public => Err("ticket is private: not sent".to_string()),
            Some(c) => render(n, trigger, *action, c).map(|mut content| {
                content.in_reply_to = r
                    .in_reply_to
                    .clone()
                    .or_else(|| c.comment_message_id.clone().filter(|_| c.comment_by_email));
                content.reply_to = r.reply_to.clone().or_else(|| {
                    c.mailbox
                        .as_ref()
                        .and_then(|m| n.mailbox_addresses.get(m).cloned())
                        .or_else(|| n.default_reply_to.clone())
                });
                content
            }),
        };
        out.insert(r.id, content);
    }
    Ok(out)
}

fn render(
    n: &NotifySettings,
    trigger: &str,
    action: usize,
    r: &SendContext,
) -> Result<Content, String> {
    let tpl = n.triggers.template(trigger, action).ok_or_else(|| {
        format!(
            "template: trigger {trigger:?} has no notify action {} any more",
            action + 1
        )
    })?;
    let ticket_id = r.ticket_id;
    let tag = n.tag.format(ticket_id);
    let ctx = EventContext {
        kind: None,
        channel: String::new(),
        requester_is_new: false,
        class: String::new(),
        author_role: String::new(),
        forwarded_by_agent: false,
        ticket: TicketVars {
            id: ticket_id,
            tag: tag.clone(),
            subject: r.subject.clone(),
            status: r.status.clone(),
            url: n
                .ticket_url
                .as_ref()
                .map(|u| u.replace("{id}", &ticket_id.to_string())),
        },
        requester: RequesterVars {
            name: r.requester_name.clone(),
            email: r.requester_email.clone(),
        },
        organization: r.org_name.clone().map(|name| OrgVars { name }),
        comment: CommentVars {
            body: r.comment_body.clone().unwrap_or_default(),
            full_body: r.comment_full_body.clone().unwrap_or_default(),
        },
    };
    let (subject, text, html) = n
        .triggers
        .templates
        .render(tpl, &ctx)
        .map_err(|e| format!("template of trigger {trigger:?}: {e}"))?;
    // The ticket's subject is the customer's text: one clean line.
    let subject = super::header_text::subject(&subject);
    let subject = if subject.contains(tag.as_str()) {
        subject
    } else {
        super::header_text::subject(&format!("{tag} {subject}"))
    };
    Ok(Content {
        subject,
        text,
        html,
        in_reply_to: None,
        reply_to: None,
    })
}
