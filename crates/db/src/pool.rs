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
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_size: 10,
            acquire_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Builds the pool lazily: no connection is opened until the first query, so a
/// service can start (and report itself unready) while Postgres is down.
pub fn build_pool(database_url: &str, settings: &PoolSettings) -> Result<DbPool, String> {
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(database_url);
    Pool::builder(manager)
        .max_size(settings.max_size)
        .wait_timeout(Some(settings.acquire_timeout))
        .create_timeout(Some(settings.connect_timeout))
        .recycle_timeout(Some(settings.connect_timeout))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| e.to_string())
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
pub async fn open(database: &settings::DatabaseSettings) -> Result<DbPool, String> {
    use settings::ExposeSecret;
    let url = database.database_url.expose_secret();
    if database.database_migrate_on_start {
        crate::migrate::run_pending(url)
            .await
            .map_err(|e| e.to_string())?;
    }
    let timeout = Duration::from_secs(database.database_timeout_seconds);
    build_pool(
        url,
        &PoolSettings {
            max_size: database.database_pool_size,
            acquire_timeout: timeout,
            connect_timeout: timeout,
        },
    )
}
