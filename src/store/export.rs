//! `intake export`: everything (or the tickets a filter selects) as one JSON
//! document, streamed: rows are read a page at a time by id and written as
//! they come, so memory stays flat whatever the store's size.
//!
//! The document: `organizations`, `users`, `tickets` (with their comments,
//! attachments and events), `quarantine`, `review`, `bounces`, `notifications`, and
//! `normalisation_conflicts` when there are any. With a filter the tickets
//! are those it selects, `users` and `organizations` those the tickets
//! name (requesters, comment authors and their organizations), the
//! notifications those of the tickets, and quarantine what was received
//! since `since` (nothing for a ticket or user filter).

use super::quarantine::{entry, COLUMNS};
use super::{get_i64, get_opt_i64, get_opt_str, get_str, Store, StoreError};
use serde_json::{json, Value};
use sqlx::any::AnyRow;
use std::collections::BTreeMap;
use std::io::Write;

/// Rows read per query.
const PAGE: usize = 500;

/// Which tickets to export; the default selects everything.
#[derive(Debug, Clone, Default)]
pub struct ExportFilter {
    /// Tickets with a comment created at or after this time (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Only these tickets.
    pub tickets: Vec<i64>,
    /// Tickets this user requested or wrote on.
    pub user: Option<i64>,
}

impl ExportFilter {
    fn is_all(&self) -> bool {
        self.since_ms.is_none() && self.tickets.is_empty() && self.user.is_none()
    }

    /// The condition on `tickets t`. Every value is an integer, written as
    /// such: nothing from outside reaches the SQL as text.
    fn tickets_where(&self) -> String {
        let mut c = vec!["1 = 1".to_string()];
        if let Some(s) = self.since_ms {
            c.push(format!("EXISTS (SELECT 1 FROM comments c WHERE c.ticket_id = t.id AND c.created_at >= {s})"));
        }
        if !self.tickets.is_empty() {
            c.push(format!("t.id IN ({})", ints(&self.tickets)));
        }
        if let Some(u) = self.user {
            c.push(format!("(t.requester_id = {u} OR EXISTS (SELECT 1 FROM comments c WHERE c.ticket_id = t.id AND c.author_id = {u}))"));
        }
        c.join(" AND ")
    }

    fn users_where(&self) -> String {
        if self.is_all() {
            return "1 = 1".into();
        }
        let t = self.tickets_where();
        format!(
            "(u.id IN (SELECT t.requester_id FROM tickets t WHERE {t}) \
             OR u.id IN (SELECT c.author_id FROM comments c JOIN tickets t ON t.id = c.ticket_id WHERE {t}))"
        )
    }
}

fn ints(v: &[i64]) -> String {
    v.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why an export stopped: the database, or the output (a closed pipe).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the export: {0}")]
    Write(#[from] std::io::Error),
}

impl From<sqlx::Error> for ExportError {
    fn from(e: sqlx::Error) -> Self {
        ExportError::Store(e.into())
    }
}

/// Writes `"key":[` … `]` with one item per line.
struct List<'w, W: Write> {
    w: &'w mut W,
    first: bool,
}

impl<'w, W: Write> List<'w, W> {
    fn open(w: &'w mut W, key: &str, first_key: bool) -> std::io::Result<Self> {
        write!(w, "{}\"{key}\":[", if first_key { "{" } else { "],\n" })?;
        Ok(List { w, first: true })
    }

    fn item(&mut self, v: &Value) -> std::io::Result<()> {
        self.w.write_all(if self.first { b"\n" } else { b",\n" })?;
        self.first = false;
        serde_json::to_writer(&mut *self.w, v).map_err(std::io::Error::from)
    }
}

