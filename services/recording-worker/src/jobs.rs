//! Scheduled jobs: the catch-up scan, retention and meeting clean-up. Every replica
//! schedules them; a Postgres advisory lock lets one run each job at a time.

use std::time::Duration;

use chrono::Utc;
use db::DbPool;
use domain::recording::{RecordingLocation, is_recording_key};
use tokio_util::sync::CancellationToken;
use whereby::WherebyClient;

use crate::{intake::Intake, metrics::WorkerMetrics};

/// The housekeeping jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// Registers recordings in the bucket that no notification brought.
    Scan,
    /// Deletes recordings past their retention.
    Retention,
    /// Ends meetings past their end date or long empty.
    MeetingCleanup,
    /// Removes personal data past its retention.
    PersonalData,
}

impl Job {
    pub const ALL: [Self; 4] = [
        Self::Scan,
        Self::Retention,
        Self::MeetingCleanup,
        Self::PersonalData,
    ];

    /// The job's name: in `POST /admin/jobs/{name}`, logs and the metric's label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scan => "scan",
            Self::Retention => "retention",
            Self::MeetingCleanup => "meeting_cleanup",
            Self::PersonalData => "personal_data",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|j| j.as_str() == name)
    }

    /// The Postgres advisory lock that lets one replica run the job at a time.
    fn lock_key(self) -> i64 {
        match self {
            Self::Scan => 0x5245_435f_5343_414e,
            Self::Retention => 0x5245_435f_5245_5445,
            Self::MeetingCleanup => 0x5245_435f_434c_4e55,
            Self::PersonalData => 0x5245_435f_5044_4154,
        }
    }
}

