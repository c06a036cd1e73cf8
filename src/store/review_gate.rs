//! Before a batch's item is walked: is it already stored, held in the
//! review queue, rejected, or being released? A message is stored, in
//! review, or quarantined, once.

use super::lookup::Known;
use super::StoreError;
use crate::model::{Outcome, OutcomeKind, PreparedMessage, ReviewIn};
use sqlx::any::Any;
use sqlx::Transaction;

type Tx<'a> = Transaction<'a, Any>;

fn duplicate(ticket_id: i64, comment_id: Option<i64>, message_id: &str) -> Outcome {
    let mut o = Outcome::new(OutcomeKind::Duplicate);
    o.ticket_id = Some(ticket_id);
    o.comment_id = comment_id;
    o.message_id = Some(message_id.to_string());
    o
}

/// A mail bound for review: held, unless it was stored before (before trust
/// was configured, or from a copy that passed), which makes it a duplicate.
pub(super) async fn hold(
    tx: &mut Tx<'_>,
    known: &mut Known,
    r: &ReviewIn,
    now: i64,
) -> Result<Outcome, StoreError> {
    let o = match known.message_ids.get(&r.message_id) {
        Some(&(ticket_id, comment_id)) => duplicate(ticket_id, comment_id, &r.message_id),
        None => super::review::insert(tx, r, now).await?,
    };
    if let Some(id) = o.review_id {
        known
            .review
            .entry(r.message_id.clone())
            .or_insert((id, "pending".into()));
    }
    Ok(o)
}

/// What becomes of a message that passed trust.
pub(super) enum Gate {
    /// Nothing to store: the outcome says why.
    Done(Outcome),
    /// Store it; `released_by` (review entry, who) when a release stores it.
    Store { released_by: Option<(i64, String)> },
}

pub(super) async fn gate(
    tx: &mut Tx<'_>,
    known: &mut Known,
    m: &PreparedMessage,
    now: i64,
) -> Result<Gate, StoreError> {
    if let Some(&(ticket_id, comment_id)) = known.message_ids.get(&m.message_id) {
        tracing::info!(message_id = %m.message_id, ticket_id, "duplicate message skipped");
        return Ok(Gate::Done(duplicate(ticket_id, comment_id, &m.message_id)));
    }
    // In the review queue: a copy that passes is still the held mail
    // (pending) or a rejected one; only a release stores it, once.
    let Some((review_id, status)) = known.review.get(&m.message_id).cloned() else {
        return Ok(Gate::Store { released_by: None });
    };
    let by = match status.as_str() {
        "releasing" => super::review::settle_release(tx, review_id, now).await?,
        _ => None,
    };
    if let Some(by) = by {
        known
            .review
            .insert(m.message_id.clone(), (review_id, "released".into()));
        return Ok(Gate::Store {
            released_by: Some((review_id, by)),
        });
    }
    let mut o = Outcome::new(if status == "pending" {
        OutcomeKind::Review
    } else {
        OutcomeKind::Duplicate
    });
    o.review_id = Some(review_id);
    o.message_id = Some(m.message_id.clone());
    tracing::info!(message_id = %m.message_id, review_id, status, "message in the review queue: not stored");
    Ok(Gate::Done(o))
}
