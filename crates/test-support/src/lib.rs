//! Test-only: a fresh Postgres database per test, cloned from a template that is
//! migrated once per migration set (safe across the parallel processes nextest
//! runs), and dropped when the test ends.
//!
//! `TEST_DATABASE_URL` names the server (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). Also: a RabbitMQ topology per test
//! (`broker`) and private server instances for fault tests (`private`).

pub mod aws;
pub mod broker;
pub mod cluster;
pub mod env;
pub mod otlp;
pub mod private;

pub use aws::TestAws;
pub use broker::TestBroker;
pub use cluster::{PrivatePostgresPair, PrivateRabbitCluster};
pub use env::TestEnv;
pub use private::{PrivatePostgres, PrivateRabbit};

use std::{
    collections::hash_map::DefaultHasher,
    hash::{Hash, Hasher},
};

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use tokio::sync::OnceCell;

/// Any stable constant; serialises template creation across test processes.
const TEMPLATE_LOCK_KEY: i64 = 0x5445_5354_4442_0001;

static TEMPLATE: OnceCell<String> = OnceCell::const_new();

pub fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn url_for(database: &str) -> String {
    let server = server_url();
    let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
    format!("{base}/{database}")
}

/// The template's name hashes every migration file, so editing or adding one
/// gives a new template and a stale one is never used.
fn template_name() -> String {
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations"));
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut hasher = DefaultHasher::new();
    // And the migrations compiled into this binary: a test binary older than the
    // files on disk must not build a template under the files' name.
    let embedded =
        diesel::migration::MigrationSource::<diesel::pg::Pg>::migrations(&db::migrate::MIGRATIONS)
            .map(|ms| ms.iter().map(|m| m.name().to_string()).collect::<Vec<_>>())
            .unwrap_or_default();
    embedded.hash(&mut hasher);
    for file in files {
        file.strip_prefix(dir).ok().hash(&mut hasher);
        std::fs::read(&file).ok().hash(&mut hasher);
    }
    format!("whereby_test_tmpl_{:016x}", hasher.finish())
}

async fn admin() -> AsyncPgConnection {
    AsyncPgConnection::establish(&server_url())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot connect to the test Postgres ({}): {e}",
                server_url()
            )
        })
}

async fn exec(conn: &mut AsyncPgConnection, sql: &str) -> Result<usize, diesel::result::Error> {
    diesel::sql_query(sql).execute(conn).await
}

async fn ensure_template() -> String {
    TEMPLATE
        .get_or_init(|| async {
            let name = template_name();
            let mut conn = admin().await;
            exec(
                &mut conn,
                &format!("SELECT pg_advisory_lock({TEMPLATE_LOCK_KEY})"),
            )
            .await
            .expect("template lock");
            let exists = exec(
                &mut conn,
                &format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"),
            )
            .await
            .expect("query pg_database")
                > 0;
            if !exists {
                let building = format!("{name}_building");
                exec(
                    &mut conn,
                    &format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"),
                )
                .await
                .expect("drop stale template");
                exec(&mut conn, &format!("CREATE DATABASE {building}"))
                    .await
                    .expect("create template");
                db::migrate::run_pending(&url_for(&building))
                    .await
                    .expect("migrate template");
                // Renamed only once complete: a crash leaves `_building`, never a
                // half-migrated template.
                exec(
                    &mut conn,
                    &format!("ALTER DATABASE {building} RENAME TO {name}"),
                )
                .await
                .expect("rename template");
            }
            exec(
                &mut conn,
                &format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK_KEY})"),
            )
            .await
            .expect("template unlock");
            name
        })
        .await
        .clone()
}

/// A migrated database of its own; dropped (forcefully) when this value drops.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub async fn new() -> Self {
        let template = ensure_template().await;
        let name = format!("whereby_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = admin().await;
        exec(
            &mut conn,
            &format!("CREATE DATABASE {name} TEMPLATE {template} STRATEGY FILE_COPY"),
        )
        .await
        .expect("create test database");
        Self {
            url: url_for(&name),
            name,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime; do the async work on a thread of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = AsyncPgConnection::establish(&server_url()).await.ok()?;
                exec(
                    &mut conn,
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                )
                .await
                .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

impl TestDatabase {
    /// Runs SQL directly, for tests that must set up a state the API cannot make
    /// (an ended meeting, say) or inspect rows.
    pub async fn execute(&self, sql: &str) -> usize {
        let mut conn = AsyncPgConnection::establish(&self.url)
            .await
            .expect("connect to test database");
        exec(&mut conn, sql).await.expect("test SQL")
    }

    /// Counts the rows a `SELECT ...` returns.
    pub async fn count(&self, select: &str) -> usize {
        self.execute(select).await
    }
}

impl TestDatabase {
    /// A database of its own with no schema at all (for migration tests).
    pub async fn empty() -> Self {
        let name = format!("whereby_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = admin().await;
        exec(&mut conn, &format!("CREATE DATABASE {name}"))
            .await
            .expect("create empty test database");
        Self {
            url: url_for(&name),
            name,
        }
    }
}
