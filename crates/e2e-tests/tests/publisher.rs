//! When the publisher replaces its connection on its own: after 20 nacks or
//! confirm timeouts in a row on a channel that stopped working (a hung node),
//! but not for the nacks of a full queue, which are backpressure.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use messaging::{
    FAILURES_BEFORE_RECONNECT, PublishError, Publisher, PublisherMetrics, Topology,
    TopologySettings, lapin::BasicProperties,
};
use test_support::{PrivateRabbit, TestBroker};
use tokio_util::sync::CancellationToken;

/// Counts the times the publisher lost or dropped its connection.
#[derive(Default)]
struct Disconnects(AtomicU32);

impl PublisherMetrics for Disconnects {
    fn confirmed(&self, _: Duration) {}
    fn connected(&self, connected: bool) {
        if !connected {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

async fn connected(
    url: &str,
    topology: Topology,
) -> (Publisher, Arc<Disconnects>, CancellationToken) {
    let disconnects = Arc::new(Disconnects::default());
    let publisher = Publisher::new(
        url,
        "publisher-test",
        topology,
        Duration::from_secs(2),
        Some(disconnects.clone()),
    );
    let shutdown = CancellationToken::new();
    publisher.spawn_supervisor(shutdown.clone());
    let started = Instant::now();
    while !publisher.is_connected() {
        assert!(started.elapsed() < Duration::from_secs(20), "connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (publisher, disconnects, shutdown)
}

async fn publish(publisher: &Publisher, timeout: Duration) -> Result<(), PublishError> {
    let topology = publisher.topology();
    publisher
        .publish(
            &topology.events_exchange(),
            "whereby.room.client.joined",
            b"{}",
            BasicProperties::default(),
            timeout,
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_is_backpressure_not_a_reason_to_reconnect() {
    let broker = TestBroker::new().await;
    let topology = Topology::new(TopologySettings {
        max_length: 2,
        ..broker.topology.settings.clone()
    });
    // A prefix of its own: the test broker's topology has the default bound.
    let topology = Topology::new(TopologySettings {
        prefix: format!("{}full.", broker.prefix()),
        ..topology.settings
    });
    let (publisher, disconnects, shutdown) = connected(&broker.url, topology.clone()).await;
    // Filled up (the quorum queue may take one beyond its bound before it refuses).
    let mut accepted = 0;
    while publish(&publisher, Duration::from_secs(2)).await.is_ok() {
        accepted += 1;
        assert!(accepted < 10, "a bound of 2 refuses soon");
    }
    for _ in 0..FAILURES_BEFORE_RECONNECT + 5 {
        let refused = publish(&publisher, Duration::from_secs(2)).await;
        assert!(matches!(refused, Err(PublishError::Nacked)), "{refused:?}");
    }
    // The supervisor looks (and finds the queue full) within a second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(publisher.is_connected());
    assert_eq!(
        disconnects.0.load(Ordering::SeqCst),
        0,
        "the connection was kept"
    );
    shutdown.cancel();
    let (conn, channel) = broker.channel().await;
    topology.delete(&channel).await.expect("clean up");
    let _ = conn.close(200, "bye".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_that_stopped_confirming_is_replaced_within_seconds() {
    let rabbit = tokio::task::spawn_blocking(PrivateRabbit::start)
        .await
        .expect("node");
    let topology = Topology::new(test_support::broker::test_topology_settings());
    let (publisher, disconnects, shutdown) = connected(&rabbit.url(), topology).await;
    publish(&publisher, Duration::from_secs(2))
        .await
        .expect("published");
    // The node hangs without closing anything: confirms stop, the TCP connection
    // stays up, heartbeats would notice only after 20 s or so.
    rabbit.pause();
    for _ in 0..FAILURES_BEFORE_RECONNECT {
        let timed_out = publish(&publisher, Duration::from_millis(100)).await;
        assert!(
            matches!(timed_out, Err(PublishError::Timeout)),
            "{timed_out:?}"
        );
    }
    let started = Instant::now();
    while publisher.is_connected() {
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "still on the hung connection"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(disconnects.0.load(Ordering::SeqCst) >= 1);
    rabbit.resume();
    shutdown.cancel();
}
