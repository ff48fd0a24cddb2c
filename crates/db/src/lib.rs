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
pub use pool::{DbPool, PoolError, PoolSettings, build_pool};

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

/// True when the error means Postgres could not be reached or the connection broke,
/// as opposed to a problem with the query or the data.
pub fn is_unavailable(err: &QueryError) -> bool {
    matches!(
        err,
        QueryError::DatabaseError(DatabaseErrorKind::ClosedConnection, _)
            | QueryError::BrokenTransactionManager
    ) || matches!(err, QueryError::DatabaseError(DatabaseErrorKind::Unknown, info)
        if info.message().contains("connection") || info.message().contains("timeout"))
}