/// Why a job run stopped before its end (what it had done stays done; the next
/// run picks up the rest).
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("no database connection: {0}")]
    Pool(#[from] db::PoolError),
    #[error("a database query failed: {0}")]
    Query(#[from] db::QueryError),
    #[error("the bucket could not be listed: {0}")]
    Storage(#[from] storage::StorageError),
}

#[derive(Clone)]
pub struct Jobs {
    pub pool: DbPool,
    pub intake: Intake,
    pub whereby: WherebyClient,
    pub location: Option<RecordingLocation>,
    pub retention_days: Option<u32>,
    pub meeting_grace: Duration,
    /// Personal data (names, external ids, webhook payloads) kept this long.
    pub personal_data_days: u32,
    /// Inbox rows kept this long.
    pub inbox_days: u32,
    pub metrics: WorkerMetrics,
}

/// What one job run did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub examined: usize,
    pub changed: usize,
    pub failed: usize,
}

impl Jobs {
    /// Runs `job` every `every` until shutdown (0 = never), under its lock.
    pub async fn schedule(self, job: Job, every: Duration, shutdown: CancellationToken) {
        if every.is_zero() {
            return;
        }
        let mut ticker = tokio::time::interval(every);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
            }
            let name = job.as_str();
            let outcome = match self.run_locked(job).await {
                Ok(Some(report)) => {
                    tracing::info!(job = name, ?report, "job finished");
                    if report.failed > 0 { "failed" } else { "ok" }
                }
                Ok(None) => "skipped",
                Err(e) => {
                    tracing::warn!(job = name, error = %e, "job could not run");
                    "failed"
                }
            };
            self.metrics.jobs.with_label_values(&[name, outcome]).inc();
        }
    }

    /// One run of a job by name, if no other replica is running it.
    pub async fn run_locked(&self, job: Job) -> Result<Option<Report>, JobError> {
        let conn = self.pool.get().await?;
        db::with_advisory_lock(conn, job.lock_key(), || async {
            match job {
                Job::Scan => self.scan().await,
                Job::Retention => self.retention().await,
                Job::PersonalData => self.personal_data().await,
                Job::MeetingCleanup => self.cleanup_meetings().await,
            }
        })
        .await?
        .transpose()
    }

    /// Registers every recording in the bucket that has no row, or whose hand-off
    /// never happened (a lost notification). Never makes a second row.
    pub async fn scan(&self) -> Result<Report, JobError> {
        let Some(location) = &self.location else {
            return Ok(Report::default());
        };
        let mut report = Report::default();
        let mut token = None;
        loop {
            let (keys, next) =
                storage::list_page(&self.intake.s3, &location.bucket, &location.prefix, token)
                    .await?;
            for key in keys.iter().filter(|k| is_recording_key(k)) {
                report.examined += 1;
                let mut conn = self.pool.get().await?;
                let existing =
                    db::recordings::find_by_key(&mut conn, &location.bucket, key).await?;
                drop(conn);
                if existing.is_some_and(|r| r.status != "uploaded") {
                    continue;
                }
                match self.intake.register(&location.bucket, key).await {
                    Ok(_) => report.changed += 1,
                    Err(e) => {
                        report.failed += 1;
                        tracing::warn!(%key, error = %e, "scan could not register a recording");
                    }
                }
            }
            match next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        Ok(report)
    }

    /// Deletes from S3 the recordings the pipeline finished more than the retention
    /// period ago, and marks them deleted. Nothing else is ever deleted.
    /// Personal data past its retention: participants' names and external ids
    /// removed, webhook payloads reduced to id, type and times; inbox rows past
    /// theirs deleted. In bounded steps.
    pub async fn personal_data(&self) -> Result<Report, JobError> {
        let now = Utc::now();
        let days = |d: u32| chrono::Duration::days(i64::from(d));
        let mut conn = self.pool.get().await?;
        let r = db::privacy::apply_retention(
            &mut conn,
            now - days(self.personal_data_days),
            now - days(self.inbox_days),
        )
        .await?;
        tracing::info!(?r, "personal data retention");
        let changed = r.participants_erased + r.events_reduced + r.events_deleted;
        Ok(Report {
            examined: usize::try_from(changed).unwrap_or(usize::MAX),
            changed: usize::try_from(changed).unwrap_or(usize::MAX),
            failed: 0,
        })
    }

    pub async fn retention(&self) -> Result<Report, JobError> {
        let Some(days) = self.retention_days else {
            return Ok(Report::default());
        };
        let cutoff = Utc::now() - chrono::Duration::days(i64::from(days));
        let mut conn = self.pool.get().await?;
        let expired = db::recordings::expired(&mut conn, cutoff, 500).await?;
        let mut report = Report {
            examined: expired.len(),
            ..Report::default()
        };
        for r in expired {
            match storage::delete_object(&self.intake.s3, &r.bucket, &r.object_key).await {
                Ok(()) => {
                    db::recordings::mark_deleted(&mut conn, r.id).await?;
                    report.changed += 1;
                    tracing::info!(recording = %r.id, key = %r.object_key, "retention deleted a recording");
                }
                Err(e) => {
                    report.failed += 1;
                    tracing::warn!(recording = %r.id, error = %e, "retention could not delete a recording");
                }
            }
        }
        Ok(report)
    }

    /// Ends meetings past their end date, and empty meetings whose session ended
    /// longer ago than the grace period: at Whereby first, then here. A Whereby
    /// failure leaves the meeting for the next run.
    pub async fn cleanup_meetings(&self) -> Result<Report, JobError> {
        let grace = chrono::Duration::from_std(self.meeting_grace)
            .unwrap_or_else(|_| chrono::Duration::minutes(15));
        let mut conn = self.pool.get().await?;
        let due = db::meetings::due_for_cleanup(&mut conn, Utc::now(), grace).await?;
        let mut report = Report {
            examined: due.len(),
            ..Report::default()
        };
        for m in due {
            if let Err(e) = self.whereby.delete_meeting(&m.whereby_meeting_id).await {
                report.failed += 1;
                tracing::warn!(meeting = %m.id, error = %e, "could not delete the meeting at Whereby; will retry");
                continue;
            }
            db::meetings::deactivate(&mut conn, &[m.id]).await?;
            report.changed += 1;
            tracing::info!(meeting = %m.id, "ended meeting");
        }
        Ok(report)
    }
}
