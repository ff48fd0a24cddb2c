//! When the publisher replaces its connection on its own: when the broker stops
//! answering (a hung node), or after 20 nacks or confirm timeouts in a row on a
//! channel that stopped working, but not for the nacks of a full queue, which are
//! backpressure.

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

/// A node that hangs (SIGSTOP: the TCP connection stays open, nothing answers) with
/// a publish waiting for its confirm: the publisher notices the stall, connects to
/// the next node and sends the message again there, within the publish's timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_on_a_node_that_hangs_is_confirmed_through_the_next_node() {
    let (a, b) = tokio::join!(
        tokio::task::spawn_blocking(PrivateRabbit::start),
        tokio::task::spawn_blocking(PrivateRabbit::start)
    );
    let nodes = [a.expect("node a"), b.expect("node b")];
    let urls = format!("{},{}", nodes[0].url(), nodes[1].url());
    let topology = Topology::new(test_support::broker::test_topology_settings());
    // Two separate nodes stand for one cluster's: the same definitions on both.
    for node in &nodes {
        let conn = messaging::connect(&node.url(), "declare", Duration::from_secs(5))
            .await
            .expect("connect");
        let channel = conn.create_channel().await.expect("channel");
        topology.declare(&conn, &channel).await.expect("declared");
        let _ = conn.close(200, "bye".into()).await;
    }
    let (publisher, disconnects, shutdown) = connected(&urls, topology.clone()).await;
    publish(&publisher, Duration::from_secs(2))
        .await
        .expect("published");
    let on = nodes
        .iter()
        .position(|n| {
            n.ctl_output(&["list_connections", "-q", "client_properties"])
                .is_some_and(|props| props.contains("publisher-test"))
        })
        .expect("one node has the publisher's connection");
    let other = &nodes[1 - on];
    nodes[on].pause();
    let started = Instant::now();
    let result = publish(&publisher, Duration::from_secs(10)).await;
    let took = started.elapsed();
    nodes[on].resume();
    assert!(
        result.is_ok(),
        "confirmed through the other node: {result:?}"
    );
    assert!(
        took < messaging::STALL_BEFORE_RECONNECT + Duration::from_secs(3),
        "a stall is noticed in seconds, not after heartbeats: {took:?}"
    );
    assert!(
        disconnects.0.load(Ordering::SeqCst) >= 1,
        "the connection was replaced"
    );
    // The message is in the worker queue of the node that answered.
    let conn = messaging::connect(&other.url(), "check", Duration::from_secs(5))
        .await
        .expect("connect to the other node");
    let channel = conn.create_channel().await.expect("channel");
    let got = channel
        .basic_get(
            topology.worker_queue().as_str().into(),
            messaging::lapin::options::BasicGetOptions { no_ack: true },
        )
        .await
        .expect("basic.get");
    assert!(got.is_some(), "queued on the node that answered");
    let _ = conn.close(200, "bye".into()).await;
    shutdown.cancel();
}
