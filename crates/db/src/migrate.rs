//! Embedded migrations, run under a Postgres advisory lock so that several replicas
//! (or a migration Job and a replica) starting at once apply them exactly once.

use diesel_async::{AsyncConnection, AsyncMigrationHarness, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// An arbitrary constant shared by every process that migrates this schema.
const MIGRATION_LOCK_KEY: i64 = 0x5748_4552_4542_5901;

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] diesel::ConnectionError),
    #[error("advisory lock: {0}")]
    Lock(#[source] diesel::result::Error),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("cannot run the migration: {0}")]
    Runtime(String),
}

/// Applies every pending migration and returns the versions applied (empty when
/// the schema was already current). Callable from any tokio runtime: diesel's
/// migration harness blocks, so it runs on a runtime of its own off the caller's
/// threads.
pub async fn run_pending(database_url: &str) -> Result<Vec<String>, MigrateError> {
    let url = database_url.to_owned();
    tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| MigrateError::Runtime(e.to_string()))?
            .block_on(run_pending_here(&url))
    })
    .await
    .map_err(|e| MigrateError::Runtime(e.to_string()))?
}

async fn run_pending_here(database_url: &str) -> Result<Vec<String>, MigrateError> {
    let mut conn = AsyncPgConnection::establish(database_url)
        .await
        .map_err(MigrateError::Connect)?;
    // Session-level lock: held until we unlock or the connection closes, so a crash
    // mid-migration releases it as well.
    diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
        .execute(&mut conn)
        .await
        .map_err(MigrateError::Lock)?;
    // The harness blocks this worker thread (block_in_place) while it migrates.
    let mut harness = AsyncMigrationHarness::new(conn);
    let applied = harness
        .run_pending_migrations(MIGRATIONS)
        .map(|versions| versions.iter().map(ToString::to_string).collect::<Vec<_>>())
        .map_err(|e| MigrateError::Migration(e.to_string()));
    let mut conn = harness.into_inner();
    diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
        .execute(&mut conn)
        .await
        .map_err(MigrateError::Lock)?;
    let applied = applied?;
    if applied.is_empty() {
        tracing::info!("database schema is current");
    } else {
        tracing::info!(versions = ?applied, "applied database migrations");
    }
    Ok(applied)
}

/// Versions of the embedded migrations not yet applied to the database.
pub async fn pending(database_url: &str) -> Result<Vec<String>, MigrateError> {
    let url = database_url.to_owned();
    tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| MigrateError::Runtime(e.to_string()))?
            .block_on(async {
                let conn = AsyncPgConnection::establish(&url)
                    .await
                    .map_err(MigrateError::Connect)?;
                let mut harness = AsyncMigrationHarness::new(conn);
                harness
                    .pending_migrations(MIGRATIONS)
                    .map(|ms| ms.iter().map(|m| m.name().version().to_string()).collect())
                    .map_err(|e| MigrateError::Migration(e.to_string()))
            })
    })
    .await
    .map_err(|e| MigrateError::Runtime(e.to_string()))?
}
