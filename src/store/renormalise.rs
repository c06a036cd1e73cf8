//! A data migration, run once after the SQL migrations: addresses and
//! domains stored by earlier versions in another spelling (case, a trailing
//! dot, a Unicode or upper-case domain instead of its IDNA form, a local
//! part not in NFKC, needless quotes) are rewritten in today's normal form
//! (`identity::EmailAddress`, `identity::normalise_domain`), so that new mail
//! from the same person or domain finds them again.
//!
//! Columns matching relies on: email `identities` (and their `domain`),
//! `organization_domains`, `ticket_participants`, `undeliverable` and the
//! outbox's recipients (the rate limit and the undeliverable brake compare
//! `to_addr`). A row whose normal form is already stored for the same owner
//! (user, organization, ticket, address) is a duplicate and is dropped; one
//! whose normal form belongs to *another* user or organization is kept as it
//! is and recorded in `normalisation_conflicts` with both owners (and logged
//! at warn), for ops to merge them (`intake users merge`). A value that no
//! longer parses is kept and recorded too. The whole pass is one
//! transaction, marked done in `data_migrations`: it runs once, and
//! concurrent daemons starting at once run it once between them.

use super::{get_i64, get_str, now_ms, Store, StoreError};
use crate::identity::{normalise_domain, EmailAddress, RegistrableDomain};
use sqlx::any::Any;
use sqlx::Transaction;
use std::collections::BTreeMap;

type Tx = Transaction<'static, Any>;

/// The name this migration is recorded under in `data_migrations`.
pub const NAME: &str = "0011_renormalise_addresses";
/// Rows read per statement.
const CHUNK: i64 = 1000;

/// What the pass did, per table: `(table, what) → rows`.
#[derive(Debug, Default)]
struct Tally(BTreeMap<(&'static str, &'static str), u64>);

impl Tally {
    fn add(&mut self, table: &'static str, what: &'static str) {
        *self.0.entry((table, what)).or_default() += 1;
    }
    fn summary(&self) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|((t, w), n)| format!("{t} {w}: {n}"))
            .collect();
        if parts.is_empty() {
            "nothing to rewrite".into()
        } else {
            parts.join(", ")
        }
    }
}

impl Store {
    /// Run the pass unless it ran before. Returns its summary when it ran.
    pub async fn renormalise_once(&self) -> Result<Option<String>, StoreError> {
        // Every start after the first: one read, no write transaction.
        let done = sqlx::query("SELECT name FROM data_migrations WHERE name = $1")
            .bind(NAME)
            .fetch_optional(&self.pool)
            .await?;
        if done.is_some() {
            return Ok(None);
        }
        let mut tx = self.begin().await?;
        let now = now_ms();
        let first = sqlx::query(
            "INSERT INTO data_migrations (name, applied_at, summary) VALUES ($1, $2, '') \
             ON CONFLICT (name) DO NOTHING RETURNING name",
        )
        .bind(NAME)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        if first.is_none() {
            // Another daemon ran it meanwhile.
            return Ok(None);
        }
        let mut t = Tally::default();
        identities(&mut tx.tx, &mut t, now).await?;
        org_domains(&mut tx.tx, &mut t, now).await?;
        participants(&mut tx.tx, &mut t).await?;
        undeliverable(&mut tx.tx, &mut t).await?;
        recipients(&mut tx.tx, &mut t).await?;
        let summary = t.summary();
        sqlx::query("UPDATE data_migrations SET summary = $1 WHERE name = $2")
            .bind(&summary)
            .bind(NAME)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(summary = %summary, "stored addresses rewritten in today's normal form");
        Ok(Some(summary))
    }
}

