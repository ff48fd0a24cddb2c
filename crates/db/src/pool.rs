use std::time::Duration;

use diesel_async::{
    AsyncPgConnection,
    pooled_connection::{AsyncDieselConnectionManager, deadpool::Pool},
};

pub type DbPool = Pool<AsyncPgConnection>;
pub type PoolError = diesel_async::pooled_connection::deadpool::PoolError;

#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_size: usize,
    /// How long a caller waits for a free connection before giving up (503).
    pub acquire_timeout: Duration,
    /// How long opening a new connection may take.
    pub connect_timeout: Duration,
    /// What every pooled session is limited to.
    pub session: SessionLimits,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_size: 10,
            acquire_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            session: SessionLimits::default(),
        }
    }
}

/// Bounds set on every pooled session, so that no statement, lock wait or
/// forgotten transaction runs on without end, and a dead peer is noticed in
/// seconds rather than after the kernel's 15 minutes of retransmissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionLimits {
    /// `statement_timeout`: the longest one statement may run.
    pub statement_timeout: Duration,
    /// `lock_timeout`: the longest a statement waits for a lock.
    pub lock_timeout: Duration,
    /// `idle_in_transaction_session_timeout`: a transaction left open and idle this
    /// long is ended by the server (its locks released).
    pub idle_in_transaction_timeout: Duration,
    /// TCP keepalive idle time and `TCP_USER_TIMEOUT`: a connection whose peer
    /// stopped answering fails after about this long.
    pub tcp_timeout: Duration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            statement_timeout: Duration::from_secs(10),
            lock_timeout: Duration::from_secs(5),
            idle_in_transaction_timeout: Duration::from_secs(15),
            tcp_timeout: Duration::from_secs(10),
        }
    }
}

impl SessionLimits {
    /// `url` with the limits as connection parameters, for those it does not set
    /// already (an operator's explicit `options` or keepalive setting wins).
    pub fn apply_to(&self, url: &str) -> String {
        let secs = |d: Duration| d.as_secs().max(1).to_string();
        let ms = |d: Duration| d.as_millis().max(1).to_string();
        let options = format!(
            "-c statement_timeout={} -c lock_timeout={} -c idle_in_transaction_session_timeout={}",
            ms(self.statement_timeout),
            ms(self.lock_timeout),
            ms(self.idle_in_transaction_timeout)
        );
        let params = [
            ("options", options),
            ("keepalives", "1".to_owned()),
            ("keepalives_idle", secs(self.tcp_timeout / 2)),
            ("keepalives_interval", secs(self.tcp_timeout / 4)),
            ("keepalives_retries", "2".to_owned()),
            // tokio-postgres takes this one in seconds (libpq in milliseconds).
            ("tcp_user_timeout", secs(self.tcp_timeout)),
        ];
        let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
        let mut out = url.to_owned();
        for (key, value) in params {
            let present = if is_url {
                url.split_once('?').is_some_and(|(_, query)| {
                    query.split('&').any(|kv| kv.split('=').next() == Some(key))
                })
            } else {
                url.split_whitespace()
                    .any(|kv| kv.split('=').next() == Some(key))
            };
            if present {
                continue;
            }
            if is_url {
                out.push(if out.contains('?') { '&' } else { '?' });
                out.push_str(key);
                out.push('=');
                out.push_str(
                    &value
                        .replace('%', "%25")
                        .replace(' ', "%20")
                        .replace('=', "%3D"),
                );
            } else {
                out.push_str(&format!(
                    " {key}='{}'",
                    value.replace('\\', "\\\\").replace('\'', "\\'")
                ));
            }
        }
        out
    }
}

/// Why a service could not open its database at start-up.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the database pool cannot be built: {0}")]
    Pool(#[from] deadpool::managed::BuildError),
    #[error(transparent)]
    Migrate(#[from] crate::migrate::MigrateError),
}

/// Builds the pool lazily: no connection is opened until the first query, so a
/// service can start (and report itself unready) while Postgres is down.
pub fn build_pool(database_url: &str, settings: &PoolSettings) -> Result<DbPool, OpenError> {
    let url = settings.session.apply_to(database_url);
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(url);
    Pool::builder(manager)
        .max_size(settings.max_size)
        .wait_timeout(Some(settings.acquire_timeout))
        .create_timeout(Some(settings.connect_timeout))
        .recycle_timeout(Some(settings.connect_timeout))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(OpenError::from)
}

/// The pool's connections by state, as `(state, count)` for a gauge: open, idle,
/// and callers waiting for one.
pub fn pool_counts(pool: &DbPool) -> [(&'static str, i64); 3] {
    let status = pool.status();
    let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
    [
        ("size", n(status.size)),
        ("available", n(status.available)),
        ("waiting", n(status.waiting)),
    ]
}

/// What every service does with its database settings at start-up: apply pending
/// migrations when `DATABASE_MIGRATE_ON_START` says so, then build the pool.
pub async fn open(database: &settings::DatabaseSettings) -> Result<DbPool, OpenError> {
    use settings::ExposeSecret;
    let url = database.database_url.expose_secret();
    if database.database_migrate_on_start {
        crate::migrate::run_pending(url).await?;
    }
    let timeout = Duration::from_secs(database.database_timeout_seconds);
    build_pool(
        url,
        &PoolSettings {
            max_size: database.database_pool_size,
            acquire_timeout: timeout,
            connect_timeout: timeout,
            session: SessionLimits {
                statement_timeout: Duration::from_millis(database.database_statement_timeout_ms),
                lock_timeout: Duration::from_millis(database.database_lock_timeout_ms),
                idle_in_transaction_timeout: Duration::from_millis(
                    database.database_idle_in_transaction_timeout_ms,
                ),
                tcp_timeout: Duration::from_secs(database.database_tcp_timeout_seconds),
            },
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_become_connection_parameters_unless_set_already() {
        let limits = SessionLimits::default();
        let url = limits.apply_to("postgres://u@h:5432/db");
        assert!(
            url.starts_with("postgres://u@h:5432/db?options=-c%20statement_timeout%3D10000%20"),
            "{url}"
        );
        assert!(url.ends_with("&tcp_user_timeout=10"), "{url}");
        assert!(url.contains("&keepalives_idle=5"), "{url}");
        let url = limits.apply_to("postgres://u@h/db?sslmode=disable&options=-c%20x%3D1");
        assert!(
            url.contains("sslmode=disable&options=-c%20x%3D1&keepalives=1"),
            "{url}"
        );
        assert_eq!(url.matches("options=").count(), 1);
        let dsn = limits.apply_to("host=h user=u keepalives_idle=30");
        assert!(
            dsn.contains(" options='-c statement_timeout=10000 "),
            "{dsn}"
        );
        assert_eq!(dsn.matches("keepalives_idle").count(), 1);
    }
}
