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

/// The versions this build embeds, oldest first. Embedded at compile time, so
/// listing them cannot fail at run time; if it ever did, no version would be known
/// and [`SchemaGate`] would find every database current: hence a panic at start-up
/// rather than an empty list.
pub fn embedded_versions() -> Vec<String> {
    use diesel::migration::MigrationSource;
    MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS)
        .map(|ms| ms.iter().map(|m| m.name().version().to_string()).collect())
        .unwrap_or_else(|e| panic!("the embedded migrations cannot be listed: {e}"))
}

/// Whether the database has every migration this build embeds. A service started
/// with `DATABASE_MIGRATE_ON_START=false` must not take traffic (or events) on a
/// schema older than its code: its `/readyz` names what is pending until the
/// migration Job has run. Once current, the answer is kept (a schema does not go
/// back); a schema *ahead* of the build (a rolled-back release) is current, as
/// migrations only add.
#[derive(Debug)]
pub struct SchemaGate {
    expected: Vec<String>,
    missing: std::sync::Mutex<Option<Vec<String>>>,
}

impl SchemaGate {
    /// Checks the database on each [`SchemaGate::check`] until it is current.
    pub fn new() -> Self {
        Self {
            expected: embedded_versions(),
            missing: std::sync::Mutex::new(None),
        }
    }

    /// Already current: this process applied the migrations itself.
    pub fn current() -> Self {
        Self {
            expected: Vec::new(),
            missing: std::sync::Mutex::new(Some(Vec::new())),
        }
    }

    /// The versions still missing, asking the database unless it was current at
    /// the last check.
    pub async fn check(
        &self,
        conn: &mut AsyncPgConnection,
    ) -> Result<Vec<String>, crate::QueryError> {
        if self.last().is_some_and(|m| m.is_empty()) {
            return Ok(Vec::new());
        }
        #[derive(diesel::QueryableByName)]
        struct Applied {
            #[diesel(sql_type = diesel::sql_types::Text)]
            version: String,
        }
        let applied = match diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
            .load::<Applied>(conn)
            .await
        {
            Ok(rows) => rows.into_iter().map(|r| r.version).collect(),
            // 42P01 undefined_table: a database no migration has touched.
            Err(e) if crate::sqlstate(&e) == Some("42P01") => std::collections::HashSet::new(),
            Err(e) => return Err(e),
        };
        let missing: Vec<String> = self
            .expected
            .iter()
            .filter(|v| !applied.contains(*v))
            .cloned()
            .collect();
        if let Ok(mut last) = self.missing.lock() {
            *last = Some(missing.clone());
        }
        Ok(missing)
    }

    /// `/readyz`'s check: current, or why not. Without a connection (the
    /// database is down, or the caller only reads), what the last check found.
    pub async fn readiness(&self, conn: Option<&mut AsyncPgConnection>) -> Result<(), String> {
        let missing = match conn {
            Some(conn) => self.check(conn).await.ok(),
            None => self.last(),
        };
        match missing {
            Some(missing) if missing.is_empty() => Ok(()),
            Some(missing) => Err(describe_missing(&missing)),
            None => Err("not known yet: the database has not answered".to_owned()),
        }
    }

    /// Returns once the database has every embedded migration, asking from every
    /// `first` up to every 30 s (and saying so in the log every minute); a database
    /// that does not answer is asked again.
    pub async fn wait_until_current(&self, pool: &crate::DbPool, first: std::time::Duration) {
        const SAY_EVERY: std::time::Duration = std::time::Duration::from_secs(60);
        const LONGEST: std::time::Duration = std::time::Duration::from_secs(30);
        let mut said: Option<std::time::Instant> = None;
        let mut every = first;
        loop {
            let missing = match pool.get().await {
                Ok(mut conn) => self.check(&mut conn).await.ok(),
                Err(_) => None,
            };
            match missing {
                Some(m) if m.is_empty() => return,
                Some(m) if said.is_none_or(|at| at.elapsed() >= SAY_EVERY) => {
                    said = Some(std::time::Instant::now());
                    tracing::warn!(
                        pending = ?m,
                        "waiting for the migration Job: the database's schema is older than this build"
                    );
                }
                _ => {}
            }
            tokio::time::sleep(every).await;
            every = (every * 3 / 2).min(LONGEST);
        }
    }

    /// What the last check found: `None` before any check.
    pub fn last(&self) -> Option<Vec<String>> {
        self.missing.lock().ok().and_then(|m| m.clone())
    }
}

impl Default for SchemaGate {
    fn default() -> Self {
        Self::new()
    }
}

/// The words for what a [`SchemaGate`] found.
pub fn describe_missing(missing: &[String]) -> String {
    match missing {
        [] => "current".to_owned(),
        [one] => format!("migration {one} is pending: run the migration Job (whereby-migrate)"),
        [first, .., last] => format!(
            "{} migrations are pending ({first} to {last}): run the migration Job (whereby-migrate)",
            missing.len()
        ),
    }
}
