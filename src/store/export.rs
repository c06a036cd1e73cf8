//! `intake export`: everything as one JSON document.

use super::{get_i64, get_opt_i64, get_opt_str, get_str, Store, StoreError};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

impl Store {
    /// Organizations, users, tickets with comments, quarantine and
    /// notifications (and normalisation conflicts, when there are any).
    pub async fn export(&self) -> Result<Value, StoreError> {
        let p = &self.pool;
        let mut domains: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for r in
            sqlx::query("SELECT domain, organization_id FROM organization_domains ORDER BY domain")
                .fetch_all(p)
                .await?
        {
            domains
                .entry(get_i64(&r, "organization_id"))
                .or_default()
                .push(get_str(&r, "domain"));
        }
        let orgs: Vec<Value> = sqlx::query("SELECT id, name FROM organizations ORDER BY id")
            .fetch_all(p)
            .await?
            .iter()
            .map(|r| {
                let id = get_i64(r, "id");
                json!({"id": id, "name": get_str(r, "name"), "domains": domains.remove(&id).unwrap_or_default()})
            })
            .collect();
        let mut idents: BTreeMap<i64, Vec<Value>> = BTreeMap::new();
        for r in sqlx::query("SELECT user_id, kind, value FROM identities ORDER BY id")
            .fetch_all(p)
            .await?
        {
            idents
                .entry(get_i64(&r, "user_id"))
                .or_default()
                .push(json!({"kind": get_str(&r, "kind"), "value": get_str(&r, "value")}));
        }
        let users: Vec<Value> = sqlx::query("SELECT id, name, organization_id, merged_into FROM users ORDER BY id")
            .fetch_all(p)
            .await?
            .iter()
            .map(|r| {
                let id = get_i64(r, "id");
                json!({"id": id, "name": get_str(r, "name"), "organization_id": get_opt_i64(r, "organization_id"),
                       "merged_into": get_opt_i64(r, "merged_into"), "identities": idents.remove(&id).unwrap_or_default()})
            })
            .collect();
        let mut atts: BTreeMap<i64, Vec<Value>> = BTreeMap::new();
        for r in sqlx::query(
            "SELECT comment_id, filename, content_type, size, url FROM attachments ORDER BY id",
        )
        .fetch_all(p)
        .await?
        {
            atts.entry(get_i64(&r, "comment_id"))
                .or_default()
                .push(json!({
                "filename": get_str(&r, "filename"), "content_type": get_str(&r, "content_type"),
                "size": get_i64(&r, "size"), "url": get_opt_str(&r, "url")}));
        }
        let mut comments: BTreeMap<i64, Vec<Value>> = BTreeMap::new();
        for r in sqlx::query(
            "SELECT id, ticket_id, author_id, public, channel, message_id, class, flag, body, mailbox, created_at FROM comments ORDER BY id",
        )
        .fetch_all(p)
        .await?
        {
            let id = get_i64(&r, "id");
            comments.entry(get_i64(&r, "ticket_id")).or_default().push(json!({
                "id": id, "author_id": get_i64(&r, "author_id"), "public": get_i64(&r, "public") != 0,
                "channel": get_str(&r, "channel"), "message_id": get_str(&r, "message_id"),
                "class": get_str(&r, "class"), "flag": get_opt_str(&r, "flag"), "body": get_str(&r, "body"),
                "mailbox": get_opt_str(&r, "mailbox"), "created_at": get_i64(&r, "created_at"),
                "attachments": atts.remove(&id).unwrap_or_default()}));
        }
        let mut events: BTreeMap<i64, Vec<Value>> = BTreeMap::new();
        for r in
            sqlx::query("SELECT ticket_id, kind, comment_id, detail FROM ticket_events ORDER BY id")
                .fetch_all(p)
                .await?
        {
            events.entry(get_i64(&r, "ticket_id")).or_default().push(json!({
                "kind": get_str(&r, "kind"), "comment_id": get_opt_i64(&r, "comment_id"), "detail": get_str(&r, "detail")}));
        }
        let tickets: Vec<Value> = sqlx::query(
            "SELECT id, subject, status, channel, public, requester_id, organization_id, follow_up_of, conversation_key, assignee, group_name, tags FROM tickets ORDER BY id",
        )
        .fetch_all(p)
        .await?
        .iter()
        .map(|r| {
            let id = get_i64(r, "id");
            json!({"id": id, "subject": get_str(r, "subject"), "status": get_str(r, "status"),
                   "channel": get_str(r, "channel"), "public": get_i64(r, "public") != 0,
                   "requester_id": get_i64(r, "requester_id"), "organization_id": get_opt_i64(r, "organization_id"),
                   "follow_up_of": get_opt_i64(r, "follow_up_of"), "conversation_key": get_opt_str(r, "conversation_key"),
                   "assignee": get_opt_str(r, "assignee"), "group": get_opt_str(r, "group_name"),
                   "tags": get_str(r, "tags").split_whitespace().collect::<Vec<_>>(),
                   "comments": comments.remove(&id).unwrap_or_default(),
                   "events": events.remove(&id).unwrap_or_default()})
        })
        .collect();
        let quarantine: Vec<Value> = self
            .quarantine_list()
            .await?
            .into_iter()
            .rev()
            .map(|q| serde_json::to_value(q).unwrap_or(Value::Null))
            .collect();
        let notifications: Vec<Value> = sqlx::query(
            "SELECT id, ticket_id, trigger_name, to_addr, status, attempts, message_id, last_error FROM outbox ORDER BY id",
        )
        .fetch_all(p)
        .await?
        .iter()
        .map(|r| {
            json!({"id": get_i64(r, "id"), "ticket_id": get_i64(r, "ticket_id"), "trigger": get_str(r, "trigger_name"),
                   "to": get_str(r, "to_addr"), "status": get_str(r, "status"), "attempts": get_i64(r, "attempts"),
                   "message_id": get_str(r, "message_id"), "last_error": get_opt_str(r, "last_error")})
        })
        .collect();
        // Rows the address re-normalisation kept in an old spelling, listed
        // only when there are some (a database not yet migrated to 0011 has
        // no such table: its export lists none).
        let conflicts: Vec<Value> = match sqlx::query(
            "SELECT table_name, old_value, normal_value, owner_id, holder_id, created_at FROM normalisation_conflicts ORDER BY id",
        )
        .fetch_all(p)
        .await
        {
            Ok(rows) => rows.iter().map(|r| {
                json!({"table": get_str(r, "table_name"), "old_value": get_str(r, "old_value"),
                       "normal_value": get_opt_str(r, "normal_value"), "owner_id": get_i64(r, "owner_id"),
                       "holder_id": get_opt_i64(r, "holder_id"), "created_at": get_i64(r, "created_at")})
            }).collect(),
            Err(sqlx::Error::Database(_)) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let mut doc = Map::new();
        doc.insert("organizations".into(), Value::Array(orgs));
        doc.insert("users".into(), Value::Array(users));
        doc.insert("tickets".into(), Value::Array(tickets));
        doc.insert("quarantine".into(), Value::Array(quarantine));
        doc.insert("notifications".into(), Value::Array(notifications));
        if !conflicts.is_empty() {
            doc.insert("normalisation_conflicts".into(), Value::Array(conflicts));
        }
        Ok(Value::Object(doc))
    }
}
