//! A RabbitMQ topology of its own per test: every name gets a random prefix, and
//! everything is deleted when the value drops. `TEST_AMQP_URL` names the broker
//! (default the machine's RabbitMQ).

use std::time::Duration;

use messaging::{
    Topology, TopologySettings, connect,
    lapin::{Channel, Connection, options::QueueDeclareOptions, types::FieldTable},
};

pub fn broker_url() -> String {
    std::env::var("TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

pub struct TestBroker {
    pub url: String,
    pub topology: Topology,
}

/// Short retry delays so that tests of the retry path run in a second or two.
pub fn test_topology_settings() -> TopologySettings {
    TopologySettings {
        prefix: format!("t{}.", uuid::Uuid::new_v4().simple()),
        retry_delays: vec![
            Duration::from_millis(200),
            Duration::from_millis(400),
            Duration::from_millis(600),
        ],
        ..TopologySettings::default()
    }
}

impl TestBroker {
    /// A prefixed topology on the machine's broker, declared.
    pub async fn new() -> Self {
        Self::on(&broker_url()).await
    }

    /// The same on another broker (a private node for fault tests).
    pub async fn on(url: &str) -> Self {
        let broker = Self {
            url: url.to_owned(),
            topology: Topology::new(test_topology_settings()),
        };
        let (conn, channel) = broker.channel().await;
        broker
            .topology
            .declare(&conn, &channel)
            .await
            .expect("declare test topology");
        let _ = conn.close(200, "bye".into()).await;
        broker
    }

    pub fn prefix(&self) -> &str {
        &self.topology.settings.prefix
    }

    /// The `AMQP_*` settings a service needs to use this topology, read from
    /// [`TestEnv::broker`] as a service reads them.
    pub fn amqp_settings(&self) -> settings::AmqpSettings {
        crate::TestEnv::new()
            .broker(self)
            .section()
            .expect("the test broker's AMQP settings")
    }

    pub async fn channel(&self) -> (Connection, Channel) {
        let conn = connect(&self.url, "test", Duration::from_secs(10))
            .await
            .expect("connect to test broker");
        let channel = conn.create_channel().await.expect("channel");
        (conn, channel)
    }

    /// Messages ready in a queue (passive declare; no consumer needed).
    pub async fn ready_count(&self, queue: &str) -> u32 {
        let (conn, channel) = self.channel().await;
        let q = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("passive declare");
        let _ = conn.close(200, "bye".into()).await;
        q.message_count()
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        let url = self.url.clone();
        let topology = self.topology.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let conn = connect(&url, "test-cleanup", Duration::from_secs(5))
                    .await
                    .ok()?;
                let channel = conn.create_channel().await.ok()?;
                let deleted = topology.delete(&channel).await.ok();
                let _ = conn.close(200, "bye".into()).await;
                deleted
            })
        })
        .join();
    }
}
