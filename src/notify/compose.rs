//! Send-time rendering: the outbox row names its template (trigger name and
//! action index) and the comment it quotes; the sender loads the ticket,
//! requester, organization and comment of a claimed batch in one query and
//! renders. Rows queued before migration 0005 carry their rendered text.

use super::triggers::{CommentVars, EventContext, OrgVars, RequesterVars, TicketVars};
use super::NotifySettings;
use crate::store::{get_i64, get_opt_i64, get_opt_str, get_str, placeholders, Store, StoreError};
use sqlx::any::AnyRow;
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

const CONTEXT_SQL: &str = "SELECT x.id, t.id AS ticket_id, t.public, t.subject, t.status, t.mailbox, u.name AS r_name, o.name AS org_name, \
    c.body, c.message_id AS c_mid, c.channel AS c_channel, \
    (SELECT i.value FROM identities i WHERE i.user_id = t.requester_id AND i.kind = 'email' ORDER BY i.id LIMIT 1) AS r_email \
    FROM outbox x JOIN tickets t ON t.id = x.ticket_id JOIN users u ON u.id = t.requester_id \
    LEFT JOIN organizations o ON o.id = t.organization_id LEFT JOIN comments c ON c.id = x.comment_id \
    WHERE x.id IN";

/// The content of each claimed row (`id`, `trigger_name`, `action_index`,
/// `subject`, `body_text`, `body_html`, `in_reply_to`, `reply_to`), by outbox
/// id: Err(reason) when it cannot be rendered (a permanent failure). The
/// threading headers are the row's own when it was queued with them (before
/// this version), otherwise derived from its comment and ticket.
pub async fn contents(
    store: &Store,
    n: &NotifySettings,
    rows: &[AnyRow],
) -> Result<HashMap<i64, Result<Content, String>>, StoreError> {
    let mut out = HashMap::new();
    let mut todo: Vec<(i64, String, usize)> = Vec::new();
    for r in rows {
        let id = get_i64(r, "id");
        match get_opt_i64(r, "action_index") {
            Some(a) => todo.push((id, get_str(r, "trigger_name"), a.max(0) as usize)),
            None => {
                out.insert(
                    id,
                    Ok(Content {
                        subject: super::header_text::subject(&get_str(r, "subject")),
                        text: get_str(r, "body_text"),
                        html: get_opt_str(r, "body_html"),
                        in_reply_to: get_opt_str(r, "in_reply_to"),
                        reply_to: get_opt_str(r, "reply_to"),
                    }),
                );
            }
        }
    }
    if todo.is_empty() {
        return Ok(out);
    }
    let sql = format!("{CONTEXT_SQL} ({})", placeholders(0, todo.len()));
    let mut q = sqlx::query(&sql);
    for (id, _, _) in &todo {
        q = q.bind(*id);
    }
    let found: HashMap<i64, AnyRow> = q
        .fetch_all(store.pool())
        .await?
        .into_iter()
        .map(|r| (get_i64(&r, "id"), r))
        .collect();
    let queued: HashMap<i64, &AnyRow> = rows.iter().map(|r| (get_i64(r, "id"), r)).collect();
    for (id, trigger, action) in todo {
        let content = match found.get(&id) {
            None => Err("its ticket no longer exists".to_string()),
            // The notifier's own last check, whatever happened since queuing.
            Some(r) if get_i64(r, "public") == 0 => Err("ticket is private: not sent".to_string()),
            Some(r) => render(n, &trigger, action, r).map(|mut c| {
                let row = queued.get(&id);
                c.in_reply_to = row.and_then(|q| get_opt_str(q, "in_reply_to")).or_else(|| {
                    get_opt_str(r, "c_mid")
                        .filter(|_| get_opt_str(r, "c_channel").as_deref() == Some("email"))
                });
                c.reply_to = row.and_then(|q| get_opt_str(q, "reply_to")).or_else(|| {
                    get_opt_str(r, "mailbox")
                        .and_then(|m| n.mailbox_addresses.get(&m).cloned())
                        .or_else(|| n.default_reply_to.clone())
                });
                c
            }),
        };
        out.insert(id, content);
    }
    Ok(out)
}

fn render(n: &NotifySettings, trigger: &str, action: usize, r: &AnyRow) -> Result<Content, String> {
    let tpl = n.triggers.template(trigger, action).ok_or_else(|| {
        format!(
            "template: trigger {trigger:?} has no notify action {} any more",
            action + 1
        )
    })?;
    let ticket_id = get_i64(r, "ticket_id");
    let tag = n.tag.format(ticket_id);
    let ctx = EventContext {
        kind: None,
        channel: String::new(),
        requester_is_new: false,
        class: String::new(),
        ticket: TicketVars {
            id: ticket_id,
            tag: tag.clone(),
            subject: get_str(r, "subject"),
            status: get_str(r, "status"),
            url: n
                .ticket_url
                .as_ref()
                .map(|u| u.replace("{id}", &ticket_id.to_string())),
        },
        requester: RequesterVars {
            name: get_str(r, "r_name"),
            email: get_opt_str(r, "r_email"),
        },
        organization: get_opt_str(r, "org_name").map(|name| OrgVars { name }),
        comment: CommentVars {
            body: get_opt_str(r, "body").unwrap_or_default(),
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
