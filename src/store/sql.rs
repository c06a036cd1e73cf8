//! SQL helpers shared by the store's modules: bind markers in the form
//! each backend binds fastest, and `IN (…)` look-ups over many keys.

use super::StoreError;
use sqlx::any::{Any, AnyRow};
use sqlx::Transaction;

type Tx<'a> = Transaction<'a, Any>;

/// Bind markers for a transaction's database, numbered in text order:
/// `$1, $2, …` on PostgreSQL, `?` on SQLite, where `$n` are named parameters
/// and preparing and binding N of them costs N² (10 ms for a 140-row insert).
pub(super) struct Marks {
    sqlite: bool,
    n: usize,
}

impl Marks {
    pub(super) fn new(tx: &Tx<'_>) -> Marks {
        Marks {
            sqlite: tx.backend_name().eq_ignore_ascii_case("sqlite"),
            n: 0,
        }
    }

    /// The next marker.
    pub(super) fn next(&mut self) -> String {
        self.n += 1;
        if self.sqlite {
            "?".into()
        } else {
            format!("${}", self.n)
        }
    }

    /// `k` markers separated by commas.
    pub(super) fn list(&mut self, k: usize) -> String {
        (0..k).map(|_| self.next()).collect::<Vec<_>>().join(", ")
    }
}

/// `SELECT … {head} (keys…) {tail}` in chunks of 500 keys.
pub(super) async fn select_in<T>(
    tx: &mut Tx<'_>,
    head: &str,
    tail: &str,
    keys: &[T],
) -> Result<Vec<AnyRow>, StoreError>
where
    T: for<'q> sqlx::Encode<'q, Any> + sqlx::Type<Any> + Clone + Send,
{
    let mut rows = Vec::new();
    for chunk in keys.chunks(500) {
        let sql = format!("{head} ({}) {tail}", Marks::new(tx).list(chunk.len()));
        let mut q = sqlx::query(&sql);
        for k in chunk {
            q = q.bind(k.clone());
        }
        rows.extend(q.fetch_all(&mut **tx).await?);
    }
    Ok(rows)
}

/// `{head} VALUES (a, b{constants}), … {tail}` for `rows` sorted and
/// without duplicates, 500 rows a statement: the batch's link tables
/// (thread references, thread names, participants), written in key order
/// so that concurrent writers take their locks in one order.
pub(super) async fn insert_pairs<A, B>(
    tx: &mut Tx<'_>,
    (head, constants, tail): (&str, &str, &str),
    rows: &[(A, B)],
) -> Result<(), StoreError>
where
    A: for<'q> sqlx::Encode<'q, Any> + sqlx::Type<Any> + Clone + Send + Ord,
    B: for<'q> sqlx::Encode<'q, Any> + sqlx::Type<Any> + Clone + Send + Ord,
{
    let mut rows: Vec<&(A, B)> = rows.iter().collect();
    rows.sort();
    rows.dedup();
    for chunk in rows.chunks(500) {
        let mut marks = Marks::new(tx);
        let values = (0..chunk.len())
            .map(|_| format!("({}, {}{constants})", marks.next(), marks.next()))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("{head} VALUES {values} {tail}");
        let mut q = sqlx::query(&sql);
        for (a, b) in chunk {
            q = q.bind(a.clone()).bind(b.clone());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}
