//! A release whose code is ahead of the database's schema (the migration Job has not
//! run yet): the worker applies nothing, says why on `/readyz`, and loses nothing.

use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use test_support::{TestBroker, TestDatabase};

use crate::helpers::{
    client, event, inbox_count, insert_meeting, publish, settings, spawn_worker, test_publisher,
    wait_until,
};

async fn readyz(port: u16) -> (u16, Value) {
    let res = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .expect("readyz");
    (res.status().as_u16(), res.json().await.expect("json"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_ahead_of_the_schema_waits_for_the_migration_and_loses_nothing() {
    let db = TestDatabase::new().await;
    let broker = TestBroker::new().await;
    insert_meeting(&db, "7001").await;
    let latest = db::migrate::embedded_versions()
        .last()
        .cloned()
        .expect("a migration");
    // The migration Job has not applied the latest migration yet.
    db.execute(&format!(
        "DELETE FROM __diesel_schema_migrations WHERE version = '{latest}'"
    ))
    .await;
    let worker = spawn_worker(settings(&db.url, &broker)).await;
    let (publisher, _stop) = test_publisher(&broker).await;
    let joined = event(
        "e-release-1",
        "room.client.joined",
        Utc::now(),
        client("7001", "p-ada", "host", 1, json!({"host": 1})),
    );
    publish(&publisher, &broker.topology, &joined).await;

    let port = worker.port;
    let latest = &latest;
    wait_until(Duration::from_secs(10), || async move {
        let (code, body) = readyz(port).await;
        code == 503
            && body["checks"]["schema"]
                .as_str()
                .is_some_and(|s| s.starts_with("down") && s.contains(latest.as_str()))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        inbox_count(&db).await,
        0,
        "nothing applied to an older schema"
    );

    // The Job runs: the worker starts consuming, and the event waiting in the
    // queue is applied.
    db.execute(&format!(
        "INSERT INTO __diesel_schema_migrations (version) VALUES ('{latest}')"
    ))
    .await;
    wait_until(Duration::from_secs(15), || async {
        inbox_count(&db).await == 1
    })
    .await;
    wait_until(Duration::from_secs(10), || async move {
        readyz(port).await.0 == 200
    })
    .await;
    assert_eq!(readyz(port).await.1["checks"]["schema"], "up");
    worker.stop().await;
}