impl Store {
    /// Everything as one JSON value (tests and small stores; the command
    /// line streams with [`Store::export_to`]).
    pub async fn export(&self) -> Result<Value, StoreError> {
        let mut buf = Vec::new();
        match self.export_to(&mut buf, &ExportFilter::default()).await {
            Ok(()) => {}
            Err(ExportError::Store(e)) => return Err(e),
            Err(ExportError::Write(e)) => return Err(StoreError::invalid(e.to_string())),
        }
        serde_json::from_slice(&buf).map_err(|e| StoreError::invalid(e.to_string()))
    }

    /// Stream the export to `w`, a page of rows at a time.
    pub async fn export_to<W: Write>(
        &self,
        w: &mut W,
        f: &ExportFilter,
    ) -> Result<(), ExportError> {
        let users_where = f.users_where();
        let orgs_where = if f.is_all() {
            "1 = 1".to_string()
        } else {
            format!("o.id IN (SELECT u.organization_id FROM users u WHERE {users_where})")
        };
        let mut l = List::open(w, "organizations", true)?;
        self.pages(&format!("SELECT o.id, o.name FROM organizations o WHERE {orgs_where} AND o.id > {{after}} ORDER BY o.id LIMIT {PAGE}"), |s, page| async move {
            let ids: Vec<i64> = page.iter().map(|r| get_i64(r, "id")).collect();
            let mut domains = s.grouped("SELECT organization_id AS k, domain FROM organization_domains WHERE organization_id IN", &ids, "ORDER BY domain", |r| json!(get_str(r, "domain"))).await?;
            Ok(page.iter().map(|r| { let id = get_i64(r, "id");
                json!({"id": id, "name": get_str(r, "name"), "domains": domains.remove(&id).unwrap_or_default()}) }).collect())
        }, &mut l).await?;
        let mut l = List::open(l.w, "users", false)?;
        self.pages(&format!("SELECT u.id, u.name, u.organization_id, u.merged_into FROM users u WHERE {users_where} AND u.id > {{after}} ORDER BY u.id LIMIT {PAGE}"), |s, page| async move {
            let ids: Vec<i64> = page.iter().map(|r| get_i64(r, "id")).collect();
            let mut idents = s.grouped("SELECT user_id AS k, kind, value FROM identities WHERE user_id IN", &ids, "ORDER BY id", |r| json!({"kind": get_str(r, "kind"), "value": get_str(r, "value")})).await?;
            Ok(page.iter().map(|r| { let id = get_i64(r, "id");
                json!({"id": id, "name": get_str(r, "name"), "organization_id": get_opt_i64(r, "organization_id"),
                       "merged_into": get_opt_i64(r, "merged_into"), "identities": idents.remove(&id).unwrap_or_default()}) }).collect())
        }, &mut l).await?;
        let tickets_where = f.tickets_where();
        let mut l = List::open(l.w, "tickets", false)?;
        self.pages(&format!("SELECT t.id, t.subject, t.status, t.channel, t.public, t.requester_id, t.organization_id, t.follow_up_of, t.conversation_key, t.assignee, t.group_name, t.tags FROM tickets t WHERE {tickets_where} AND t.id > {{after}} ORDER BY t.id LIMIT {PAGE}"),
            |s, page| async move { s.ticket_page(page).await }, &mut l).await?;
        let quarantine_where = match (f.is_all(), f.since_ms) {
            (true, _) => "1 = 1".to_string(),
            (false, Some(s)) if f.tickets.is_empty() && f.user.is_none() => {
                format!("received_at >= {s}")
            }
            _ => "1 = 0".to_string(),
        };
        let mut l = List::open(l.w, "quarantine", false)?;
        self.pages(&format!("SELECT {COLUMNS} FROM quarantine WHERE {quarantine_where} AND id > {{after}} ORDER BY id LIMIT {PAGE}"), |_, page| async move {
            Ok(page.iter().map(|r| serde_json::to_value(entry(r)).unwrap_or(Value::Null)).collect())
        }, &mut l).await?;
        let mut l = List::open(l.w, "review", false)?;
        self.pages(&format!("SELECT {} FROM review WHERE {quarantine_where} AND id > {{after}} ORDER BY id LIMIT {PAGE}", super::review::COLUMNS), |_, page| async move {
            Ok(page.iter().map(|r| serde_json::to_value(super::review::entry(r)).unwrap_or(Value::Null)).collect())
        }, &mut l).await?;
        let mut l = List::open(l.w, "bounces", false)?;
        self.pages(&format!("SELECT {} FROM bounces WHERE {quarantine_where} AND id > {{after}} ORDER BY id LIMIT {PAGE}", super::bounces::COLUMNS), |_, page| async move {
            Ok(page.iter().map(|r| serde_json::to_value(super::bounces::entry(r)).unwrap_or(Value::Null)).collect())
        }, &mut l).await?;
        let outbox_where = if f.is_all() {
            "1 = 1".to_string()
        } else {
            format!("o.ticket_id IN (SELECT t.id FROM tickets t WHERE {tickets_where})")
        };
        let mut l = List::open(l.w, "notifications", false)?;
        self.pages(&format!("SELECT o.id, o.ticket_id, o.trigger_name, o.to_addr, o.status, o.attempts, o.message_id, o.last_error FROM outbox o WHERE {outbox_where} AND o.id > {{after}} ORDER BY o.id LIMIT {PAGE}"), |_, page| async move {
            Ok(page.iter().map(|r| json!({"id": get_i64(r, "id"), "ticket_id": get_i64(r, "ticket_id"), "trigger": get_str(r, "trigger_name"),
                   "to": get_str(r, "to_addr"), "status": get_str(r, "status"), "attempts": get_i64(r, "attempts"),
                   "message_id": get_str(r, "message_id"), "last_error": get_opt_str(r, "last_error")})).collect())
        }, &mut l).await?;
        let w = l.w;
        // Rows the address re-normalisation kept in an old spelling, listed
        // only when there are some (a database not yet migrated to 0011 has
        // no such table: its export lists none).
        let conflicts = match sqlx::query(
            "SELECT table_name, old_value, normal_value, owner_id, holder_id, created_at FROM normalisation_conflicts ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        {
            Ok(rows) => rows,
            Err(sqlx::Error::Database(_)) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        if f.is_all() && !conflicts.is_empty() {
            let mut l = List::open(w, "normalisation_conflicts", false)?;
            for r in &conflicts {
                l.item(&json!({"table": get_str(r, "table_name"), "old_value": get_str(r, "old_value"),
                       "normal_value": get_opt_str(r, "normal_value"), "owner_id": get_i64(r, "owner_id"),
                       "holder_id": get_opt_i64(r, "holder_id"), "created_at": get_i64(r, "created_at")}))?;
            }
            l.w.write_all(b"]}\n")?;
        } else {
            w.write_all(b"]}\n")?;
        }
        w.flush()?;
        Ok(())
    }

    /// Run `sql` (with `{after}` standing for the last id seen) page by
    /// page, turning each page into items with `items` and writing them.
    async fn pages<'s, F, Fut, W: Write>(
        &'s self,
        sql: &str,
        items: F,
        l: &mut List<'_, W>,
    ) -> Result<(), ExportError>
    where
        F: Fn(&'s Store, Vec<AnyRow>) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<Value>, StoreError>>,
    {
        let mut after = 0i64;
        loop {
            let page = sqlx::query(&sql.replace("{after}", &after.to_string()))
                .fetch_all(&self.pool)
                .await?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = get_i64(last, "id");
            let full = page.len() == PAGE;
            for v in items(self, page).await? {
                l.item(&v)?;
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// `{head} (ids…) {tail}` grouped by the column `k`, each row made a value.
    async fn grouped(
        &self,
        head: &str,
        ids: &[i64],
        tail: &str,
        v: impl Fn(&AnyRow) -> Value,
    ) -> Result<BTreeMap<i64, Vec<Value>>, StoreError> {
        let mut out: BTreeMap<i64, Vec<Value>> = BTreeMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        for r in sqlx::query(&format!("{head} ({}) {tail}", ints(ids)))
            .fetch_all(&self.pool)
            .await?
        {
            out.entry(get_i64(&r, "k")).or_default().push(v(&r));
        }
        Ok(out)
    }

    /// A page of tickets with their comments (and attachments) and events.
    async fn ticket_page(&self, page: Vec<AnyRow>) -> Result<Vec<Value>, StoreError> {
        let ids: Vec<i64> = page.iter().map(|r| get_i64(r, "id")).collect();
        let comment_rows = sqlx::query(&format!(
            "SELECT id, ticket_id, author_id, role, forwarded_by, public, channel, message_id, class, flag, body, COALESCE(visible_body, body) AS visible_body, mailbox, created_at FROM comments WHERE ticket_id IN ({}) ORDER BY id",
            ints(&ids)
        ))
        .fetch_all(&self.pool)
        .await?;
        let comment_ids: Vec<i64> = comment_rows.iter().map(|r| get_i64(r, "id")).collect();
        let mut atts = BTreeMap::new();
        for chunk in comment_ids.chunks(PAGE) {
            atts.extend(self.grouped("SELECT comment_id AS k, id, filename, content_type, size, url, content_id, inline, omitted FROM attachments WHERE comment_id IN", chunk, "ORDER BY id", attachment_json).await?);
        }
        let mut comments: BTreeMap<i64, Vec<Value>> = BTreeMap::new();
        for r in &comment_rows {
            let id = get_i64(r, "id");
            comments.entry(get_i64(r, "ticket_id")).or_default().push(json!({
                "id": id, "author_id": get_i64(r, "author_id"), "role": get_str(r, "role"), "forwarded_by": get_opt_str(r, "forwarded_by"), "public": get_i64(r, "public") != 0,
                "channel": get_str(r, "channel"), "message_id": get_str(r, "message_id"),
                "class": get_str(r, "class"), "flag": get_opt_str(r, "flag"), "body": get_str(r, "body"),
                "visible_body": get_str(r, "visible_body"), "mailbox": get_opt_str(r, "mailbox"), "created_at": get_i64(r, "created_at"),
                "attachments": atts.remove(&id).unwrap_or_default()}));
        }
        let mut events = self.grouped("SELECT ticket_id AS k, kind, comment_id, detail FROM ticket_events WHERE ticket_id IN", &ids, "ORDER BY id", |r| json!({
            "kind": get_str(r, "kind"), "comment_id": get_opt_i64(r, "comment_id"), "detail": get_str(r, "detail")})).await?;
        Ok(page.iter().map(|r| {
            let id = get_i64(r, "id");
            json!({"id": id, "subject": get_str(r, "subject"), "status": get_str(r, "status"),
                   "channel": get_str(r, "channel"), "public": get_i64(r, "public") != 0,
                   "requester_id": get_i64(r, "requester_id"), "organization_id": get_opt_i64(r, "organization_id"),
                   "follow_up_of": get_opt_i64(r, "follow_up_of"), "conversation_key": get_opt_str(r, "conversation_key"),
                   "assignee": get_opt_str(r, "assignee"), "group": get_opt_str(r, "group_name"),
                   "tags": get_str(r, "tags").split_whitespace().collect::<Vec<_>>(),
                   "comments": comments.remove(&id).unwrap_or_default(),
                   "events": events.remove(&id).unwrap_or_default()})
        }).collect())
    }
}

/// One attachment as the export and the ticket view show it.
pub(super) fn attachment_json(r: &AnyRow) -> Value {
    json!({
        "id": get_i64(r, "id"), "filename": get_str(r, "filename"), "content_type": get_str(r, "content_type"),
        "size": get_i64(r, "size"), "url": get_opt_str(r, "url"),
        "content_id": get_opt_str(r, "content_id"), "inline": get_i64(r, "inline") != 0,
        "omitted": get_opt_str(r, "omitted"),
    })
}
