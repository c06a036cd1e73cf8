//! The sender's reads and its claim transaction: due rows claimed, the loop
//! brakes put on them (the decision is the caller's; this module counts
//! what it weighs) and what rendering needs. Senders decide one at a time:
//! the SQLite write lock, a transaction-scoped advisory lock on PostgreSQL.

use super::outbox_claims::{claim_due, count_taken, suppress_claimed};
use super::{get_i64, get_opt_i64, get_opt_str, get_str, placeholders, Backend, Store, StoreError};
use crate::model::{Channel, Claimed, RecipientLoad, SendContext};
use sqlx::any::AnyRow;
use std::collections::{HashMap, HashSet};

/// The advisory lock key that serialises the senders' decisions on PostgreSQL.
const SENDERS_LOCK: i64 = 0x696e_7461_6b65_0001;

/// Per recipient: notifications taken for delivery in the window, and why it
/// is undeliverable, as one JSON array of `[address, count, reason]` in a
/// single row (the recipients travel as one JSON array, so the statement's
/// text never changes and nothing is streamed row by row).
fn load_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "SELECT json_group_array(json_array(j.value, \
         (SELECT COUNT(*) FROM outbox o WHERE o.to_addr = j.value AND o.counted_at > ?1), \
         (SELECT u.reason FROM undeliverable u WHERE u.address = j.value AND u.until_at > ?2))) FROM json_each(?3) j",
        Backend::Postgres => "SELECT COALESCE(json_agg(json_build_array(j.value, \
         (SELECT COUNT(*) FROM outbox o WHERE o.to_addr = j.value AND o.counted_at > $1), \
         (SELECT u.reason FROM undeliverable u WHERE u.address = j.value AND u.until_at > $2))), '[]')::text \
         FROM json_array_elements_text($3::json) AS j(value)",
    }
}

/// Who decides which claimed rows are held back: given the rows `(id, to)`
/// in id order and their recipients' load, the reason for each held one.
pub type Brakes<'a> = dyn Fn(&[(i64, String)], &RecipientLoad) -> HashMap<i64, String> + Sync + 'a;

fn claimed(r: &AnyRow) -> Claimed {
    Claimed {
        id: get_i64(r, "id"),
        to: get_str(r, "to_addr"),
        message_id: get_str(r, "message_id"),
        attempts: get_i64(r, "attempts"),
        template: get_opt_i64(r, "action_index")
            .map(|a| (get_str(r, "trigger_name"), a.max(0) as usize)),
        subject: get_str(r, "subject"),
        body_text: get_str(r, "body_text"),
        body_html: get_opt_str(r, "body_html"),
        in_reply_to: get_opt_str(r, "in_reply_to"),
        reply_to: get_opt_str(r, "reply_to"),
    }
}

impl Store {
    /// In one transaction: claim up to `max` rows due at `now` for `me`
    /// until `until`, weigh their recipients' load since `window_start`,
    /// record the rows `brakes` holds back as suppressed, and count the
    /// others against their recipients from now. Returns the rows to send
    /// (by id) and the held ones with their reasons.
    #[allow(clippy::too_many_arguments)]
    pub async fn claim_notifications(
        &self,
        me: &str,
        now: i64,
        until: i64,
        window_start: i64,
        max: usize,
        brakes: &Brakes<'_>,
    ) -> Result<(Vec<Claimed>, Vec<(i64, String)>), StoreError> {
        self.observed(async {
            let mut tx = self.begin().await?;
            let rows = claim_due(&mut tx.tx, self.backend, me, now, until, max).await?;
            let mut rows: Vec<Claimed> = rows.iter().map(claimed).collect();
            rows.sort_by_key(|r| r.id);
            if rows.is_empty() {
                tx.commit().await?;
                return Ok((rows, Vec::new()));
            }
            if self.backend == Backend::Postgres {
                sqlx::query("SELECT 1 FROM (SELECT pg_advisory_xact_lock($1)) AS l")
                    .bind(SENDERS_LOCK)
                    .execute(&mut *tx.tx)
                    .await?;
            }
            let addrs: Vec<&String> = rows
                .iter()
                .map(|r| &r.to)
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            let json: String = sqlx::query_scalar(load_sql(self.backend))
                .bind(window_start)
                .bind(now)
                .bind(serde_json::to_string(&addrs).unwrap_or_default())
                .fetch_one(&mut *tx.tx)
                .await?;
            let found: Vec<(String, i64, Option<String>)> = serde_json::from_str(&json)
                .map_err(|e| StoreError::invalid(format!("rate-limit counts: {e}")))?;
            let mut load = RecipientLoad::default();
            for (a, count, why) in found {
                if let Some(why) = why {
                    load.undeliverable.insert(a.clone(), why);
                }
                load.counts.insert(a, count);
            }
            let who: Vec<(i64, String)> = rows.iter().map(|r| (r.id, r.to.clone())).collect();
            let held = brakes(&who, &load);
            let mut suppressed = Vec::with_capacity(held.len());
            let mut go = Vec::with_capacity(rows.len());
            for (id, _) in &who {
                match held.get(id) {
                    Some(reason) => {
                        suppress_claimed(&mut tx.tx, *id, reason).await?;
                        suppressed.push((*id, reason.clone()));
                    }
                    None => go.push(*id),
                }
            }
            count_taken(&mut tx.tx, &go, now).await?;
            tx.commit().await?;
            rows.retain(|r| !held.contains_key(&r.id));
            Ok((rows, suppressed))
        })
        .await
    }

    /// What rendering the notifications `ids` needs, by outbox id (a row
    /// whose ticket is gone is missing).
    pub async fn send_contexts(
        &self,
        ids: &[i64],
    ) -> Result<HashMap<i64, SendContext>, StoreError> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(500) {
            let sql = format!("{CONTEXT_SQL} ({})", placeholders(0, chunk.len()));
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            for r in q.fetch_all(&self.pool).await? {
                out.insert(get_i64(&r, "id"), context(&r));
            }
        }
        Ok(out)
    }
}

const CONTEXT_SQL: &str = "SELECT x.id, t.id AS ticket_id, t.public, t.subject, t.status, t.mailbox, u.name AS r_name, o.name AS org_name, \
    c.body, COALESCE(c.visible_body, c.body) AS visible_body, c.message_id AS c_mid, c.channel AS c_channel, \
    (SELECT i.value FROM identities i WHERE i.user_id = t.requester_id AND i.kind = 'email' ORDER BY i.id LIMIT 1) AS r_email \
    FROM outbox x JOIN tickets t ON t.id = x.ticket_id JOIN users u ON u.id = t.requester_id \
    LEFT JOIN organizations o ON o.id = t.organization_id LEFT JOIN comments c ON c.id = x.comment_id \
    WHERE x.id IN";

fn context(r: &AnyRow) -> SendContext {
    SendContext {
        ticket_id: get_i64(r, "ticket_id"),
        public: get_i64(r, "public") != 0,
        subject: get_str(r, "subject"),
        status: get_str(r, "status"),
        mailbox: get_opt_str(r, "mailbox"),
        requester_name: get_str(r, "r_name"),
        requester_email: get_opt_str(r, "r_email"),
        org_name: get_opt_str(r, "org_name"),
        comment_body: get_opt_str(r, "visible_body"),
        comment_full_body: get_opt_str(r, "body"),
        comment_message_id: get_opt_str(r, "c_mid"),
        comment_by_email: get_opt_str(r, "c_channel")
            .is_some_and(|c| Channel::named(&c).is_email()),
    }
}
