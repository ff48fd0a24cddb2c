//! The Postgres layer: this crate alone owns the schema (`schema.rs`, generated from
//! `migrations/`). Query functions take a connection so that callers own the
//! transaction boundaries.

pub mod branding;
pub mod events;
pub mod meetings;
pub mod migrate;
pub mod pool;
pub mod privacy;
pub mod recordings;
pub mod rooms;
pub mod schema;

pub use diesel::result::Error as QueryError;
pub use diesel_async::{AsyncConnection, AsyncPgConnection};
pub use pool::{
    DbPool, OpenError, PoolError, PoolSettings, SessionLimits, build_pool, open, pool_counts,
};

use diesel::result::DatabaseErrorKind;
use diesel_async::RunQueryDsl;

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

/// What a database failure means for the caller, decided by SQLSTATE (never by
/// the message text, which the server localises).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The database cannot do it now but will: a broken or closed connection, a
    /// failover's read-only seconds, a deadlock or serialization failure, a lock or
    /// statement timeout, resources exhausted, an administrator's shutdown. Retry
    /// the same work later (a worker holds the delivery; an API answers 503).
    Unavailable,
    /// A lock could not be had within `lock_timeout` (55P03): someone else is
    /// working on the same rows. Transient too, but a caller may say so.
    Busy,
    /// The data or the statement is at fault: retrying cannot help.
    Permanent,
}

/// The SQLSTATE of a server error, when it has one.
pub fn sqlstate(err: &QueryError) -> Option<&str> {
    diesel_async::pg::sqlstate(err)
}

/// Classifies a failure; see [`Failure`].
pub fn classify(err: &QueryError) -> Failure {
    match err {
        QueryError::BrokenTransactionManager => Failure::Unavailable,
        QueryError::RollbackErrorOnCommit { commit_error, .. } => classify(commit_error),
        QueryError::DatabaseError(kind, _) => match (sqlstate(err), kind) {
            (Some(code), _) => classify_sqlstate(code),
            // The kinds diesel maps from constraint SQLSTATEs (class 23).
            (
                None,
                DatabaseErrorKind::UniqueViolation
                | DatabaseErrorKind::ForeignKeyViolation
                | DatabaseErrorKind::NotNullViolation
                | DatabaseErrorKind::CheckViolation
                | DatabaseErrorKind::RestrictViolation
                | DatabaseErrorKind::ExclusionViolation,
            ) => Failure::Permanent,
            // No SQLSTATE otherwise: the server never judged the statement (the
            // connection closed, or the command could not be sent).
            (None, _) => Failure::Unavailable,
        },
        _ => Failure::Permanent,
    }
}

/// Classifies a SQLSTATE (<https://www.postgresql.org/docs/current/errcodes-appendix.html>).
pub fn classify_sqlstate(code: &str) -> Failure {
    let class = code.get(..2).unwrap_or("");
    match (class, code) {
        (_, "55P03") => Failure::Busy,
        // Read-only transaction (a failover's first seconds), idle-in-transaction
        // timeout, query cancelled (statement_timeout), object in use.
        (_, "25006" | "25P03" | "57014" | "55006") => Failure::Unavailable,
        // Connection exception, transaction rollback (serialization failure,
        // deadlock), insufficient resources (disk full, out of memory, too many
        // connections), operator intervention, system error (I/O).
        ("08" | "40" | "53" | "57" | "58", _) => Failure::Unavailable,
        _ => Failure::Permanent,
    }
}

/// True when retrying the same work later can succeed; see [`Failure`].
pub fn is_unavailable(err: &QueryError) -> bool {
    classify(err) != Failure::Permanent
}

