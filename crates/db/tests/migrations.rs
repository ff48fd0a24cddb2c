//! Migrations against a real, empty Postgres database.

use test_support::TestDatabase;

#[tokio::test]
async fn replicas_migrating_at_once_apply_each_migration_exactly_once() {
    let db = TestDatabase::empty().await;
    let runs =
        futures_util::future::join_all((0..4).map(|_| db::migrate::run_pending(&db.url))).await;
    let applied: Vec<Vec<String>> = runs
        .into_iter()
        .map(|r| r.expect("every concurrent run succeeds"))
        .collect();
    let total: usize = applied.iter().map(Vec::len).sum();
    let expected = applied.iter().map(Vec::len).max().unwrap_or(0);
    assert!(expected > 0, "some run applied the migrations");
    assert_eq!(
        total, expected,
        "each migration applied by one run only: {applied:?}"
    );
    assert_eq!(
        db.count("SELECT version FROM __diesel_schema_migrations")
            .await,
        expected
    );
    // Running again is a no-op.
    assert!(
        db::migrate::run_pending(&db.url)
            .await
            .expect("rerun")
            .is_empty()
    );
}

#[tokio::test]
async fn the_schema_enforces_what_must_always_hold() {
    let db = TestDatabase::new().await;
    let insert = |name: &str, extra: &str| {
        format!(
            "INSERT INTO rooms (id, name, owner{}) VALUES (gen_random_uuid(), '{name}', 'alice'{})",
            if extra.is_empty() {
                ""
            } else {
                ", recording_type"
            },
            if extra.is_empty() {
                String::new()
            } else {
                format!(", '{extra}'")
            }
        )
    };
    assert_eq!(db.execute(&insert("good-name", "")).await, 1);
    for (sql, why) in [
        (insert("good-name", ""), "duplicate name"),
        (insert("Bad", ""), "uppercase name"),
        (insert("a--b", ""), "double hyphen"),
        (insert(&"a".repeat(39), ""), "too long"),
        (insert("other", "tape"), "unknown recording type"),
        (
            "INSERT INTO meetings (id, room_id, owner, whereby_meeting_id, room_name, room_url, start_date, end_date, is_locked, room_mode, recording_type, recording_trigger, platform) \
             VALUES (gen_random_uuid(), gen_random_uuid(), 'a', '1', '/x', 'u', now(), now() + interval '1 hour', false, 'normal', 'cloud', 'none', 'whereby')".to_owned(),
            "meeting for a room that does not exist",
        ),
    ] {
        assert!(try_execute(&db.url, &sql).await.is_err(), "accepted: {why}");
    }
}

async fn try_execute(url: &str, sql: &str) -> Result<usize, diesel::result::Error> {
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    let mut conn = AsyncPgConnection::establish(url).await.expect("connect");
    diesel::sql_query(sql).execute(&mut conn).await
}
