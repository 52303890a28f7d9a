//! Mapping database failures onto the domain error. Messages never include SQL text or
//! bound values (which may be secrets); constraint details from the engine are dropped.

use assay_core::Error;
use sqlx::error::{DatabaseError, ErrorKind};

/// Any database failure without a more specific meaning at the call site.
pub fn db(e: sqlx::Error) -> Error {
    match e {
        sqlx::Error::Database(d) => database(d.as_ref()),
        sqlx::Error::Io(e) => Error::Unavailable(format!("database connection failed: {e}")),
        sqlx::Error::Tls(_) => Error::Unavailable("database TLS handshake failed".into()),
        sqlx::Error::PoolTimedOut => {
            Error::Unavailable("timed out waiting for a database connection".into())
        }
        sqlx::Error::PoolClosed => Error::Unavailable("the database pool is closed".into()),
        sqlx::Error::WorkerCrashed => {
            Error::Unavailable("the database connection worker stopped".into())
        }
        sqlx::Error::Protocol(m) => Error::Unavailable(format!("database protocol error: {m}")),
        sqlx::Error::Migrate(m) => Error::Internal(format!("database migration failed: {m}")),
        sqlx::Error::Configuration(m) => {
            Error::Internal(format!("database configuration is invalid: {m}"))
        }
        other => Error::Internal(format!("database error: {other}")),
    }
}

/// Like [`db`], but a unique violation becomes `Conflict(message)`.
pub fn unique(message: impl Into<String>) -> impl FnOnce(sqlx::Error) -> Error {
    let message = message.into();
    move |e| match &e {
        sqlx::Error::Database(d) if d.kind() == ErrorKind::UniqueViolation => {
            Error::Conflict(message)
        }
        _ => db(e),
    }
}

fn database(d: &dyn DatabaseError) -> Error {
    let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
    match d.kind() {
        ErrorKind::UniqueViolation => {
            return Error::Conflict("a record with the same identity exists".into());
        }
        ErrorKind::ForeignKeyViolation => {
            return Error::Conflict("a record it refers to does not exist".into());
        }
        _ => {}
    }
    if transient(d, &code) {
        return Error::Unavailable(format!("database unavailable ({code}): {}", d.message()));
    }
    Error::Internal(format!("database error ({code}): {}", d.message()))
}

/// Failures worth retrying later rather than bugs: lost connections, shutdowns,
/// exhaustion, lock timeouts, serialization failures.
fn transient(d: &dyn DatabaseError, code: &str) -> bool {
    if d.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .is_some()
    {
        return code.starts_with("08")     // connection exception
            || code.starts_with("53")     // insufficient resources
            || code.starts_with("57P")    // operator intervention (shutdown)
            || code == "40001"            // serialization failure
            || code == "40P01"            // deadlock detected
            || code == "55P03"; // lock not available
    }
    // SQLite: primary result code is the low byte of the extended code.
    // BUSY 5, LOCKED 6, IOERR 10, FULL 13, CANTOPEN 14.
    code.parse::<i64>()
        .map(|c| matches!(c & 0xff, 5 | 6 | 10 | 13 | 14))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_failures_are_unavailable() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        for e in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::WorkerCrashed,
            sqlx::Error::Io(refused),
        ] {
            assert!(matches!(db(e), Error::Unavailable(_)));
        }
        assert!(matches!(db(sqlx::Error::RowNotFound), Error::Internal(_)));
        assert!(matches!(
            unique("x")(sqlx::Error::PoolTimedOut),
            Error::Unavailable(_)
        ));
    }
}
