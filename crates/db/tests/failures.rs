//! Failures as the real server reports them: classified by SQLSTATE, bounded by
//! the session limits every pooled connection carries, and advisory locks that a
//! panic or a cancelled job cannot leave behind.

use std::time::Duration;

use db::{Failure, PoolSettings, SessionLimits};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use test_support::TestDatabase;

async fn run(conn: &mut AsyncPgConnection, sql: &str) -> Result<usize, db::QueryError> {
    diesel::sql_query(sql).execute(conn).await
}

#[tokio::test]
async fn server_errors_keep_their_sqlstate_and_are_classified_by_it() {
    let db = TestDatabase::new().await;
    let mut conn = AsyncPgConnection::establish(&db.url)
        .await
        .expect("connect");

    // What a managed Postgres answers for a few seconds of a failover.
    run(&mut conn, "SET default_transaction_read_only = on")
        .await
        .expect("set");
    let e = run(
        &mut conn,
        "INSERT INTO rooms (id, name, owner) VALUES (gen_random_uuid(), 'ro', 'a')",
    )
    .await
    .expect_err("read-only");
    assert_eq!(db::sqlstate(&e), Some("25006"));
    assert_eq!(db::classify(&e), Failure::Unavailable);
    run(&mut conn, "SET default_transaction_read_only = off")
        .await
        .expect("set");

    // Text Postgres cannot store: a data error, never retried.
    let e = run(&mut conn, r#"SELECT '{"a":"\u0000"}'::jsonb"#)
        .await
        .expect_err("nul");
    assert_eq!(db::sqlstate(&e), Some("22P05"));
    assert_eq!(db::classify(&e), Failure::Permanent);

    // An undefined table: a bug, not an outage.
    let e = run(&mut conn, "SELECT * FROM no_such_table")
        .await
        .expect_err("42P01");
    assert_eq!(db::classify(&e), Failure::Permanent);

    // A statement cancelled by statement_timeout: retryable.
    run(&mut conn, "SET statement_timeout = 50")
        .await
        .expect("set");
    let e = run(&mut conn, "SELECT pg_sleep(1)")
        .await
        .expect_err("timeout");
    assert_eq!(db::sqlstate(&e), Some("57014"));
    assert_eq!(db::classify(&e), Failure::Unavailable);
}

#[tokio::test]
async fn a_deadlock_and_a_lock_timeout_are_retryable() {
    let db = TestDatabase::new().await;
    TestDatabase::execute(&db, "INSERT INTO rooms (id, name, owner) VALUES ('00000000-0000-0000-0000-000000000001', 'a', 'o'), ('00000000-0000-0000-0000-000000000002', 'b', 'o')").await;
    let mut one = AsyncPgConnection::establish(&db.url)
        .await
        .expect("connect");
    let mut two = AsyncPgConnection::establish(&db.url)
        .await
        .expect("connect");
    run(&mut one, "BEGIN").await.expect("begin");
    run(&mut two, "BEGIN").await.expect("begin");
    run(&mut one, "UPDATE rooms SET owner = 'x' WHERE name = 'a'")
        .await
        .expect("a");
    run(&mut two, "UPDATE rooms SET owner = 'y' WHERE name = 'b'")
        .await
        .expect("b");
    let (r1, r2) = tokio::join!(
        run(&mut one, "UPDATE rooms SET owner = 'x' WHERE name = 'b'"),
        run(&mut two, "UPDATE rooms SET owner = 'y' WHERE name = 'a'"),
    );
    let e = r1
        .err()
        .or(r2.err())
        .expect("one of them is the deadlock victim");
    assert_eq!(db::sqlstate(&e), Some("40P01"));
    assert_eq!(db::classify(&e), Failure::Unavailable);
    let _ = run(&mut one, "ROLLBACK").await;
    let _ = run(&mut two, "ROLLBACK").await;

    run(&mut one, "BEGIN").await.expect("begin");
    run(&mut one, "SELECT 1 FROM rooms WHERE name = 'a' FOR UPDATE")
        .await
        .expect("lock");
    run(&mut two, "SET lock_timeout = 50").await.expect("set");
    let e = run(&mut two, "UPDATE rooms SET owner = 'z' WHERE name = 'a'")
        .await
        .expect_err("lock timeout");
    assert_eq!(db::sqlstate(&e), Some("55P03"));
    assert_eq!(db::classify(&e), Failure::Busy);
    assert!(db::is_unavailable(&e));
}

#[tokio::test]
async fn pooled_sessions_carry_the_limits() {
    let db = TestDatabase::new().await;
    let limits = SessionLimits {
        statement_timeout: Duration::from_millis(1234),
        lock_timeout: Duration::from_millis(567),
        idle_in_transaction_timeout: Duration::from_millis(8901),
        tcp_timeout: Duration::from_secs(10),
    };
    let pool = db::build_pool(
        &db.url,
        &PoolSettings {
            session: limits,
            ..PoolSettings::default()
        },
    )
    .expect("pool");
    let mut conn = pool.get().await.expect("connection");
    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        value: String,
    }
    let mut show = async |name: &str| -> String {
        let rows: Vec<Setting> =
            diesel::sql_query(format!("SELECT current_setting('{name}') AS value"))
                .load(&mut conn)
                .await
                .expect("show");
        rows.into_iter().next().map(|r| r.value).unwrap_or_default()
    };
    assert_eq!(show("statement_timeout").await, "1234ms");
    assert_eq!(show("lock_timeout").await, "567ms");
    assert_eq!(show("idle_in_transaction_session_timeout").await, "8901ms");
    // And the statement timeout is real: a long statement is cancelled.
    let e = run(&mut conn, "SELECT pg_sleep(3)")
        .await
        .expect_err("cancelled");
    assert_eq!(db::classify(&e), Failure::Unavailable);
}

