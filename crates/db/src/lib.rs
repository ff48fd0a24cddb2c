//! The Postgres layer: this crate alone owns the schema (`schema.rs`, generated from
//! `migrations/`). Query functions take a connection so that callers own the
//! transaction boundaries.

pub mod events;
pub mod meetings;
pub mod migrate;
pub mod pool;
pub mod recordings;
pub mod rooms;
pub mod schema;

pub use diesel::result::Error as QueryError;
pub use diesel_async::{AsyncConnection, AsyncPgConnection};
pub use pool::{DbPool, PoolError, PoolSettings, build_pool, open, pool_counts};

use diesel::result::DatabaseErrorKind;
use diesel_async::RunQueryDsl;

/// Bounds how long statements in the current transaction wait for row locks.
pub async fn set_local_lock_timeout(
    conn: &mut AsyncPgConnection,
    timeout: std::time::Duration,
) -> Result<(), QueryError> {
    diesel::sql_query(format!("SET LOCAL lock_timeout = {}", timeout.as_millis()))
        .execute(conn)
        .await
        .map(drop)
}

/// `SELECT 1`: the readiness probe's check.
pub async fn ping(conn: &mut AsyncPgConnection) -> Result<(), QueryError> {
    diesel::sql_query("SELECT 1").execute(conn).await.map(drop)
}

/// The name of the constraint a unique violation hit, if the error is one.
pub fn unique_violation(err: &QueryError) -> Option<&str> {
    match err {
        QueryError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            Some(info.constraint_name().unwrap_or(""))
        }
        _ => None,
    }
}

/// True when the error means Postgres could not be reached, the connection broke or
/// the server is shutting down or refusing connections for now (retry later), as
/// opposed to a problem with the query or the data (retrying cannot help).
pub fn is_unavailable(err: &QueryError) -> bool {
    match err {
        QueryError::BrokenTransactionManager => true,
        // tokio-postgres errors without an SQLSTATE: closed or broken connections.
        QueryError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => true,
        // SQLSTATE classes 08 (connection exception), 57P (operator intervention:
        // admin or crash shutdown, cannot connect now) and 53 (too many
        // connections) arrive as Unknown; only their text tells them apart.
        QueryError::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let m = info.message().to_ascii_lowercase();
            [
                "connection",
                "shutting down",
                "starting up",
                "terminating",
                "timeout",
                "too many clients",
                "recovery mode",
            ]
            .iter()
            .any(|needle| m.contains(needle))
        }
        _ => false,
    }
}

/// Runs `job` only if no other process holds the advisory lock `key` (several
/// worker replicas schedule the same jobs; one runs each at a time). `None` means
/// another process had it.
pub async fn with_advisory_lock<T, F, Fut>(
    conn: &mut AsyncPgConnection,
    key: i64,
    job: F,
) -> Result<Option<T>, QueryError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    #[derive(diesel::QueryableByName)]
    struct Locked {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        locked: bool,
    }
    let got: Locked = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS locked")
        .bind::<diesel::sql_types::BigInt, _>(key)
        .get_result(conn)
        .await?;
    if !got.locked {
        return Ok(None);
    }
    let result = job().await;
    diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<diesel::sql_types::BigInt, _>(key)
        .execute(conn)
        .await?;
    Ok(Some(result))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(kind: DatabaseErrorKind, message: &str) -> QueryError {
        QueryError::DatabaseError(kind, Box::new(message.to_owned()))
    }

    #[test]
    fn connection_failures_are_unavailable_and_data_errors_are_not() {
        // The one the fault suite found: a pooled connection closed by a restart.
        assert!(is_unavailable(&db(
            DatabaseErrorKind::UnableToSendCommand,
            "connection closed"
        )));
        assert!(is_unavailable(&db(
            DatabaseErrorKind::ClosedConnection,
            "x"
        )));
        assert!(is_unavailable(&db(
            DatabaseErrorKind::Unknown,
            "terminating connection due to administrator command"
        )));
        assert!(is_unavailable(&db(
            DatabaseErrorKind::Unknown,
            "the database system is shutting down"
        )));
        assert!(is_unavailable(&QueryError::BrokenTransactionManager));
        assert!(!is_unavailable(&db(
            DatabaseErrorKind::UniqueViolation,
            "duplicate key"
        )));
        assert!(!is_unavailable(&db(
            DatabaseErrorKind::CheckViolation,
            "violates check constraint"
        )));
        assert!(!is_unavailable(&QueryError::NotFound));
    }
}
