//! Group commit for gateway contacts: concurrent webhook requests are queued
//! and written together, claims, contacts and idempotent answers each in
//! one statement or transaction per batch, so one database commit
//! acknowledges many requests. Each request is answered only after the
//! commit that holds it. A failed batch is retried item by item, so one bad
//! contact cannot fail its neighbours.

use super::problem::Problem;
use crate::model::{Contact, Inbound, OutcomeKind};
use crate::pipeline::Pipeline;
use crate::store::{Answered, Backend, StoreError};
use axum::http::StatusCode;
use serde_json::json;
use std::sync::{Arc, OnceLock};
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, oneshot, Mutex};

/// Most contacts committed in one transaction.
const MAX_BATCH: usize = 256;

/// The idempotency part of a job.
#[derive(Debug, Clone)]
pub struct Idem {
    pub key: String,
    pub sha: String,
    /// Already owned (a taken-over claim): skip claiming.
    pub claimed: bool,
}

/// What the batch did with a job.
#[derive(Debug)]
pub enum Reply {
    /// Stored (or found stored): status and JSON body.
    Stored(u16, String),
    /// Another request owns the key (answered, in flight or with another
    /// body): the caller waits for its answer.
    NotOwned,
}

struct Job {
    contact: Contact,
    idem: Option<Idem>,
    reply: oneshot::Sender<Result<Reply, Problem>>,
}

/// Queue plus workers, started on first use.
#[derive(Default)]
pub struct Batcher {
    tx: OnceLock<mpsc::Sender<Job>>,
}

impl Batcher {
    /// Queue a contact and wait for its committed result.
    pub async fn submit(
        &self,
        p: &Pipeline,
        contact: Contact,
        idem: Option<Idem>,
    ) -> Result<Reply, Problem> {
        let tx = self.tx.get_or_init(|| start(p.clone()));
        let (reply, rx) = oneshot::channel();
        let gone = || Problem::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down: retry");
        tx.send(Job {
            contact,
            idem,
            reply,
        })
        .await
        .map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }
}

fn start(p: Pipeline) -> mpsc::Sender<Job> {
    let (tx, rx) = mpsc::channel::<Job>(4096);
    let rx = Arc::new(Mutex::new(rx));
    // Renews the idempotency claims of requests in flight.
    let store = p.store.clone();
    tokio::spawn(async move { store.webhook_heartbeat().await });
    // SQLite has one writer; PostgreSQL gains from a few concurrent batches.
    let workers = if p.store.backend() == Backend::Sqlite {
        1
    } else {
        4
    };
    for _ in 0..workers {
        let (rx, p) = (rx.clone(), p.clone());
        tokio::spawn(async move {
            // Answers of the last batch's keys, recorded with the next
            // batch's claims (one commit fewer per batch) or when idle.
            let mut carry: Vec<Answered> = Vec::new();
            loop {
                let mut jobs = Vec::new();
                {
                    let mut rx = if carry.is_empty() {
                        rx.lock().await
                    } else {
                        match rx.try_lock() {
                            Ok(rx) => rx,
                            Err(_) => {
                                flush(&p, &mut carry).await;
                                continue;
                            }
                        }
                    };
                    let first = if carry.is_empty() {
                        rx.recv().await
                    } else {
                        match rx.try_recv() {
                            Ok(j) => Some(j),
                            Err(TryRecvError::Empty) => {
                                drop(rx);
                                flush(&p, &mut carry).await;
                                continue;
                            }
                            Err(TryRecvError::Disconnected) => None,
                        }
                    };
                    let Some(first) = first else {
                        flush(&p, &mut carry).await;
                        return;
                    };
                    jobs.push(first);
                    while jobs.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(j) => jobs.push(j),
                            Err(_) => break,
                        }
                    }
                }
                run_batch(&p, jobs, &mut carry).await;
            }
        });
    }
    tx
}

/// Record carried answers now (the queue is idle).
async fn flush(p: &Pipeline, carry: &mut Vec<Answered>) {
    match p.store.webhook_record(carry, &[]).await {
        Ok(_) => carry.clear(),
        Err(e) => {
            tracing::error!(error = %e, "cannot record idempotent answers; retries will rebuild them");
            carry.clear();
        }
    }
}

