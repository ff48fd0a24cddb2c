//! `erase`: one person's or one meeting's personal data, as room-api's operator
//! route `POST /v1/erasures` does (the same `privacy::erase`), for an operator with
//! the services' settings rather than a token.

use settings::{AwsSettings, DatabaseSettings, Source};

use crate::{
    Options,
    output::{Check, Report},
};

pub async fn run(source: &Source, o: &Options) -> Report {
    let mut report = Report::new("erase");
    let subject = match (&o.external_id, &o.participant_id, &o.meeting) {
        (Some(x), None, None) => privacy::Subject::ExternalId(x.clone()),
        (None, Some(p), None) => privacy::Subject::ParticipantId(p.clone()),
        (None, None, Some(m)) => match m.parse() {
            Ok(id) => privacy::Subject::Meeting(id),
            Err(_) => {
                report.push(Check::fail(
                    "arguments",
                    "--meeting takes our meeting id (a UUID)",
                    "see GET /v1/meetings/{id}",
                ));
                return report;
            }
        },
        _ => {
            report.push(Check::fail(
                "arguments",
                "give exactly one of --external-id, --participant-id, --meeting",
                "e.g. whereby-ops erase --external-id user-42 --requested-by 'ticket 1234'",
            ));
            return report;
        }
    };
    let Some(requested_by) = o.requested_by.as_deref().filter(|r| !r.trim().is_empty()) else {
        report.push(Check::fail(
            "arguments",
            "--requested-by is required (who asked: a name, a ticket); it goes into the audit row",
            "e.g. --requested-by 'dpo ticket 1234'",
        ));
        return report;
    };
    let pool = match source.section::<DatabaseSettings>() {
        Ok(d) => match db::build_pool(
            secrecy::ExposeSecret::expose_secret(&d.database_url),
            &db::PoolSettings::default(),
        ) {
            Ok(p) => p,
            Err(e) => {
                report.push(Check::fail("postgres", e.to_string(), "check DATABASE_URL"));
                return report;
            }
        },
        Err(e) => {
            report.push(Check::fail("postgres", e.to_string(), "set DATABASE_URL"));
            return report;
        }
    };
    let Ok(aws) = source.section::<AwsSettings>() else {
        report.push(Check::fail(
            "s3",
            "invalid AWS_* settings",
            "check AWS_REGION and AWS_ENDPOINT_URL",
        ));
        return report;
    };
    let s3 = storage::s3_client(&storage::sdk_config(&aws).await);
    match privacy::erase(&pool, &s3, &subject, requested_by).await {
        Ok(r) if r.recordings_left > 0 => report.push(Check::fail(
            "erase",
            format!(
                "audit {}: {} participant(s), {} event(s), {} recording(s) erased; {} recording(s) could not be deleted yet",
                r.id, r.participants_erased, r.events_reduced, r.recordings_erased, r.recordings_left
            ),
            "run the same command again once S3 answers (it is idempotent)",
        )),
        Ok(r) => report.push(Check::ok(
            "erase",
            format!(
                "audit {}: {} participant(s), {} event(s), {} recording(s) erased",
                r.id, r.participants_erased, r.events_reduced, r.recordings_erased
            ),
        )),
        Err(e) => report.push(Check::fail(
            "erase",
            e.to_string(),
            "check the database (`whereby-ops doctor`); the command is idempotent",
        )),
    }
    report
}
