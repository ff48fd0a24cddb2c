//! Private server instances for fault tests: a RabbitMQ node and a PostgreSQL
//! cluster of their own, on free ports, in temporary directories, so that stopping
//! or killing them never disturbs other tests or the machine's services.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
        .is_ok()
}

fn wait_for(port: u16, open: bool, timeout: Duration, what: &str) {
    let started = Instant::now();
    while port_open(port) != open {
        assert!(
            started.elapsed() < timeout,
            "{what} did not {} in {timeout:?}",
            if open { "open" } else { "close" }
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn run(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn temp_dir(kind: &str, owner: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("whereby-{kind}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    assert!(
        run(Command::new("chown").arg("-R").arg(owner).arg(&dir)),
        "chown {dir:?} to {owner}"
    );
    dir
}

/// A RabbitMQ node with its own name, ports, config and data directory.
pub struct PrivateRabbit {
    pub node: String,
    pub port: u16,
    dist_port: u16,
    dir: PathBuf,
}

/// Erlang scheduler flags: no busy-waiting before a scheduler sleeps.
pub const SCHEDULER_ARGS: &str = "+sbwt none +sbwtdcpu none +sbwtdio none";

impl PrivateRabbit {
    pub fn start() -> Self {
        let rabbit = Self::configure();
        rabbit.launch();
        rabbit
    }

    /// Writes the node's files; [`PrivateRabbit::launch`] starts it.
    fn configure() -> Self {
        let dir = temp_dir("rabbit", "rabbitmq");
        let port = free_port();
        let node = format!(
            "wtest{}@localhost",
            &uuid::Uuid::new_v4().simple().to_string()[..10]
        );
        std::fs::write(dir.join("enabled_plugins"), "[].\n").expect("plugins file");
        std::fs::write(
            dir.join("rabbitmq.conf"),
            format!("listeners.tcp.local = 127.0.0.1:{port}\n"),
        )
        .expect("config");
        // At-least-once dead-lettering retries a publish its target refused (a full
        // queue) after this long; the broker's default is 3 minutes. The setting
        // the docs recommend for production (docs/operations.md) is used here too.
        std::fs::write(
            dir.join("advanced.config"),
            // A short net tick: a paused cluster node is declared down in ~10 s,
            // not the default minute (only matters when nodes are clustered).
            "[{rabbit, [{dead_letter_worker_publisher_confirm_timeout, 2000}]},\n {kernel, [{net_ticktime, 10}]}].\n",
        )
        .expect("advanced config");
        assert!(run(Command::new("chown")
            .arg("-R")
            .arg("rabbitmq")
            .arg(&dir)));
        Self {
            node,
            port,
            dist_port: free_port(),
            dir,
        }
    }

    /// Starts the node's VM (again, after a kill), with its data as it was.
    pub fn launch(&self) {
        let dir = &self.dir;
        let started = run(Command::new("rabbitmq-server")
            .arg("-detached")
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq.conf"))
            .env("RABBITMQ_ADVANCED_CONFIG_FILE", dir.join("advanced.config"))
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            .env("RABBITMQ_PID_FILE", dir.join("pid"))
            // As in production (k8s/components/rabbitmq-cluster): schedulers sleep
            // when idle instead of spinning, which at moderate rates cost more CPU
            // than the messages (docs/benchmarks.md).
            .env("RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS", SCHEDULER_ARGS));
        assert!(started, "rabbitmq-server -detached failed");
        wait_for(
            self.port,
            true,
            Duration::from_secs(90),
            "the private RabbitMQ node",
        );
    }

    /// `kill -9` of the node's VM: no goodbye to clients or to the cluster.
    pub fn kill(&self) {
        self.signal("-KILL");
        wait_for(
            self.port,
            false,
            Duration::from_secs(30),
            "the killed RabbitMQ node's port",
        );
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// `rabbitmqctl -n <node> <args>`; true on success.
    pub fn ctl(&self, args: &[&str]) -> bool {
        run(Command::new("rabbitmqctl")
            .arg("-n")
            .arg(&self.node)
            .args(args))
    }

    /// `rabbitmqctl -n <node> <args>`'s standard output, on success.
    pub fn ctl_output(&self, args: &[&str]) -> Option<String> {
        Command::new("rabbitmqctl")
            .arg("-n")
            .arg(&self.node)
            .args(args)
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    }

    /// Stops the broker application (connections drop, the port closes).
    pub fn stop_app(&self) {
        assert!(self.ctl(&["stop_app"]), "stop_app");
        wait_for(
            self.port,
            false,
            Duration::from_secs(30),
            "the private RabbitMQ port",
        );
    }

    pub fn start_app(&self) {
        assert!(self.ctl(&["start_app"]), "start_app");
        wait_for(
            self.port,
            true,
            Duration::from_secs(60),
            "the private RabbitMQ port",
        );
    }

    /// SIGSTOP / SIGCONT to the node's Erlang VM: a broker that hangs without
    /// closing anything.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = std::fs::read_to_string(self.dir.join("pid")).expect("node pid file");
        assert!(
            run(Command::new("kill").arg(sig).arg(pid.trim())),
            "kill {sig}"
        );
    }

    /// CPU seconds the node's VM has used so far (from /proc; 0 when unknown).
    /// The node's operating-system process id, while it runs.
    pub fn os_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    pub fn cpu_seconds(&self) -> f64 {
        let Ok(pid) = std::fs::read_to_string(self.dir.join("pid")) else {
            return 0.0;
        };
        std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()))
            .ok()
            .and_then(|s| {
                // Fields after the ")" of the command name; utime and stime are 14 and 15.
                let rest = s.rsplit_once(')')?.1.to_owned();
                let f: Vec<&str> = rest.split_whitespace().collect();
                Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
            })
            .unwrap_or(0.0)
    }

    pub fn close_all_connections(&self) {
        assert!(self.ctl(&["close_all_connections", "test fault"]));
    }
}

impl Drop for PrivateRabbit {
    fn drop(&mut self) {
        self.ctl(&["stop"]);
        // CHAOS_KEEP_LOGS keeps the node's files (its log) for a post-mortem.
        if std::env::var_os("CHAOS_KEEP_LOGS").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("RabbitMQ node {} kept in {}", self.node, self.dir.display());
        }
    }
}

fn pg_bin(tool: &str) -> PathBuf {
    let root = PathBuf::from("/usr/lib/postgresql");
    let mut versions: Vec<_> = std::fs::read_dir(&root)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    versions.sort();
    versions
        .last()
        .map_or_else(|| PathBuf::from(tool), |v| v.join("bin").join(tool))
}

/// A PostgreSQL cluster of its own (initdb + pg_ctl), run as the `postgres` user.
pub struct PrivatePostgres {
    pub port: u16,
    dir: PathBuf,
}

impl PrivatePostgres {
    pub fn start() -> Self {
        let dir = temp_dir("pg", "postgres");
        let data = dir.join("data");
        assert!(
            run(Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(pg_bin("initdb"))
                .args(["-A", "trust", "-U", "postgres", "-D"])
                .arg(&data)),
            "initdb"
        );
        let pg = Self {
            port: free_port(),
            dir,
        };
        pg.start_server();
        pg
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// A streaming standby of `primary`, made with `pg_basebackup -R`, on a port of
    /// its own, started.
    pub fn standby_of(primary: &Self) -> Self {
        let standby = Self {
            port: free_port(),
            dir: temp_dir("pg", "postgres"),
        };
        standby.base_backup_from(primary.port);
        standby.start_server();
        standby
    }

    /// Replaces this cluster's data with a base backup of the server on
    /// `primary_port`, set up to follow it (`-R`). The server must be stopped.
    pub fn base_backup_from(&self, primary_port: u16) {
        let data = self.dir.join("data");
        let _ = std::fs::remove_dir_all(&data);
        assert!(
            run(Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(pg_bin("pg_basebackup"))
                .args([
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                    "-X",
                    "stream",
                    "-R",
                    "-c",
                    "fast"
                ])
                .arg("-p")
                .arg(primary_port.to_string())
                .arg("-D")
                .arg(&data)),
            "pg_basebackup from :{primary_port}"
        );
    }

    /// `pg_ctl promote`: a standby becomes a primary (waits until it accepts writes).
    pub fn promote(&self) {
        assert!(
            run(Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(pg_bin("pg_ctl"))
                .arg("-D")
                .arg(self.dir.join("data"))
                .args(["-w", "promote"])),
            "pg_ctl promote"
        );
    }

    /// Whether the server is a standby (`pg_is_in_recovery()`), through psql;
    /// panics when psql cannot say (a test must not read "no answer" as "no").
    pub fn in_recovery(&self) -> bool {
        let out = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-tAc",
                "SELECT pg_is_in_recovery()",
            ])
            .arg("-p")
            .arg(self.port.to_string())
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "psql on :{}: {}",
            self.port,
            String::from_utf8_lossy(&out.stderr)
        );
        match String::from_utf8_lossy(&out.stdout).trim() {
            "t" => true,
            "f" => false,
            other => panic!("pg_is_in_recovery() said {other:?}"),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn start_server(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.display()
        );
        assert!(
            run(Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(pg_bin("pg_ctl"))
                .arg("-D")
                .arg(self.dir.join("data"))
                .arg("-o")
                .arg(options)
                .arg("-l")
                .arg(self.dir.join("log"))
                .args(["-w", "start"])),
            "pg_ctl start"
        );
        wait_for(
            self.port,
            true,
            Duration::from_secs(30),
            "the private PostgreSQL",
        );
    }

    /// `pg_ctl stop -m fast`: connections are terminated, the port closes.
    pub fn stop_server(&self) {
        run(Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(pg_bin("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "fast", "-w", "stop"]));
        wait_for(
            self.port,
            false,
            Duration::from_secs(30),
            "the private PostgreSQL port",
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        run(Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(pg_bin("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"]));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