/// Record a row kept in its old spelling: its normal form belongs to
/// another owner (`holder`), or it has none (`normal` None).
async fn conflict(
    tx: &mut Tx,
    table: &str,
    old: &str,
    normal: Option<&str>,
    owner: i64,
    holder: Option<i64>,
    now: i64,
) -> Result<(), StoreError> {
    match (normal, holder) {
        (Some(n), Some(h)) => tracing::warn!(table, old, normal = n, owner, holder = h,
            "stored in an old spelling whose normal form belongs to another owner: kept as it is, listed in normalisation_conflicts"),
        _ => tracing::warn!(table, old, owner, "stored value is no longer a valid address or domain: kept as it is, listed in normalisation_conflicts"),
    }
    sqlx::query(
        "INSERT INTO normalisation_conflicts (table_name, old_value, normal_value, owner_id, holder_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (table_name, old_value) DO NOTHING",
    )
    .bind(table)
    .bind(old)
    .bind(normal)
    .bind(owner)
    .bind(holder)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Email identities, in id order (the older row keeps a contested form).
async fn identities(tx: &mut Tx, t: &mut Tally, now: i64) -> Result<(), StoreError> {
    const T: &str = "identities";
    let mut after = 0i64;
    loop {
        let rows = sqlx::query(
            "SELECT id, user_id, value, domain FROM identities WHERE kind = 'email' AND id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(CHUNK)
        .fetch_all(&mut **tx)
        .await?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = get_i64(last, "id");
        for r in &rows {
            let (id, user, value) = (get_i64(r, "id"), get_i64(r, "user_id"), get_str(r, "value"));
            let Ok(e) = EmailAddress::parse(&value) else {
                conflict(tx, T, &value, None, user, None, now).await?;
                t.add(T, "kept, invalid");
                continue;
            };
            let domain = RegistrableDomain::of(e.domain()).map(|d| d.as_str().to_string());
            let stored_domain = super::get_opt_str(r, "domain");
            if e.as_str() == value {
                if stored_domain != domain {
                    sqlx::query("UPDATE identities SET domain = $1 WHERE id = $2")
                        .bind(&domain)
                        .bind(id)
                        .execute(&mut **tx)
                        .await?;
                    t.add(T, "domain rewritten");
                }
                continue;
            }
            let holder =
                sqlx::query("SELECT user_id FROM identities WHERE kind = 'email' AND value = $1")
                    .bind(e.as_str())
                    .fetch_optional(&mut **tx)
                    .await?
                    .map(|h| get_i64(&h, "user_id"));
            match holder {
                None => {
                    sqlx::query("UPDATE identities SET value = $1, domain = $2 WHERE id = $3")
                        .bind(e.as_str())
                        .bind(&domain)
                        .bind(id)
                        .execute(&mut **tx)
                        .await?;
                    t.add(T, "rewritten");
                }
                Some(h) if h == user => {
                    sqlx::query("DELETE FROM identities WHERE id = $1")
                        .bind(id)
                        .execute(&mut **tx)
                        .await?;
                    t.add(T, "duplicates dropped");
                }
                Some(h) => {
                    conflict(tx, T, &value, Some(e.as_str()), user, Some(h), now).await?;
                    t.add(T, "kept, normal form held by another user");
                }
            }
        }
    }
}

/// Organization domains (registrable domains, stored without the user part).
async fn org_domains(tx: &mut Tx, t: &mut Tally, now: i64) -> Result<(), StoreError> {
    const T: &str = "organization_domains";
    let rows =
        sqlx::query("SELECT domain, organization_id FROM organization_domains ORDER BY domain")
            .fetch_all(&mut **tx)
            .await?;
    for r in &rows {
        let (old, org) = (get_str(r, "domain"), get_i64(r, "organization_id"));
        let Some(normal) = normalise_domain(&old) else {
            conflict(tx, T, &old, None, org, None, now).await?;
            t.add(T, "kept, invalid");
            continue;
        };
        if normal == old {
            continue;
        }
        match super::lookup::domain_owner(tx, &normal).await? {
            None => {
                sqlx::query("UPDATE organization_domains SET domain = $1 WHERE domain = $2")
                    .bind(&normal)
                    .bind(&old)
                    .execute(&mut **tx)
                    .await?;
                t.add(T, "rewritten");
            }
            Some(o) if o == org => {
                sqlx::query("DELETE FROM organization_domains WHERE domain = $1")
                    .bind(&old)
                    .execute(&mut **tx)
                    .await?;
                t.add(T, "duplicates dropped");
            }
            Some(o) => {
                conflict(tx, T, &old, Some(&normal), org, Some(o), now).await?;
                t.add(T, "kept, normal form held by another organization");
            }
        }
    }
    Ok(())
}

/// Ticket participants: per ticket, one row per address.
async fn participants(tx: &mut Tx, t: &mut Tally) -> Result<(), StoreError> {
    const T: &str = "ticket_participants";
    let rows = sqlx::query(
        "SELECT ticket_id, address FROM ticket_participants ORDER BY ticket_id, address",
    )
    .fetch_all(&mut **tx)
    .await?;
    for r in &rows {
        let (ticket, old) = (get_i64(r, "ticket_id"), get_str(r, "address"));
        let Some(normal) = changed(&old) else {
            continue;
        };
        sqlx::query(
            "INSERT INTO ticket_participants (ticket_id, address) VALUES ($1, $2) ON CONFLICT (ticket_id, address) DO NOTHING",
        )
        .bind(ticket)
        .bind(&normal)
        .execute(&mut **tx)
        .await?;
        sqlx::query("DELETE FROM ticket_participants WHERE ticket_id = $1 AND address = $2")
            .bind(ticket)
            .bind(&old)
            .execute(&mut **tx)
            .await?;
        t.add(T, "rewritten");
    }
    Ok(())
}

/// Undeliverable addresses: two spellings of one address keep the later
/// expiry.
async fn undeliverable(tx: &mut Tx, t: &mut Tally) -> Result<(), StoreError> {
    const T: &str = "undeliverable";
    let rows = sqlx::query("SELECT address, until_at, reason FROM undeliverable ORDER BY address")
        .fetch_all(&mut **tx)
        .await?;
    for r in &rows {
        let old = get_str(r, "address");
        let Some(normal) = changed(&old) else {
            continue;
        };
        sqlx::query(
            "INSERT INTO undeliverable (address, until_at, reason) VALUES ($1, $2, $3) ON CONFLICT (address) DO UPDATE \
             SET until_at = excluded.until_at, reason = excluded.reason WHERE undeliverable.until_at < excluded.until_at",
        )
        .bind(&normal)
        .bind(get_i64(r, "until_at"))
        .bind(get_str(r, "reason"))
        .execute(&mut **tx)
        .await?;
        sqlx::query("DELETE FROM undeliverable WHERE address = $1")
            .bind(&old)
            .execute(&mut **tx)
            .await?;
        t.add(T, "rewritten");
    }
    Ok(())
}

/// The outbox's recipients, compared by the rate limit and the
/// undeliverable brake.
async fn recipients(tx: &mut Tx, t: &mut Tally) -> Result<(), StoreError> {
    let rows = sqlx::query("SELECT DISTINCT to_addr FROM outbox")
        .fetch_all(&mut **tx)
        .await?;
    for r in &rows {
        let old = get_str(r, "to_addr");
        let Some(normal) = changed(&old) else {
            continue;
        };
        sqlx::query("UPDATE outbox SET to_addr = $1 WHERE to_addr = $2")
            .bind(&normal)
            .bind(&old)
            .execute(&mut **tx)
            .await?;
        t.add("outbox", "recipients rewritten");
    }
    Ok(())
}

/// The normal form of an address when it differs from `old` (None when it
/// is already normal, or no longer parses: such a row matches nobody).
fn changed(old: &str) -> Option<String> {
    EmailAddress::parse(old)
        .ok()
        .map(|e| e.as_str().to_string())
        .filter(|n| n != old)
}
