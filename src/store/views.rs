//! Read views for the admin API: organizations with their domains, one
//! ticket with its comments and events.

use super::{get_i64, get_opt_i64, get_opt_str, get_str, Store, StoreError};
use serde::Serialize;
use serde_json::{json, Value};

/// An organization and the domains it owns.
#[derive(Debug, Clone, Serialize)]
pub struct OrganizationView {
    pub id: i64,
    pub name: String,
    pub domains: Vec<String>,
}

impl Store {
    /// Every organization, by id.
    pub async fn organizations(&self) -> Result<Vec<OrganizationView>, StoreError> {
        let mut orgs: Vec<OrganizationView> =
            sqlx::query("SELECT id, name FROM organizations ORDER BY id")
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| OrganizationView {
                    id: get_i64(r, "id"),
                    name: get_str(r, "name"),
                    domains: vec![],
                })
                .collect();
        for r in
            sqlx::query("SELECT domain, organization_id FROM organization_domains ORDER BY domain")
                .fetch_all(&self.pool)
                .await?
        {
            let id = get_i64(&r, "organization_id");
            if let Some(o) = orgs.iter_mut().find(|o| o.id == id) {
                o.domains.push(get_str(&r, "domain"));
            }
        }
        Ok(orgs)
    }

    /// One organization.
    pub async fn organization(&self, id: i64) -> Result<OrganizationView, StoreError> {
        let r = sqlx::query("SELECT name FROM organizations WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("organization {id}")))?;
        let domains = sqlx::query(
            "SELECT domain FROM organization_domains WHERE organization_id = $1 ORDER BY domain",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| get_str(r, "domain"))
        .collect();
        Ok(OrganizationView {
            id,
            name: get_str(&r, "name"),
            domains,
        })
    }

    /// One ticket with its comments (and their linked attachments) and events.
    pub async fn ticket_view(&self, id: i64) -> Result<Value, StoreError> {
        let p = &self.pool;
        let t = sqlx::query(
            "SELECT id, subject, status, channel, public, requester_id, organization_id, follow_up_of, conversation_key, \
             assignee, group_name, tags, created_at, updated_at FROM tickets WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(p)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("ticket {id}")))?;
        let atts = sqlx::query(
            "SELECT a.comment_id, a.id, a.filename, a.content_type, a.size, a.url, a.content_id, a.inline, a.omitted FROM attachments a \
             JOIN comments c ON c.id = a.comment_id WHERE c.ticket_id = $1 ORDER BY a.id",
        )
        .bind(id)
        .fetch_all(p)
        .await?;
        let comments: Vec<Value> = sqlx::query(
            "SELECT id, author_id, role, forwarded_by, public, channel, message_id, class, flag, subject, body, COALESCE(visible_body, body) AS visible_body, created_at FROM comments WHERE ticket_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(p)
        .await?
        .iter()
        .map(|r| {
            let cid = get_i64(r, "id");
            let attachments: Vec<Value> = atts
                .iter()
                .filter(|a| get_i64(a, "comment_id") == cid)
                .map(|a| {
                    super::export::attachment_json(a)
                })
                .collect();
            json!({"id": cid, "author_id": get_i64(r, "author_id"), "role": get_str(r, "role"), "forwarded_by": get_opt_str(r, "forwarded_by"), "public": get_i64(r, "public") != 0,
                   "channel": get_str(r, "channel"), "message_id": get_str(r, "message_id"),
                   "class": get_str(r, "class"), "flag": get_opt_str(r, "flag"), "subject": get_str(r, "subject"),
                   "body": get_str(r, "body"), "visible_body": get_str(r, "visible_body"), "created_at": get_i64(r, "created_at"), "attachments": attachments})
        })
        .collect();
        let events: Vec<Value> = sqlx::query(
            "SELECT kind, comment_id, detail, created_at FROM ticket_events WHERE ticket_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(p)
        .await?
        .iter()
        .map(|r| {
            json!({"kind": get_str(r, "kind"), "comment_id": get_opt_i64(r, "comment_id"),
                   "detail": get_str(r, "detail"), "created_at": get_i64(r, "created_at")})
        })
        .collect();
        let related: Vec<i64> = sqlx::query(
            "SELECT related_id AS other FROM ticket_links WHERE ticket_id = $1 \
             UNION SELECT ticket_id AS other FROM ticket_links WHERE related_id = $1 ORDER BY other",
        )
        .bind(id)
        .fetch_all(p)
        .await?
        .iter()
        .map(|r| get_i64(r, "other"))
        .collect();
        Ok(json!({
            "id": id, "subject": get_str(&t, "subject"), "status": get_str(&t, "status"),
            "related": related,
            "channel": get_str(&t, "channel"), "public": get_i64(&t, "public") != 0,
            "requester_id": get_i64(&t, "requester_id"), "organization_id": get_opt_i64(&t, "organization_id"),
            "follow_up_of": get_opt_i64(&t, "follow_up_of"), "conversation_key": get_opt_str(&t, "conversation_key"),
            "assignee": get_opt_str(&t, "assignee"), "group": get_opt_str(&t, "group_name"),
            "tags": get_str(&t, "tags").split_whitespace().collect::<Vec<_>>(),
            "created_at": get_i64(&t, "created_at"), "updated_at": get_i64(&t, "updated_at"),
            "comments": comments, "events": events,
        }))
    }
}
