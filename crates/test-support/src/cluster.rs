//! Clusters of private instances for the failover suite: three RabbitMQ nodes
//! joined into one cluster, and a PostgreSQL primary with a streaming standby.
//! Private instances only: stopping, killing or pausing them never touches the
//! machine's services.

use std::time::{Duration, Instant};

use crate::private::{PrivatePostgres, PrivateRabbit};

/// RabbitMQ nodes joined into one cluster (one Erlang cookie: the rabbitmq
/// user's, which every node started by `rabbitmq-server` shares).
pub struct PrivateRabbitCluster {
    pub nodes: Vec<PrivateRabbit>,
}

impl PrivateRabbitCluster {
    /// Starts `size` nodes (in parallel: each takes seconds) and joins them to the first.
    pub fn start(size: usize) -> Self {
        let handles: Vec<_> = (0..size)
            .map(|_| std::thread::spawn(PrivateRabbit::start))
            .collect();
        let nodes: Vec<PrivateRabbit> = handles
            .into_iter()
            .map(|h| h.join().expect("a node started"))
            .collect();
        let cluster = Self { nodes };
        if let Some((first, rest)) = cluster.nodes.split_first() {
            for node in rest {
                assert!(node.ctl(&["stop_app"]), "stop_app {}", node.node);
                assert!(
                    node.ctl(&["join_cluster", &first.node]),
                    "{} joins {}",
                    node.node,
                    first.node
                );
                node.start_app();
            }
        }
        cluster.wait_until_running(size);
        cluster
    }

    /// Every node's URL, comma-separated: `AMQP_URL` for a cluster.
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(PrivateRabbit::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Waits until `count` nodes are running, as some live node sees it.
    pub fn wait_until_running(&self, count: usize) {
        let started = Instant::now();
        loop {
            if self.running_nodes() >= count {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the cluster did not reach {count} running nodes"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Running nodes, as the first node that answers sees them.
    pub fn running_nodes(&self) -> usize {
        for node in &self.nodes {
            if let Some(out) = node.ctl_output(&["cluster_status", "--formatter", "json"])
                && let Ok(status) = serde_json::from_str::<serde_json::Value>(&out)
            {
                return status["running_nodes"].as_array().map_or(0, Vec::len);
            }
        }
        0
    }

    /// How many members of `queue` (a quorum queue) are online, as a live node sees it.
    pub fn online_members_of(&self, queue: &str) -> usize {
        for node in &self.nodes {
            let Some(out) =
                node.ctl_output(&["list_queues", "name", "online", "--formatter", "json"])
            else {
                continue;
            };
            let Ok(queues) = serde_json::from_str::<Vec<serde_json::Value>>(&out) else {
                continue;
            };
            return queues
                .iter()
                .find(|q| q["name"] == queue)
                .and_then(|q| q["online"].as_array().map(Vec::len))
                .unwrap_or(0);
        }
        0
    }

    /// The index of the node that leads `queue` (a quorum queue), if known.
    pub fn leader_of(&self, queue: &str) -> Option<usize> {
        for node in &self.nodes {
            let Some(out) =
                node.ctl_output(&["list_queues", "name", "leader", "--formatter", "json"])
            else {
                continue;
            };
            let queues: Vec<serde_json::Value> = serde_json::from_str(&out).ok()?;
            let leader = queues
                .iter()
                .find(|q| q["name"] == queue)
                .and_then(|q| q["leader"].as_str())?
                .to_owned();
            return self.nodes.iter().position(|n| n.node == leader);
        }
        None
    }
}

/// A PostgreSQL primary and a streaming standby made with `pg_basebackup -R`.
pub struct PrivatePostgresPair {
    pub primary: PrivatePostgres,
    pub standby: PrivatePostgres,
}

impl PrivatePostgresPair {
    pub fn start() -> Self {
        let primary = PrivatePostgres::start();
        let standby = PrivatePostgres::standby_of(&primary);
        Self { primary, standby }
    }

    /// A multi-host URL that finds whichever of the two accepts writes.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/{database}?target_session_attrs=read-write",
            self.primary.port, self.standby.port
        )
    }

    /// The failover: the primary stops, the standby is promoted. Then the old
    /// primary is rebuilt from the new one as its standby, and the roles swap.
    pub fn fail_over(&mut self) {
        self.primary.stop_server();
        self.standby.promote();
        std::mem::swap(&mut self.primary, &mut self.standby);
    }

    /// After [`Self::fail_over`]: the old primary, rebuilt as the new standby.
    pub fn rebuild_standby(&self) {
        self.standby.base_backup_from(self.primary.port);
        self.standby.start_server();
    }
}
