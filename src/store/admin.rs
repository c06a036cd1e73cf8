//! Operator actions: merge users, give domains to organizations, change a
//! ticket's visibility and status.

use super::{get_i64, get_opt_i64, get_str, now_ms, Store, StoreError};
use crate::identity::{ContactPoint, RegistrableDomain};
use crate::model::TicketStatus;
use serde::Serialize;
use sqlx::any::Any;
use sqlx::Transaction;

/// A user with its contact points.
#[derive(Debug, Clone, Serialize)]
pub struct UserView {
    pub id: i64,
    pub name: String,
    pub organization_id: Option<i64>,
    pub merged_into: Option<i64>,
    pub identities: Vec<IdentityView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IdentityView {
    pub kind: String,
    pub value: String,
}

impl Store {
    /// Load a user and its contact points.
    pub async fn user(&self, id: i64) -> Result<UserView, StoreError> {
        let r =
            sqlx::query("SELECT id, name, organization_id, merged_into FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| StoreError::not_found(format!("user {id}")))?;
        let ids = sqlx::query("SELECT kind, value FROM identities WHERE user_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        Ok(UserView {
            id,
            name: get_str(&r, "name"),
            organization_id: get_opt_i64(&r, "organization_id"),
            merged_into: get_opt_i64(&r, "merged_into"),
            identities: ids
                .iter()
                .map(|r| IdentityView {
                    kind: get_str(r, "kind"),
                    value: get_str(r, "value"),
                })
                .collect(),
        })
    }

    /// The user holding a contact point.
    pub async fn user_by_contact(&self, c: &ContactPoint) -> Result<Option<UserView>, StoreError> {
        let r = sqlx::query("SELECT user_id FROM identities WHERE kind = $1 AND value = $2")
            .bind(c.kind().as_str())
            .bind(c.value())
            .fetch_optional(&self.pool)
            .await?;
        match r {
            Some(r) => Ok(Some(self.user(get_i64(&r, "user_id")).await?)),
            None => Ok(None),
        }
    }

    /// Merge `loser` into `winner`: contact points, tickets and comments move;
    /// the loser records `merged_into`. Returns the winner.
    pub async fn merge_users(&self, loser: i64, winner: i64) -> Result<UserView, StoreError> {
        self.observed(async {
        if loser == winner {
            return Err(StoreError::invalid(
                "cannot merge a user into itself",
            ));
        }
        let mut tx = self.begin().await?;
        for id in [loser, winner] {
            let r = sqlx::query("SELECT merged_into FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::not_found(format!("user {id}")))?;
            if let Some(m) = get_opt_i64(&r, "merged_into") {
                return Err(StoreError::conflict(format!(
                    "user {id} was already merged into user {m}"
                )));
            }
        }
        let now = now_ms();
        for sql in [
            "UPDATE identities SET user_id = $1 WHERE user_id = $2",
            "UPDATE tickets SET requester_id = $1 WHERE requester_id = $2",
            "UPDATE comments SET author_id = $1 WHERE author_id = $2",
            "UPDATE users SET merged_into = $1 WHERE id = $2",
        ] {
            sqlx::query(sql)
                .bind(winner)
                .bind(loser)
                .execute(&mut *tx)
                .await?;
        }
        // The winner inherits the loser's organization when it has none.
        sqlx::query(
            "UPDATE users SET organization_id = (SELECT organization_id FROM users WHERE id = $2) WHERE id = $1 AND organization_id IS NULL",
        )
        .bind(winner)
        .bind(loser)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO ticket_events (ticket_id, kind, comment_id, detail, created_at) SELECT id, 'requester_merged', NULL, $1, $2 FROM tickets WHERE requester_id = $3")
            .bind(format!("user {loser} merged into user {winner}"))
            .bind(now)
            .bind(winner)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(loser, winner, "users merged");
        self.user(winner).await
        })
        .await
    }

    /// Create an organization owning `domains` (each claimed as by
    /// [`Store::add_domain`]).
    pub async fn create_organization(
        &self,
        name: &str,
        domains: &[String],
    ) -> Result<i64, StoreError> {
        self.observed(async {
            let domains = normalise_domains(domains)?;
            let mut tx = self.begin().await?;
            let id =
                super::lookup::create_organization(&mut tx.tx, name, &[], false, now_ms()).await?;
            for d in &domains {
                claim_domain_tx(&mut tx.tx, id, d).await?;
            }
            tx.commit().await?;
            Ok(id)
        })
        .await
    }

    /// Give `domain` to organization `org`: users of that domain without an
    /// organization join it. A domain held by an organization that was
    /// created automatically for it (and owns nothing else) moves, with its
    /// users; one held by any other organization is a conflict. Returns how
    /// many users moved.
    pub async fn add_domain(&self, org: i64, domain: &str) -> Result<u64, StoreError> {
        self.observed(async {
            let d = normalise_domains(&[domain.to_string()])?.remove(0);
            let mut tx = self.begin().await?;
            sqlx::query("SELECT id FROM organizations WHERE id = $1")
                .bind(org)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::not_found(format!("organization {org}")))?;
            let moved = claim_domain_tx(&mut tx.tx, org, &d).await?;
            tx.commit().await?;
            tracing::info!(org, domain = %d, moved, "domain added to organization");
            Ok(moved)
        })
        .await
    }