async fn run_batch(p: &Pipeline, jobs: Vec<Job>, carry: &mut Vec<Answered>) {
    // 1. Record the previous batch's answers and claim this batch's keys.
    let wanted: Vec<(usize, (&str, &str, &str))> = jobs
        .iter()
        .enumerate()
        .filter_map(|(i, j)| {
            j.idem.as_ref().filter(|d| !d.claimed).map(|d| {
                (
                    i,
                    (j.contact.source.as_str(), d.key.as_str(), d.sha.as_str()),
                )
            })
        })
        .collect();
    let rows: Vec<_> = wanted.iter().map(|(_, r)| *r).collect();
    let owned = match p.store.webhook_record(carry, &rows).await {
        Ok(o) => o,
        Err(e) => {
            let pr = Problem::from(e);
            for j in jobs {
                let _ = j.reply.send(Err(pr.clone()));
            }
            return;
        }
    };
    carry.clear();
    let mut skip = vec![false; jobs.len()];
    for ((i, _), own) in wanted.iter().zip(owned) {
        skip[*i] = !own;
    }
    // 2. Store the contacts this batch owns, in one transaction.
    let run: Vec<usize> = (0..jobs.len()).filter(|i| !skip[*i]).collect();
    let contacts: Vec<Contact> = run.iter().map(|i| jobs[*i].contact.clone()).collect();
    let results = ingest_all(p, contacts).await;
    // 3. Carry the answers of owned keys; release the keys of failures.
    for (i, r) in run.iter().zip(&results) {
        let Some(d) = &jobs[*i].idem else { continue };
        let source = &jobs[*i].contact.source;
        match r {
            Ok((status, body)) => carry.push(Answered {
                source: source.clone(),
                key: d.key.clone(),
                status: *status,
                response: body.clone(),
            }),
            Err(_) => {
                if let Err(e) = p.store.webhook_release(source, &d.key).await {
                    tracing::error!(error = %e, "cannot release an idempotency claim; its retry takes it over");
                }
            }
        }
    }
    // 4. Answer: the contacts are committed.
    let mut results: Vec<Option<Result<(u16, String), Problem>>> =
        results.into_iter().map(Some).collect();
    let mut slot = vec![None; jobs.len()];
    for (k, i) in run.iter().enumerate() {
        slot[*i] = Some(k);
    }
    for (i, j) in jobs.into_iter().enumerate() {
        let r = match slot[i] {
            Some(k) => results[k]
                .take()
                .unwrap_or_else(|| {
                    Err(Problem::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "lost result",
                    ))
                })
                .map(|(s, b)| Reply::Stored(s, b)),
            // Another request owns the key: the handler waits for its answer.
            None => Ok(Reply::NotOwned),
        };
        let _ = j.reply.send(r);
    }
}

/// Ingest contacts in one transaction; when that fails, one by one.
async fn ingest_all(p: &Pipeline, contacts: Vec<Contact>) -> Vec<Result<(u16, String), Problem>> {
    if contacts.is_empty() {
        return vec![];
    }
    let n = contacts.len();
    let items: Vec<Inbound> = contacts.iter().cloned().map(Inbound::Contact).collect();
    match p.ingest(items, None).await {
        Ok(outs) if outs.len() == n => {
            for (c, o) in contacts.iter().zip(&outs) {
                crate::metrics::record_outcomes(&c.source, std::slice::from_ref(o));
            }
            let mut res = Vec::with_capacity(n);
            for o in outs {
                res.push(answer(p, o).await);
            }
            res
        }
        Ok(_) => vec![
            Err(Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the pipeline lost an outcome"
            ));
            n
        ],
        // A storage fault fails every contact alike: answer 503 at once.
        Err(e) if n == 1 || e.is_transient() => vec![Err(Problem::from(e)); n],
        Err(e) => {
            tracing::warn!(error = %e, n, "contact batch failed; storing one by one");
            let mut res = Vec::with_capacity(n);
            for c in contacts {
                let source = c.source.clone();
                let r: Result<_, StoreError> = p.ingest(vec![Inbound::Contact(c)], None).await;
                res.push(match r {
                    Ok(mut o) if !o.is_empty() => {
                        crate::metrics::record_outcomes(&source, &o[..1]);
                        answer(p, o.remove(0)).await
                    }
                    Ok(_) => Err(Problem::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "the pipeline returned no outcome",
                    )),
                    Err(e) => Err(Problem::from(e)),
                });
            }
            res
        }
    }
}

/// The answer for one outcome: `201`/`200` with ids; a duplicate (a retry
/// whose record was lost) is rebuilt from the stored comment.
async fn answer(p: &Pipeline, out: crate::model::Outcome) -> Result<(u16, String), Problem> {
    let (user_id, created) = match out.outcome {
        OutcomeKind::Created => (out.user_id, true),
        OutcomeKind::Appended => (out.user_id, false),
        OutcomeKind::Duplicate => {
            let (u, c) = p
                .store
                .comment_origin(out.comment_id.unwrap_or_default())
                .await?;
            (Some(u), c)
        }
        // Kept raw with its reason (e.g. its only contact point is one of
        // the desk's own addresses): the request itself cannot be stored.
        // Contacts are never held for review (only mail is judged), but
        // were one, it is not stored either.
        OutcomeKind::Quarantined | OutcomeKind::Review | OutcomeKind::Kept => {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("contact quarantined: {}", out.reason.unwrap_or_default()),
            ))
        }
    };
    let body = json!({"ticket_id": out.ticket_id, "user_id": user_id, "comment_id": out.comment_id, "created": created});
    Ok((if created { 201 } else { 200 }, body.to_string()))
}
