//! SQL helpers shared by the store's modules: bind markers in the form
//! each backend binds fastest, `IN (…)` look-ups over many keys, and typed
//! reads of a row's columns.

use super::StoreError;
use sqlx::any::{Any, AnyRow};
use sqlx::{Row, Transaction};

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

/// `$1, $2, ...` starting after `offset` placeholders.
pub(crate) fn placeholders(offset: usize, n: usize) -> String {
    (offset + 1..=offset + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `n` markers after `offset` others: `?` on SQLite (numbered markers are
/// named parameters there, bound at a cost that grows with the square of
/// their count), `$n` on PostgreSQL.
pub(crate) fn markers(backend: super::Backend, offset: usize, n: usize) -> String {
    match backend {
        super::Backend::Sqlite => vec!["?"; n].join(", "),
        super::Backend::Postgres => placeholders(offset, n),
    }
}

/// `($1,$2,$3), ($4,$5,$6)` for `rows` rows of `cols` columns.
pub(crate) fn value_rows(rows: usize, cols: usize) -> String {
    (0..rows)
        .map(|r| format!("({})", placeholders(r * cols, cols)))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn get_i64(row: &AnyRow, col: &str) -> i64 {
    row.try_get::<i64, _>(col).unwrap_or_default()
}

pub(crate) fn get_opt_i64(row: &AnyRow, col: &str) -> Option<i64> {
    row.try_get::<Option<i64>, _>(col).ok().flatten()
}

pub(crate) fn get_str(row: &AnyRow, col: &str) -> String {
    row.try_get::<String, _>(col).unwrap_or_default()
}

pub(crate) fn get_opt_str(row: &AnyRow, col: &str) -> Option<String> {
    row.try_get::<Option<String>, _>(col).ok().flatten()
}
