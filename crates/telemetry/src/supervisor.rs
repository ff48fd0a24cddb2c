//! Supervised background loops. A loop that panics or returns before shutdown is
//! logged, counted (`<prefix>_task_restarts_total{task}`) and started again with a
//! bounded backoff; while it is down, [`Supervisor::all_up`] is false, which the
//! services' `/readyz` reports. No process answers ready while doing nothing.

use std::{
    future::Future,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use prometheus::{IntCounterVec, Opts, Registry};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The first restart waits this long, doubling up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A loop that ran this long before failing starts again from the first backoff.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct Supervisor {
    restarts: IntCounterVec,
    down: Arc<Mutex<Vec<&'static str>>>,
}

impl Supervisor {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let restarts = IntCounterVec::new(
            Opts::new(
                "task_restarts_total",
                "Background loops restarted after a panic or an early exit, by task",
            ),
            &["task"],
        )?;
        registry.register(Box::new(restarts.clone()))?;
        Ok(Self {
            restarts,
            down: Arc::default(),
        })
    }

    /// True while every supervised loop is running.
    pub fn all_up(&self) -> bool {
        self.down_tasks().is_empty()
    }

    /// The loops that are down now, by name.
    pub fn down_tasks(&self) -> Vec<&'static str> {
        self.down.lock().map(|d| d.clone()).unwrap_or_default()
    }

    fn set_down(&self, task: &'static str, down: bool) {
        if let Ok(mut set) = self.down.lock() {
            set.retain(|t| *t != task);
            if down {
                set.push(task);
            }
        }
    }

    /// Runs the loop `start()` makes until `shutdown`; restarts it whenever it
    /// panics or returns before then. The loop itself must return on `shutdown`.
    pub fn spawn<F, Fut>(
        &self,
        task: &'static str,
        shutdown: CancellationToken,
        start: F,
    ) -> JoinHandle<()>
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let supervisor = self.clone();
        // Registered at once so that the series exists before any restart.
        supervisor.restarts.with_label_values(&[task]);
        tokio::spawn(async move {
            let mut failures = 0u32;
            loop {
                let started = Instant::now();
                supervisor.set_down(task, false);
                let result = tokio::spawn(start()).await;
                if shutdown.is_cancelled() {
                    break;
                }
                supervisor.set_down(task, true);
                supervisor.restarts.with_label_values(&[task]).inc();
                match result {
                    Ok(()) => tracing::error!(task, "background loop returned early; restarting"),
                    Err(e) if e.is_panic() => {
                        let panic = e.into_panic();
                        let message = panic
                            .downcast_ref::<&str>()
                            .map(|s| (*s).to_owned())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "(no message)".to_owned());
                        tracing::error!(task, panic = %message, "background loop panicked; restarting");
                    }
                    Err(e) => {
                        tracing::error!(task, error = %e, "background loop ended; restarting")
                    }
                }
                failures = if started.elapsed() >= HEALTHY_RUN {
                    1
                } else {
                    failures.saturating_add(1)
                };
                let wait = FIRST_BACKOFF
                    .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(16)))
                    .min(MAX_BACKOFF);
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(wait) => {}
                }
            }
            supervisor.set_down(task, false);
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_panicking_loop_is_counted_reported_down_and_restarted() {
        let registry = Registry::new();
        let supervisor = Supervisor::register(&registry).expect("register");
        let shutdown = CancellationToken::new();
        let runs = Arc::new(AtomicU32::new(0));
        let (r, s) = (runs.clone(), shutdown.clone());
        let handle = supervisor.spawn("consumer", shutdown.clone(), move || {
            let (runs, shutdown) = (r.clone(), s.clone());
            async move {
                if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("injected");
                }
                shutdown.cancelled().await;
            }
        });
        // Down during the backoff after the panic, up again after the restart.
        let mut saw_down = false;
        for _ in 0..200 {
            saw_down |= supervisor.down_tasks() == ["consumer"];
            if runs.load(Ordering::SeqCst) == 2 && supervisor.all_up() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(saw_down);
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert!(supervisor.all_up());
        assert_eq!(
            supervisor.restarts.with_label_values(&["consumer"]).get(),
            1
        );
        shutdown.cancel();
        handle.await.expect("supervisor ends on shutdown");
    }

    #[tokio::test]
    async fn a_loop_that_returns_early_is_restarted_and_shutdown_ends_it() {
        let registry = Registry::new();
        let supervisor = Supervisor::register(&registry).expect("register");
        let shutdown = CancellationToken::new();
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        let handle = supervisor.spawn("poller", shutdown.clone(), move || {
            let runs = r.clone();
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
            }
        });
        for _ in 0..300 {
            if runs.load(Ordering::SeqCst) >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(runs.load(Ordering::SeqCst) >= 2);
        shutdown.cancel();
        handle.await.expect("ends");
        assert!(
            supervisor.all_up(),
            "a stopped process reports nothing down"
        );
    }
}