    /// Make a ticket public or private. Publishing records `ticket_published`
    /// (whoever publishes may plan the notifications it fires through
    /// [`super::WriteTx::set_ticket_public`]); a public ticket may become
    /// private only while it has exactly one public comment.
    pub async fn set_ticket_public(&self, id: i64, public: bool) -> Result<(), StoreError> {
        self.observed(async {
            let mut tx = self.begin().await?;
            tx.set_ticket_public(id, public).await?;
            tx.commit().await
        })
        .await
    }

    /// Change a ticket's status.
    pub async fn set_ticket_status(&self, id: i64, status: &str) -> Result<(), StoreError> {
        self.observed(async {
        if TicketStatus::parse(status).is_none() {
            return Err(StoreError::invalid(format!(
                "unknown status {status:?}: use one of {}",
                TicketStatus::names()
            )));
        }
        let mut tx = self.begin().await?;
        let now = now_ms();
        let n = sqlx::query("UPDATE tickets SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(status)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::not_found(format!("ticket {id}")));
        }
        sqlx::query("INSERT INTO ticket_events (ticket_id, kind, comment_id, detail, created_at) VALUES ($1, 'status_changed', NULL, $2, $3)")
            .bind(id)
            .bind(status)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
        })
        .await
    }
}

fn normalise_domains(domains: &[String]) -> Result<Vec<String>, StoreError> {
    domains
        .iter()
        .map(|d| {
            RegistrableDomain::of(d)
                .map(|r| r.as_str().to_string())
                .ok_or_else(|| StoreError::invalid(format!("{d:?} is not a registrable domain")))
        })
        .collect()
}

async fn claim_domain_tx(
    tx: &mut Transaction<'_, Any>,
    org: i64,
    d: &str,
) -> Result<u64, StoreError> {
    let mut moved = 0;
    match super::lookup::domain_owner(tx, d).await? {
        None => {
            sqlx::query(
                "INSERT INTO organization_domains (domain, organization_id) VALUES ($1, $2)",
            )
            .bind(d)
            .bind(org)
            .execute(&mut **tx)
            .await?;
        }
        Some(o) if o == org => {}
        Some(other) => {
            let r = sqlx::query(
                "SELECT o.auto_created, (SELECT COUNT(*) FROM organization_domains WHERE organization_id = o.id) AS n \
                 FROM organizations o WHERE o.id = $1",
            )
            .bind(other)
            .fetch_one(&mut **tx)
            .await?;
            if get_i64(&r, "auto_created") == 0 || get_i64(&r, "n") != 1 {
                return Err(StoreError::conflict(format!(
                    "domain {d} already belongs to organization {other}"
                )));
            }
            sqlx::query("UPDATE organization_domains SET organization_id = $1 WHERE domain = $2")
                .bind(org)
                .bind(d)
                .execute(&mut **tx)
                .await?;
            moved = sqlx::query("UPDATE users SET organization_id = $1 WHERE organization_id = $2")
                .bind(org)
                .bind(other)
                .execute(&mut **tx)
                .await?
                .rows_affected();
        }
    }
    Ok(moved
        + sqlx::query(
            "UPDATE users SET organization_id = $1 WHERE organization_id IS NULL AND merged_into IS NULL \
             AND id IN (SELECT user_id FROM identities WHERE kind = 'email' AND domain = $2)",
        )
        .bind(org)
        .bind(d)
        .execute(&mut **tx)
        .await?
        .rows_affected())
}

/// [`Store::set_ticket_public`] inside the caller's transaction; returns
/// the `ticket_published` event when publishing.
pub(super) async fn set_ticket_public_tx(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: i64,
    public: bool,
) -> Result<Option<i64>, StoreError> {
    let r = sqlx::query("SELECT public FROM tickets WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("ticket {id}")))?;
    let was = get_i64(&r, "public") != 0;
    if was == public {
        return Ok(None);
    }
    if !public {
        let n: i64 = get_i64(
            &sqlx::query("SELECT COUNT(*) AS n FROM comments WHERE ticket_id = $1 AND public = 1")
                .bind(id)
                .fetch_one(&mut **tx)
                .await?,
            "n",
        );
        if n != 1 {
            return Err(StoreError::conflict(format!(
                "ticket {id} has {n} public comments: it can be made private only while it has exactly one"
            )));
        }
        sqlx::query("UPDATE comments SET public = 0 WHERE ticket_id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
        // A private ticket notifies nobody: nothing queued may still go out.
        sqlx::query(
            "UPDATE outbox SET status = 'suppressed', last_error = 'ticket made private before sending' \
             WHERE ticket_id = $1 AND status = 'pending'",
        )
        .bind(id)
        .execute(&mut **tx)
        .await?;
    } else {
        // Publishing makes the requester's own comments visible again;
        // flagged notes from strangers stay internal.
        sqlx::query("UPDATE comments SET public = 1 WHERE ticket_id = $1 AND flag IS NULL AND author_id = (SELECT requester_id FROM tickets WHERE id = $1)")
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    let now = now_ms();
    sqlx::query("UPDATE tickets SET public = $1, updated_at = $2 WHERE id = $3")
        .bind(public as i64)
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    let kind = if public {
        "ticket_published"
    } else {
        "ticket_made_private"
    };
    let event = sqlx::query("INSERT INTO ticket_events (ticket_id, kind, comment_id, detail, created_at) VALUES ($1, $2, NULL, '', $3) RETURNING id")
        .bind(id)
        .bind(kind)
        .bind(now)
        .fetch_one(&mut **tx)
        .await?;
    Ok(public.then(|| get_i64(&event, "id")))
}
