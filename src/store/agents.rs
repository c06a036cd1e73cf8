//! Agents added at run time (admin API, CLI): users marked `is_agent`,
//! found by an email address. An agent belongs to no customer organization.

use super::{get_i64, get_str, now_ms, Store, StoreError};
use crate::identity::EmailAddress;
use serde::Serialize;
use sqlx::Row;

/// One agent marked in the database.
#[derive(Debug, Clone, Serialize)]
pub struct AgentEntry {
    pub user_id: i64,
    pub name: String,
    pub emails: Vec<String>,
}

impl Store {
    /// Agents marked in the database, by user id.
    pub async fn agents(&self) -> Result<Vec<AgentEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT u.id, u.name, i.value FROM users u LEFT JOIN identities i ON i.user_id = u.id AND i.kind = 'email' \
             WHERE u.is_agent = 1 AND u.merged_into IS NULL ORDER BY u.id, i.id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<AgentEntry> = Vec::new();
        for r in &rows {
            let id = get_i64(r, "id");
            if out.last().is_none_or(|a| a.user_id != id) {
                out.push(AgentEntry {
                    user_id: id,
                    name: get_str(r, "name"),
                    emails: Vec::new(),
                });
            }
            if let Ok(Some(v)) = r.try_get::<Option<String>, _>("value") {
                if let Some(a) = out.last_mut() {
                    a.emails.push(v);
                }
            }
        }
        Ok(out)
    }

    /// Mark the user holding `address` as an agent (creating the user when
    /// nobody holds it), out of any organization; or unmark it.
    pub async fn agent_set(&self, address: &EmailAddress, agent: bool) -> Result<i64, StoreError> {
        self.observed(async {
            let mut tx = self.begin().await?;
            let found = sqlx::query(
                "SELECT i.user_id, u.is_agent FROM identities i JOIN users u ON u.id = i.user_id \
                 WHERE i.kind = 'email' AND i.value = $1",
            )
            .bind(address.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            let user = match (found, agent) {
                (Some(r), true) => get_i64(&r, "user_id"),
                (Some(r), false) if get_i64(&r, "is_agent") != 0 => get_i64(&r, "user_id"),
                (_, false) => {
                    return Err(StoreError::not_found(format!("{address} is not an agent")))
                }
                (None, true) => {
                    let now = now_ms();
                    let id: i64 = sqlx::query(
                        "INSERT INTO users (name, created_at) VALUES ($1, $2) RETURNING id",
                    )
                    .bind(address.as_str())
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get(0)?;
                    sqlx::query(
                        "INSERT INTO identities (user_id, kind, value, domain, created_at) VALUES ($1, 'email', $2, $3, $4)",
                    )
                    .bind(id)
                    .bind(address.as_str())
                    .bind(address.domain())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    id
                }
            };
            let sql = if agent {
                "UPDATE users SET is_agent = 1, organization_id = NULL WHERE id = $1"
            } else {
                "UPDATE users SET is_agent = 0 WHERE id = $1"
            };
            sqlx::query(sql).bind(user).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(user)
        })
        .await
    }
}
