//! The engines production runs, on private instances: a three-node RabbitMQ
//! cluster and a PostgreSQL primary with a streaming standby. A node killed with
//! `kill -9` (the worker queue's leader) leaves a publisher confirming within
//! seconds on the survivors, losing nothing it confirmed; a promoted standby
//! takes writes through the multi-host `DATABASE_URL` while the pool drops the
//! connections to the old primary, which reads as *unavailable*, never as a data
//! error.

use std::time::{Duration, Instant};

use diesel_async::RunQueryDsl;
use messaging::{
    Publisher, Topology, TopologySettings,
    lapin::{BasicProperties, options::QueueDeclareOptions, types::FieldTable},
};
use test_support::{PrivatePostgresPair, PrivateRabbitCluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_node_costs_seconds_of_publishing_and_no_confirmed_message() {
    if std::env::var_os("TEST_LOG").is_some() {
        // The subscriber stays for the process; there is no exporter to flush.
        drop(telemetry::init("test", false, "info"));
    }
    let cluster = tokio::task::spawn_blocking(|| PrivateRabbitCluster::start(3))
        .await
        .expect("cluster");
    assert_eq!(cluster.running_nodes(), 3);
    let urls = cluster.urls();
    let topology = Topology::new(TopologySettings {
        prefix: format!("t{}.", uuid::Uuid::new_v4().simple()),
        quorum_initial_group_size: Some(3),
        ..TopologySettings::default()
    });
    let publisher = Publisher::new(
        &urls,
        "cluster-test",
        topology.clone(),
        Duration::from_secs(2),
        None,
    );
    let shutdown = tokio_util::sync::CancellationToken::new();
    let supervisor = publisher.spawn_supervisor(shutdown.clone());
    let started = Instant::now();
    while !publisher.is_connected() {
        assert!(started.elapsed() < Duration::from_secs(20), "connected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let queue = topology.worker_queue();
    // Replicated on all three before a node goes: one loss must leave a majority.
    let started = Instant::now();
    while cluster.online_members_of(&queue) < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the worker queue has {} online members, not 3",
            cluster.online_members_of(&queue)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let leader = cluster
        .leader_of(&queue)
        .expect("the worker queue has a leader");
    eprintln!("worker queue: 3 members online, leader node {}", leader + 1);

    // Publish steadily; kill the leader's node a second in; go on until publishing
    // has run three seconds without a failure after the kill (at most 40 s).
    let mut confirmed = 0u64;
    let mut longest_gap = Duration::ZERO;
    let mut last_ok = Instant::now();
    let mut killed_at: Option<Instant> = None;
    let mut last_failure: Option<Instant> = None;
    let run = Instant::now();
    loop {
        if killed_at.is_none() && run.elapsed() > Duration::from_secs(1) {
            let node = &cluster.nodes[leader];
            tokio::task::block_in_place(|| node.kill());
            killed_at = Some(Instant::now());
        }
        let sent = publisher
            .publish(
                &topology.events_exchange(),
                "whereby.room.client.joined",
                b"{}",
                BasicProperties::default().with_delivery_mode(2),
                Duration::from_secs(2),
            )
            .await;
        if sent.is_ok() {
            confirmed += 1;
            longest_gap = longest_gap.max(last_ok.elapsed());
            last_ok = Instant::now();
        } else {
            last_failure = Some(Instant::now());
            if let Err(e) = &sent
                && std::env::var_os("CLUSTER_DEBUG").is_some()
            {
                eprintln!("{:?} {e}", run.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let Some(killed) = killed_at else { continue };
        let steady = killed.elapsed() > Duration::from_secs(4)
            && last_failure.is_none_or(|f| f.elapsed() > Duration::from_secs(3));
        if steady || killed.elapsed() > Duration::from_secs(40) {
            break;
        }
    }
    assert!(
        last_ok.elapsed() < Duration::from_secs(1),
        "publishing resumed on the survivors (longest gap {longest_gap:?})"
    );
    // Seconds, not the minute a dead peer's heartbeat would take: the chaos suite
    // measures the window precisely (0.0-0.3 s on an idle machine); this bound
    // leaves room for a loaded CI machine.
    assert!(
        longest_gap < Duration::from_secs(15),
        "no confirm for {longest_gap:?}"
    );
    let new_leader = cluster.leader_of(&queue).expect("a new leader");
    assert_ne!(new_leader, leader, "the leader moved");

    // Every confirmed message is in the queue, on the survivors.
    let survivor = cluster
        .nodes
        .iter()
        .enumerate()
        .find(|(i, _)| *i != leader)
        .map(|(_, n)| n.url())
        .expect("a survivor");
    let conn = messaging::connect(&survivor, "count", Duration::from_secs(5))
        .await
        .expect("survivor");
    let channel = conn.create_channel().await.expect("channel");
    let declared = channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("the queue lives on");
    assert!(
        u64::from(declared.message_count()) >= confirmed,
        "confirmed {confirmed}, in the queue {}",
        declared.message_count()
    );
    shutdown.cancel();
    let _ = supervisor.await;
    eprintln!(
        "three-node cluster, leader killed: {confirmed} confirmed, longest gap {longest_gap:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_promotion_the_pool_finds_the_new_primary_and_the_switch_reads_as_unavailable() {
    let mut pair = tokio::task::spawn_blocking(PrivatePostgresPair::start)
        .await
        .expect("pair");
    let setup = pair.primary.url("postgres");
    let mut conn = <db::AsyncPgConnection as db::AsyncConnection>::establish(&setup)
        .await
        .expect("primary");
    diesel::sql_query("CREATE TABLE t (id bigint PRIMARY KEY)")
        .execute(&mut conn)
        .await
        .expect("table");
    drop(conn);
    let url = pair.url("postgres");
    let pool = db::build_pool(
        &url,
        &db::PoolSettings {
            max_size: 4,
            acquire_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(2),
            ..db::PoolSettings::default()
        },
    )
    .expect("pool");
    let insert = async |id: i64| -> Result<(), db::Failure> {
        let mut conn = pool.get().await.map_err(|_| db::Failure::Unavailable)?;
        diesel::sql_query(format!("INSERT INTO t VALUES ({id})"))
            .execute(&mut conn)
            .await
            .map(drop)
            .map_err(|e| db::classify(&e))
    };
    insert(0).await.expect("a write before the switch");

    tokio::task::block_in_place(|| pair.fail_over());
    let switched = Instant::now();
    let mut id = 1;
    loop {
        match insert(id).await {
            Ok(()) => break,
            Err(db::Failure::Unavailable) => {}
            Err(other) => panic!("the switch read as {other:?}, not unavailable"),
        }
        assert!(
            switched.elapsed() < Duration::from_secs(30),
            "no write reached the new primary within 30 s"
        );
        id += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "writes resumed {:?} after the promotion",
        switched.elapsed()
    );
    assert!(
        !pair.primary.in_recovery(),
        "the promoted server takes writes"
    );

    // The old primary, rebuilt as the new standby, follows the new primary.
    tokio::task::block_in_place(|| pair.rebuild_standby());
    assert!(
        pair.standby.in_recovery(),
        "the rebuilt server is a standby"
    );
    for n in 0..5 {
        insert(10_000 + n).await.expect("writes go on");
    }
}