async fn advisory_locks_held(url: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = AsyncPgConnection::establish(url).await.expect("connect");
    let rows: Vec<N> = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242",
    )
    .load(&mut conn)
    .await
    .expect("pg_locks");
    rows.into_iter().next().map_or(0, |r| r.n)
}

#[tokio::test]
async fn a_panicking_or_cancelled_job_never_leaves_its_lock_held() {
    let db = TestDatabase::new().await;
    // One connection: the next job gets the very connection the last one used.
    let pool = db::build_pool(
        &db.url,
        &PoolSettings {
            max_size: 1,
            ..PoolSettings::default()
        },
    )
    .expect("pool");

    // A job that panics.
    let p = pool.clone();
    let panicked = tokio::spawn(async move {
        let conn = p.get().await.expect("conn");
        db::with_advisory_lock(conn, 4242, || async { panic!("job bug") }).await
    })
    .await;
    assert!(panicked.expect_err("the job panicked").is_panic());
    assert_eq!(advisory_locks_held(&db.url).await, 0);

    // A job whose future is dropped midway (shutdown, a timeout around it).
    let conn = pool.get().await.expect("conn");
    let cancelled = tokio::time::timeout(
        Duration::from_millis(200),
        db::with_advisory_lock(conn, 4242, || tokio::time::sleep(Duration::from_secs(30))),
    )
    .await;
    assert!(cancelled.is_err());
    for _ in 0..50 {
        if advisory_locks_held(&db.url).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(advisory_locks_held(&db.url).await, 0);

    // The next run takes the lock (and gives it back).
    let conn = pool.get().await.expect("conn");
    let ran = db::with_advisory_lock(conn, 4242, || async { 7 })
        .await
        .expect("run");
    assert_eq!(ran, Some(7));
    assert_eq!(advisory_locks_held(&db.url).await, 0);

    // While another session holds it, the job is skipped.
    let mut other = AsyncPgConnection::establish(&db.url)
        .await
        .expect("connect");
    run(&mut other, "SELECT pg_advisory_lock(4242)")
        .await
        .expect("lock");
    let conn = pool.get().await.expect("conn");
    let skipped = db::with_advisory_lock(conn, 4242, || async { 7 })
        .await
        .expect("run");
    assert_eq!(skipped, None);
}
