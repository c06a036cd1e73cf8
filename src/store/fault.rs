//! Which database errors are passing faults, and of what kind.
//!
//! A full disk, an I/O error, a lost connection or a database restart are
//! not the message's fault: the work is retried later, never quarantined,
//! and the source is not acknowledged. Contention (locks, serialization
//! failures, deadlocks) is retried in place. Everything else is permanent.

/// What kind of passing fault an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Another writer holds a lock, or the transaction lost a race.
    Contention,
    /// SQLite `SQLITE_FULL`, PostgreSQL `53100 disk_full`.
    DiskFull,
    /// PostgreSQL class 53 other than disk full, SQLite `SQLITE_NOMEM`.
    Resources,
    /// SQLite `SQLITE_IOERR*` and `SQLITE_CANTOPEN`, PostgreSQL class 58.
    Io,
    /// A lost or refused connection, a database shutting down or
    /// restarting, or a connection left in an unusable state.
    Connection,
}

impl Fault {
    /// The `kind` label of `intake_database_errors_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Contention => "contention",
            Fault::DiskFull => "disk_full",
            Fault::Resources => "resources",
            Fault::Io => "io",
            Fault::Connection => "connection",
        }
    }

    /// True for faults of the database itself (not contention): they make
    /// the store unwritable until a write succeeds again.
    pub fn is_outage(self) -> bool {
        self != Fault::Contention
    }
}

/// Classify a sqlx error; `None` for permanent errors.
pub fn classify(e: &sqlx::Error) -> Option<Fault> {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => {
            Some(Fault::Connection)
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
            Some(Fault::Connection)
        }
        // A connection whose transaction state went wrong (a COMMIT or
        // ROLLBACK that failed): the pool discards it on release.
        sqlx::Error::BeginFailed | sqlx::Error::InvalidSavePointStatement => {
            Some(Fault::Connection)
        }
        sqlx::Error::Database(d) => classify_code(&d.code().unwrap_or_default(), d.message()),
        _ => None,
    }
}

/// What PostgreSQL adds to an error beside its message (for a deadlock:
/// which processes waited for which locks), for the log line of a retry.
pub fn detail(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(d) => d
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .and_then(|p| p.detail())
            .map(str::to_string),
        _ => None,
    }
}

impl super::StoreError {
    /// The database's own detail of the error, when it gives one (see
    /// [`detail`]).
    pub fn detail(&self) -> Option<String> {
        match self {
            super::StoreError::Db(e) => detail(e),
            _ => None,
        }
    }
}

/// Classify by error code (SQLite's numeric extended result code, at most
/// four digits, or PostgreSQL's five-character SQLSTATE) and message.
pub fn classify_code(code: &str, message: &str) -> Option<Fault> {
    if code.len() < 5 {
        if let Ok(n) = code.parse::<i64>() {
            return sqlite_code(n);
        }
    }
    let m = message.to_ascii_lowercase();
    if m.contains("database is locked") || m.contains("database table is locked") {
        return Some(Fault::Contention);
    }
    match code {
        // serialization_failure, deadlock_detected, lock_not_available
        "40001" | "40P01" | "55P03" => Some(Fault::Contention),
        "53100" => Some(Fault::DiskFull),
        // admin_shutdown, crash_shutdown, cannot_connect_now
        "57P01" | "57P02" | "57P03" => Some(Fault::Connection),
        c if c.starts_with("53") => Some(Fault::Resources),
        c if c.starts_with("58") => Some(Fault::Io),
        c if c.starts_with("08") => Some(Fault::Connection),
        _ => None,
    }
}

/// SQLite result codes (primary code in the low byte of an extended code).
fn sqlite_code(code: i64) -> Option<Fault> {
    match code {
        // SQLITE_READONLY_RECOVERY, _CANTLOCK, _CANTINIT: the WAL index
        // could not be set up (e.g. no space for the -shm file).
        264 | 520 | 1288 => return Some(Fault::Io),
        _ => {}
    }
    match code & 0xff {
        5 | 6 => Some(Fault::Contention), // SQLITE_BUSY, SQLITE_LOCKED
        7 => Some(Fault::Resources),      // SQLITE_NOMEM
        10 | 14 | 15 => Some(Fault::Io),  // SQLITE_IOERR*, SQLITE_CANTOPEN, SQLITE_PROTOCOL
        13 => Some(Fault::DiskFull),      // SQLITE_FULL
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{classify, classify_code, Fault};

    #[test]
    fn postgres_classes() {
        assert_eq!(
            classify_code("53100", "could not extend file"),
            Some(Fault::DiskFull)
        );
        assert_eq!(
            classify_code("53200", "out of memory"),
            Some(Fault::Resources)
        );
        assert_eq!(
            classify_code("53300", "too many connections"),
            Some(Fault::Resources)
        );
        assert_eq!(classify_code("58030", "could not write"), Some(Fault::Io));
        assert_eq!(classify_code("58000", "system error"), Some(Fault::Io));
        assert_eq!(
            classify_code("08006", "connection failure"),
            Some(Fault::Connection)
        );
        assert_eq!(classify_code("08001", ""), Some(Fault::Connection));
        for c in ["57P01", "57P02", "57P03"] {
            assert_eq!(
                classify_code(c, "terminating connection"),
                Some(Fault::Connection)
            );
        }
        assert_eq!(classify_code("40001", ""), Some(Fault::Contention));
        assert_eq!(
            classify_code("40P01", "deadlock detected"),
            Some(Fault::Contention)
        );
        // Refusals of the data itself stay permanent.
        for c in ["23505", "22021", "23503", "22P05", "42P01", "57014"] {
            assert_eq!(classify_code(c, "refused"), None, "{c}");
        }
    }

    #[test]
    fn sqlite_codes() {
        assert_eq!(
            classify_code("13", "database or disk is full"),
            Some(Fault::DiskFull)
        );
        assert_eq!(classify_code("10", "disk I/O error"), Some(Fault::Io));
        assert_eq!(classify_code("778", "disk I/O error"), Some(Fault::Io)); // IOERR_WRITE
        assert_eq!(classify_code("1034", "disk I/O error"), Some(Fault::Io)); // IOERR_FSYNC
        assert_eq!(classify_code("4874", "disk I/O error"), Some(Fault::Io)); // IOERR_SHMSIZE
        assert_eq!(
            classify_code("14", "unable to open database file"),
            Some(Fault::Io)
        );
        assert_eq!(
            classify_code("1288", "attempt to write a readonly database"),
            Some(Fault::Io)
        );
        assert_eq!(
            classify_code("5", "database is locked"),
            Some(Fault::Contention)
        );
        assert_eq!(
            classify_code("517", "database is locked"),
            Some(Fault::Contention)
        ); // BUSY_SNAPSHOT
        assert_eq!(classify_code("7", "out of memory"), Some(Fault::Resources));
        for c in ["19", "2067", "787", "1", "11", "1032"] {
            assert_eq!(classify_code(c, "refused"), None, "{c}");
        }
    }

    #[test]
    fn driver_errors() {
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert_eq!(classify(&io), Some(Fault::Connection));
        assert_eq!(
            classify(&sqlx::Error::PoolTimedOut),
            Some(Fault::Connection)
        );
        assert_eq!(
            classify(&sqlx::Error::InvalidSavePointStatement),
            Some(Fault::Connection)
        );
        assert_eq!(classify(&sqlx::Error::RowNotFound), None);
        assert!(Fault::DiskFull.is_outage() && !Fault::Contention.is_outage());
    }
}
