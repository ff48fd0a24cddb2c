use std::{
    net::TcpListener,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use actix_web::{HttpResponse, dev::Server, web};
use anyhow::Context;
use messaging::{Publisher, Topology};
use prometheus::Registry;
use secrecy::ExposeSecret;
use telemetry::Supervisor;
use tokio_util::sync::CancellationToken;
use web_common::{HttpMetrics, ServerOptions};

use crate::{
    WorkerSettings,
    consumer::Consumer,
    intake::Intake,
    jobs::{Job, Jobs},
    metrics::WorkerMetrics,
    sqs::SqsPoller,
};

pub struct Application {
    port: u16,
    server: Server,
    consumer: Consumer,
    poller: Option<SqsPoller>,
    jobs: Jobs,
    job_intervals: [(Job, Duration); 4],
    shutdown_grace: Duration,
    tasks: Supervisor,
    schema: Arc<db::migrate::SchemaGate>,
}

/// Ready: the schema current, consuming with the database answering, and every
/// loop running.
struct Ready(Arc<AtomicBool>, Supervisor, Arc<db::migrate::SchemaGate>);

async fn readyz(ready: web::Data<Ready>) -> HttpResponse {
    web_common::Readiness::new()
        .check_why("schema", ready.2.readiness(None).await)
        .check("consumer", ready.0.load(Ordering::Relaxed))
        .tasks_down(ready.1.down_tasks())
        .respond()
}

/// `GET /metrics`, with the pool gauges refreshed first.
async fn scrape(jobs: web::Data<Jobs>, registry: web::Data<Registry>) -> HttpResponse {
    jobs.metrics.observe_pool(&jobs.pool);
    web_common::metrics(registry).await
}

/// `POST /admin/jobs/{scan|retention|meeting_cleanup}`: runs a job now (operators,
/// through `whereby-ops`). On the health port, which the ingress never exposes.
async fn run_job(jobs: web::Data<Jobs>, name: web::Path<String>) -> HttpResponse {
    let Some(job) = Job::parse(&name) else {
        return HttpResponse::NotFound()
            .json(serde_json::json!({"error": {"code": "not_found", "message": "no such job"}}));
    };
    match jobs.run_locked(job).await {
        Ok(Some(r)) => HttpResponse::Ok().json(serde_json::json!({
            "job": job.as_str(), "ran": true, "examined": r.examined, "changed": r.changed, "failed": r.failed
        })),
        Ok(None) => HttpResponse::Conflict().json(serde_json::json!({
            "error": {"code": "busy", "message": "another replica is running this job"}
        })),
        Err(e) => {
            tracing::warn!(job = job.as_str(), error = %e, "job failed");
            HttpResponse::ServiceUnavailable().json(serde_json::json!({
                "error": {"code": "unavailable", "message": "the job could not run; see the worker's log"}
            }))
        }
    }
}

/// The fault suite's switch (see `WorkerSection::worker_fault_injection`).
struct Faults {
    enabled: bool,
    panic_consumer: Arc<AtomicBool>,
}

/// `POST /admin/faults/consumer_panic`: 404 unless fault injection is on.
async fn inject_panic(faults: web::Data<Faults>) -> HttpResponse {
    if !faults.enabled {
        return HttpResponse::NotFound()
            .json(serde_json::json!({"error": {"code": "not_found", "message": "no such route"}}));
    }
    faults.panic_consumer.store(true, Ordering::SeqCst);
    HttpResponse::Accepted().json(serde_json::json!({"fault": "consumer_panic"}))
}

impl Application {
    pub async fn build(settings: WorkerSettings) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(&settings.worker.worker_addr)
            .with_context(|| format!("cannot listen on {}", settings.worker.worker_addr))?;
        Self::build_with_listener(settings, listener).await
    }

    pub async fn build_with_listener(
        settings: WorkerSettings,
        listener: TcpListener,
    ) -> anyhow::Result<Self> {
        let pool = db::open(&settings.database).await?;
        let schema = Arc::new(if settings.database.database_migrate_on_start {
            db::migrate::SchemaGate::current()
        } else {
            db::migrate::SchemaGate::new()
        });
        let registry = telemetry::service_registry("recworker")?;
        let http_metrics = HttpMetrics::register(&registry)?;
        let metrics = WorkerMetrics::register(&registry)?;
        let tasks = Supervisor::register(&registry)?;
        let topology = Topology::from_settings(&settings.amqp);
        let amqp_url = settings.amqp.amqp_url.expose_secret().to_owned();
        let connect_timeout = Duration::from_secs(settings.amqp.amqp_connect_timeout_seconds);
        // Delayed retries and the recording hand-off, on a connection of their own.
        let publisher = Publisher::new(
            &amqp_url,
            "recording-worker-publisher",
            topology.clone(),
            connect_timeout,
            None,
        );
        let ready = Arc::new(AtomicBool::new(false));
        let publish_timeout = Duration::from_millis(settings.amqp.amqp_publish_timeout_ms);
        let location = match &settings.recordings.recording_storage_aws_bucket_name {
            Some(setting) => Some(
                domain::recording::RecordingLocation::parse(setting)
                    .context("RECORDING_STORAGE_AWS_BUCKET_NAME is empty")?,
            ),
            None => None,
        };
        let aws = storage::sdk_config(&settings.aws).await;
        let intake = Intake {
            pool: pool.clone(),
            s3: storage::s3_client(&aws),
            publisher: publisher.clone(),
            publish_timeout,
            metrics: metrics.clone(),
        };
        let poller = settings
            .recordings
            .aws_process_recording_queue_url
            .clone()
            .map(|queue_url| SqsPoller {
                intake: intake.clone(),
                sqs: storage::sqs_client(&aws),
                queue_url,
                wait: Duration::from_secs(
                    settings.recordings.sqs_polling_timeout_seconds.clamp(1, 20),
                ),
                visibility: Duration::from_secs(
                    settings.recordings.sqs_visibility_timeout_seconds.max(2),
                ),
                register_timeout: settings.database.apply_timeout() + publish_timeout,
            });
        if poller.is_none() {
            tracing::warn!(
                "AWS_PROCESS_RECORDING_QUEUE_URL is not set: no recordings are taken from SQS"
            );
        }
        let whereby = whereby::WherebyClient::from_settings(
            &settings.whereby,
            Some(whereby::WherebyMetrics::register(&registry)?),
        )?;
        let jobs = Jobs {
            pool: pool.clone(),
            intake,
            whereby,
            location: location.clone(),
            retention_days: settings.recordings.recording_retention_days,
            meeting_grace: Duration::from_secs(settings.jobs.meeting_empty_grace_seconds),
            personal_data_days: settings.jobs.personal_data_retention_days,
            inbox_days: settings.jobs.inbox_retention_days,
            metrics: metrics.clone(),
        };
        let job_intervals = [
            (
                Job::Scan,
                Duration::from_secs(settings.jobs.job_scan_interval_seconds),
            ),
            (
                Job::Retention,
                Duration::from_secs(settings.jobs.job_retention_interval_seconds),
            ),
            (
                Job::MeetingCleanup,
                Duration::from_secs(settings.jobs.job_meeting_cleanup_interval_seconds),
            ),
            (
                Job::PersonalData,
                Duration::from_secs(settings.jobs.job_personal_data_interval_seconds),
            ),
        ];
        let consumer = Consumer {
            endpoints: std::sync::Arc::new(messaging::Endpoints::parse(&amqp_url)),
            topology,
            prefetch: settings.worker.worker_prefetch.max(1),
            // A batch can never hold more than the broker sends ahead: beyond
            // that it would always wait out the linger.
            batch_size: settings
                .worker
                .worker_batch_size
                .clamp(1, usize::from(settings.worker.worker_prefetch.max(1))),
            batch_linger: Duration::from_millis(settings.worker.worker_batch_linger_ms),
            pool,
            publisher,
            metrics,
            ready: ready.clone(),
            publish_timeout,
            apply_timeout: settings.database.apply_timeout(),
            crash_after_commit: None,
            location,
            panic_next: Arc::new(AtomicBool::new(false)),
        };
        let faults = web::Data::new(Faults {
            enabled: settings.worker.worker_fault_injection,
            panic_consumer: consumer.panic_next.clone(),
        });
        if faults.enabled {
            tracing::warn!("WORKER_FAULT_INJECTION is on: /admin/faults is open (tests only)");
        }

        let port = listener.local_addr()?.port();
        let ready = web::Data::new(Ready(ready, tasks.clone(), schema.clone()));
        let jobs_data = web::Data::new(jobs.clone());
        let options = ServerOptions {
            workers: Some(1),
            shutdown_timeout: Duration::from_secs(30),
            deadline: None,
        };
        let server = web_common::serve(listener, options, registry, http_metrics, move |cfg| {
            cfg.app_data(ready.clone())
                .app_data(jobs_data.clone())
                .app_data(faults.clone())
                .route("/healthz", web::get().to(web_common::healthz))
                .route("/readyz", web::get().to(readyz))
                .route("/metrics", web::get().to(scrape))
                .route("/admin/jobs/{name}", web::post().to(run_job))
                .route("/admin/faults/consumer_panic", web::post().to(inject_panic))
                .default_service(web::to(web_common::not_found));
        })?;
        tracing::info!(port, "recording-worker health and metrics listening");
        Ok(Self {
            port,
            server,
            consumer,
            poller,
            jobs,
            job_intervals,
            shutdown_grace: Duration::from_secs(settings.worker.worker_shutdown_seconds),
            tasks,
            schema,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The scheduled jobs, to run one on demand (operators, tests).
    pub fn jobs(&self) -> Jobs {
        self.jobs.clone()
    }

    /// Test fault injection (see `Consumer::crash_after_commit`).
    pub fn crash_after_commit(&mut self, times: u32) -> Arc<std::sync::atomic::AtomicU32> {
        let counter = Arc::new(std::sync::atomic::AtomicU32::new(times));
        self.consumer.crash_after_commit = Some(counter.clone());
        counter
    }

    /// Runs until `shutdown` is cancelled: stops consuming, finishes the delivery
    /// in hand (bounded by the grace period), closes the connections.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let server_handle = self.server.handle();
        let server = tokio::spawn(self.server);
        // Every background loop runs supervised: restarted after a panic or an
        // early return, counted, and reported by /readyz while down.
        let tasks = &self.tasks;
        let publisher = self.consumer.publisher.clone();
        let s = shutdown.clone();
        let publisher_task = tasks.spawn("publisher", shutdown.clone(), move || {
            let (publisher, shutdown) = (publisher.clone(), s.clone());
            async move { publisher.maintain(shutdown).await }
        });
        // Nothing touches the database before it has the schema this build
        // expects: an event applied to an older schema could fail as if it were
        // poison and be dead-lettered.
        let schema_current = tokio::select! {
            () = shutdown.cancelled() => false,
            () = self.schema.wait_until_current(&self.jobs.pool, Duration::from_secs(2)) => true,
        };
        if !schema_current {
            let _ = publisher_task.await;
            server_handle.stop(true).await;
            let _ = server.await;
            return Ok(());
        }
        let (c, s) = (self.consumer.clone(), shutdown.clone());
        let consumer = tasks.spawn("consumer", shutdown.clone(), move || {
            c.clone().run(s.clone())
        });
        let poller = self.poller.map(|p| {
            let s = shutdown.clone();
            tasks.spawn("sqs_poller", shutdown.clone(), move || {
                p.clone().run(s.clone())
            })
        });
        let jobs: Vec<_> = self
            .job_intervals
            .into_iter()
            .filter(|(_, every)| !every.is_zero())
            .map(|(job, every)| {
                let (j, s) = (self.jobs.clone(), shutdown.clone());
                tasks.spawn(job.as_str(), shutdown.clone(), move || {
                    j.clone().schedule(job, every, s.clone())
                })
            })
            .collect();
        shutdown.cancelled().await;
        let drained = async {
            let _ = consumer.await;
            if let Some(p) = poller {
                let _ = p.await;
            }
            for j in jobs {
                let _ = j.await;
            }
        };
        if tokio::time::timeout(self.shutdown_grace, drained)
            .await
            .is_err()
        {
            tracing::warn!("shutdown grace period over; unfinished work will be redelivered");
        }
        let _ = publisher_task.await;
        server_handle.stop(true).await;
        let _ = server.await;
        Ok(())
    }
}
