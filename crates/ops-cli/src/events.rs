//! `events reapply`: webhook events the worker stored as `unrecognised` (a type we
//! act on whose data did not parse) go back through the worker, which applies them
//! if the parser now reads them: after a fix is deployed, nothing is lost.

use chrono::{DateTime, Utc};
use messaging::{SCHEMA_VERSION, WebhookEnvelope, routing_key_for};
use secrecy::ExposeSecret;
use settings::{DatabaseSettings, Source};

use crate::{
    Options, dlq,
    output::{Check, Report},
};

/// Without `--limit`: bounded, so that a mistaken command moves a known amount.
pub const DEFAULT_REAPPLY_LIMIT: usize = 1000;

/// `--since`: an RFC 3339 time, or a duration back from now (`90m`, `24h`, `7d`).
pub fn parse_since(text: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    let (number, unit) = text.split_at_checked(text.len().checked_sub(1)?)?;
    let n: i64 = number.parse().ok().filter(|n| *n >= 0)?;
    let back = match unit {
        "m" => chrono::Duration::try_minutes(n)?,
        "h" => chrono::Duration::try_hours(n)?,
        "d" => chrono::Duration::try_days(n)?,
        _ => return None,
    };
    now.checked_sub_signed(back)
}

pub async fn reapply(source: &Source, o: &Options) -> Report {
    let mut report = Report::new("events reapply");
    let Some(since) = o.since.as_deref().and_then(|s| parse_since(s, Utc::now())) else {
        report.push(Check::fail(
            "arguments",
            "--since is required: an RFC 3339 time or a duration such as 24h or 7d",
            "e.g. whereby-ops events reapply --since 7d",
        ));
        return report;
    };
    let limit = o.limit.unwrap_or(DEFAULT_REAPPLY_LIMIT);
    let events = match load(source, since, limit).await {
        Ok(events) => events,
        Err(check) => {
            report.push(check);
            return report;
        }
    };
    let (conn, channel, topology) = match dlq::open_confirming(source).await {
        Ok(x) => x,
        Err(check) => {
            report.push(check);
            return report;
        }
    };
    let mut sent = 0;
    for (event_id, payload) in events {
        let event_type = payload
            .get("type")
            .and_then(|t| t.as_str())
            .unwrap_or("")
            .to_owned();
        let request_id = format!("reapply-{}", uuid::Uuid::new_v4().simple());
        let envelope = WebhookEnvelope {
            schema_version: SCHEMA_VERSION,
            received_at: Utc::now(),
            request_id: Some(request_id.clone()),
            event: payload,
        };
        let Ok(body) = serde_json::to_vec(&envelope) else {
            continue;
        };
        let published = dlq::publish_confirmed(
            &channel,
            &topology.events_exchange(),
            &routing_key_for(&event_type),
            &body,
            messaging::webhook_properties(&envelope, &event_id, &event_type),
        )
        .await;
        if published {
            sent += 1;
        } else {
            report.push(Check::fail(
                "reapply",
                format!("the broker did not take event {event_id}"),
                "check the worker queue exists and has room (`whereby-ops doctor`); the event is still stored",
            ));
            break;
        }
    }
    let _ = conn.close(200, "bye".into()).await;
    report.push(Check::ok(
        "reapply",
        format!("{sent} unrecognised event(s) since {since} sent back to the worker"),
    ));
    report
}

async fn load(
    source: &Source,
    since: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<(String, serde_json::Value)>, Check> {
    use db::AsyncConnection;
    let d = source
        .section::<DatabaseSettings>()
        .map_err(|e| Check::fail("postgres", e.to_string(), "set DATABASE_URL"))?;
    let mut conn = db::AsyncPgConnection::establish(d.database_url.expose_secret())
        .await
        .map_err(|e| Check::fail("postgres", e.to_string(), "check DATABASE_URL"))?;
    db::events::unrecognised_since(&mut conn, since, i64::try_from(limit).unwrap_or(i64::MAX))
        .await
        .map_err(|e| {
            Check::fail(
                "postgres",
                e.to_string(),
                "are the migrations applied? `whereby-ops migrate`",
            )
        })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn since_takes_a_time_or_a_duration_back() {
        let now = Utc
            .with_ymd_and_hms(2030, 1, 10, 12, 0, 0)
            .single()
            .expect("time");
        assert_eq!(
            parse_since("7d", now),
            Utc.with_ymd_and_hms(2030, 1, 3, 12, 0, 0).single()
        );
        assert_eq!(
            parse_since("90m", now),
            Utc.with_ymd_and_hms(2030, 1, 10, 10, 30, 0).single()
        );
        assert_eq!(
            parse_since("2030-01-01T00:00:00Z", now),
            Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).single()
        );
        for bad in ["", "d", "-1d", "7w", "yesterday", "9999999999999d"] {
            assert_eq!(parse_since(bad, now), None, "{bad}");
        }
    }
}