/// Text Postgres can store: `text` and `jsonb` refuse NUL (U+0000), which JSON and
/// S3 keys allow. NUL becomes U+FFFD, so the rest of the value is kept and an event
/// carrying it is applied rather than refused for ever.
pub fn storable_text(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\0') {
        std::borrow::Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// [`storable_text`] for every string and key of a JSON value, in place.
pub fn make_storable(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => {
            if let std::borrow::Cow::Owned(clean) = storable_text(s) {
                *s = clean;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(make_storable),
        serde_json::Value::Object(map) => {
            if map.keys().any(|k| k.contains('\0')) {
                let taken = std::mem::take(map);
                *map = taken
                    .into_iter()
                    .map(|(k, v)| (storable_text(&k).into_owned(), v))
                    .collect();
            }
            map.values_mut().for_each(make_storable);
        }
        _ => {}
    }
}

/// A connection taken from the pool.
pub type PooledConnection = diesel_async::pooled_connection::deadpool::Object<AsyncPgConnection>;

/// Runs `job` only if no other process holds the advisory lock `key` (several
/// worker replicas schedule the same jobs; one runs each at a time). `None` means
/// another process had it.
///
/// The lock is a session lock on `conn`, held while `job` runs (which may take
/// minutes of S3 and Whereby calls: a transaction-scoped lock would keep a
/// transaction idle that long). So that a panic, a cancelled future or a failed
/// unlock can never leave it held on a pooled connection (every replica would skip
/// the job from then on), the connection goes back to the pool only after a
/// successful unlock; on any other path it is closed, and closing the session
/// releases the lock.
pub async fn with_advisory_lock<T, F, Fut>(
    conn: PooledConnection,
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
    /// Closes the connection when dropped armed.
    struct Guard(Option<PooledConnection>);
    impl Guard {
        fn conn(&mut self) -> &mut AsyncPgConnection {
            match &mut self.0 {
                Some(conn) => conn,
                None => unreachable!("taken only by release"),
            }
        }
        fn release(mut self) {
            drop(self.0.take());
        }
    }
    impl Drop for Guard {
        fn drop(&mut self) {
            if let Some(conn) = self.0.take() {
                // Detached from the pool and dropped: the session ends.
                drop(diesel_async::pooled_connection::deadpool::Object::take(
                    conn,
                ));
            }
        }
    }
    let mut guard = Guard(Some(conn));
    let got: Locked = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS locked")
        .bind::<diesel::sql_types::BigInt, _>(key)
        .get_result(guard.conn())
        .await?;
    if !got.locked {
        guard.release();
        return Ok(None);
    }
    let result = job().await;
    diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<diesel::sql_types::BigInt, _>(key)
        .execute(guard.conn())
        .await?;
    guard.release();
    Ok(Some(result))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_is_replaced_everywhere_in_a_json_value() {
        let mut v = serde_json::json!({"a\u{0}": ["x\u{0}y", {"n": 1}], "b": "ok"});
        make_storable(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"a\u{FFFD}": ["x\u{FFFD}y", {"n": 1}], "b": "ok"})
        );
        assert!(matches!(
            storable_text("plain"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    fn db(kind: DatabaseErrorKind, message: &str) -> QueryError {
        QueryError::DatabaseError(kind, Box::new(message.to_owned()))
    }

    #[test]
    fn sqlstates_are_classified_by_class() {
        for code in [
            "25006", "40001", "40P01", "53100", "53200", "53300", "57P01", "57P03", "08006",
            "08001", "57014", "25P03", "58030",
        ] {
            assert_eq!(classify_sqlstate(code), Failure::Unavailable, "{code}");
        }
        assert_eq!(classify_sqlstate("55P03"), Failure::Busy);
        for code in [
            "22021", "22P05", "23505", "23503", "23514", "42P01", "42703", "XX000", "",
        ] {
            assert_eq!(classify_sqlstate(code), Failure::Permanent, "{code:?}");
        }
    }

    #[test]
    fn errors_without_a_sqlstate_are_connection_failures() {
        // The one the fault suite found: a pooled connection closed by a restart.
        assert!(is_unavailable(&db(
            DatabaseErrorKind::UnableToSendCommand,
            "connection closed"
        )));
        assert!(is_unavailable(&db(
            DatabaseErrorKind::ClosedConnection,
            "x"
        )));
        assert!(is_unavailable(&QueryError::BrokenTransactionManager));
        assert!(!is_unavailable(&QueryError::NotFound));
        // Text alone decides nothing: a data error's message mentioning a
        // connection is not a connection failure once it has its SQLSTATE.
        assert!(!is_unavailable(&db(
            DatabaseErrorKind::Unknown,
            "22P05: unsupported Unicode escape sequence near connection"
        )));
        assert!(is_unavailable(&db(
            DatabaseErrorKind::Unknown,
            "57P01: terminating connection due to administrator command"
        )));
    }

    #[test]
    fn constraint_kinds_without_a_sqlstate_are_permanent() {
        assert!(!is_unavailable(&db(
            DatabaseErrorKind::UniqueViolation,
            "duplicate key"
        )));
        assert!(!is_unavailable(&db(
            DatabaseErrorKind::CheckViolation,
            "violates check constraint"
        )));
    }
}
