//! A TCP proxy that can be cut and restored, or stalled: an endpoint that goes
//! away and comes back with its state intact (the S3/SQS emulator keeps its state
//! in memory, so stopping it would lose it; a real S3/SQS outage does not), or a
//! peer that stops answering without closing anything (a failover behind a NAT, a
//! dropped route): bytes are accepted and never forwarded.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
};

pub struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
    stalled: watch::Sender<bool>,
}

/// Copies `from` to `to`, holding every chunk while the proxy is stalled.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    mut stalled: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if stalled.wait_for(|s| !*s).await.is_err() {
            break;
        }
        if to
            .write_all(buf.get(..n).unwrap_or_default())
            .await
            .is_err()
        {
            break;
        }
    }
    let _ = to.shutdown().await;
}

impl Proxy {
    /// Proxies `127.0.0.1:<free port>` to `target` (`host:port`, `http://` allowed).
    pub async fn start(target: &str) -> anyhow::Result<Self> {
        let target = target
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let up = Arc::new(AtomicBool::new(true));
        let (cut, _) = watch::channel(0u64);
        let (stalled, _) = watch::channel(false);
        let (up2, cut2, stalled2) = (up.clone(), cut.clone(), stalled.clone());
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let mut cut_rx = cut2.subscribe();
                let stall_rx = stalled2.subscribe();
                tokio::spawn(async move {
                    // A new connection while stalled is accepted and left hanging.
                    let mut waiting = stall_rx.clone();
                    if waiting.wait_for(|s| !*s).await.is_err() {
                        return;
                    }
                    let Ok(outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let (in_read, in_write) = inbound.into_split();
                    let (out_read, out_write) = outbound.into_split();
                    tokio::select! {
                        () = async {
                            tokio::join!(
                                pump(in_read, out_write, stall_rx.clone()),
                                pump(out_read, in_write, stall_rx),
                            );
                        } => {}
                        _ = cut_rx.changed() => {}
                    }
                });
            }
        });
        Ok(Self {
            port,
            up,
            cut,
            stalled,
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Refuses new connections and drops open ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    /// Stops forwarding without closing anything, for open and new connections.
    pub fn stall(&self) {
        self.stalled.send_replace(true);
    }

    pub fn unstall(&self) {
        self.stalled.send_replace(false);
    }
}
