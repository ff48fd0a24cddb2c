//! The webhook dead-letter queue (`whereby.events.dead`): list what is there and why,
//! and put messages back for the worker once the cause is fixed.

use std::time::Duration;

use messaging::{
    HEADER_REPLAYS, Topology, connect,
    lapin::{
        BasicProperties, Channel, Connection,
        options::{
            BasicAckOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions,
            ConfirmSelectOptions,
        },
        types::AMQPValue,
    },
};
use secrecy::ExposeSecret;
use settings::{AmqpSettings, Source};

use crate::{
    Options,
    output::{Check, Report},
};

/// `dlq replay` without `--limit`: enough for an incident, bounded so that a
/// mistaken replay cannot move a whole backlog at once.
pub const DEFAULT_REPLAY_LIMIT: usize = 100;

pub(crate) async fn open(source: &Source) -> Result<(Connection, Channel, Topology), Check> {
    let a = source
        .section::<AmqpSettings>()
        .map_err(|e| Check::fail("rabbitmq", e.to_string(), "set AMQP_URL"))?;
    let conn = connect(
        a.amqp_url.expose_secret(),
        "whereby-ops",
        Duration::from_secs(5),
    )
    .await
    .map_err(|e| Check::fail("rabbitmq", e.to_string(), "check AMQP_URL"))?;
    let channel = conn
        .create_channel()
        .await
        .map_err(|e| Check::fail("rabbitmq", e.to_string(), "see the broker's log"))?;
    let topology = Topology::from_settings(&a);
    Ok((conn, channel, topology))
}

/// [`open`], with publisher confirms on the channel (for [`publish_confirmed`]).
pub(crate) async fn open_confirming(
    source: &Source,
) -> Result<(Connection, Channel, Topology), Check> {
    let (conn, channel, topology) = open(source).await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|e| Check::fail("rabbitmq", e.to_string(), "see the broker's log"))?;
    Ok((conn, channel, topology))
}

/// Publishes persistently and mandatorily to `exchange`; true only when the broker
/// confirmed it and routed it to a queue (no return).
pub(crate) async fn publish_confirmed(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    properties: BasicProperties,
) -> bool {
    let published = async {
        channel
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                body,
                properties.with_delivery_mode(2),
            )
            .await?
            .await
    }
    .await;
    matches!(published, Ok(messaging::lapin::Confirmation::Ack(None)))
}

/// Why the broker dead-lettered it, from `x-death` (rejected, delivery_limit, …).
fn death_reason(properties: &BasicProperties) -> String {
    let Some(headers) = properties.headers() else {
        return "unknown".to_owned();
    };
    let Some(AMQPValue::FieldArray(deaths)) = headers.inner().get("x-death") else {
        return "unknown".to_owned();
    };
    deaths
        .as_slice()
        .first()
        .and_then(|d| match d {
            AMQPValue::FieldTable(t) => match t.inner().get("reason") {
                Some(AMQPValue::LongString(s)) => {
                    Some(String::from_utf8_lossy(s.as_bytes()).into_owned())
                }
                _ => None,
            },
            _ => None,
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

pub async fn list(source: &Source, o: &Options) -> Report {
    let mut report = Report::new("dlq list");
    let (conn, channel, topology) = match open(source).await {
        Ok(x) => x,
        Err(check) => {
            report.push(check);
            return report;
        }
    };
    let queue = topology.dead_letter_queue();
    let limit = o.limit.unwrap_or(100);
    // Taken without acking and left unacked: they return to the queue, in order,
    // when the channel closes.
    while report.items.len() < limit {
        match channel
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false })
            .await
        {
            Ok(Some(m)) => {
                let body = String::from_utf8_lossy(&m.delivery.data);
                let preview: String = body.chars().take(300).collect();
                report.items.push(serde_json::json!({
                    "message_id": m.delivery.properties.message_id().as_ref().map(|s| s.as_str().to_owned()),
                    "routing_key": m.delivery.routing_key.as_str(),
                    "reason": death_reason(&m.delivery.properties),
                    "bytes": m.delivery.data.len(),
                    "body": preview,
                }));
            }
            Ok(None) => break,
            Err(e) => {
                report.push(Check::fail(
                    "dlq",
                    e.to_string(),
                    "check that the topology exists (`whereby-ops doctor`)",
                ));
                break;
            }
        }
    }
    let _ = conn.close(200, "bye".into()).await;
    report.push(Check::ok(
        &format!("queue {queue}"),
        format!("{} message(s) shown", report.items.len()),
    ));
    report
}

pub async fn replay(source: &Source, o: &Options) -> Report {
    let mut report = Report::new("dlq replay");
    let (conn, channel, topology) = match open_confirming(source).await {
        Ok(x) => x,
        Err(check) => {
            report.push(check);
            return report;
        }
    };
    let queue = topology.dead_letter_queue();
    let limit = o.limit.unwrap_or(DEFAULT_REPLAY_LIMIT);
    let mut replayed = 0;
    while replayed < limit {
        let m = match channel
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false })
            .await
        {
            Ok(Some(m)) => m,
            Ok(None) => break,
            Err(e) => {
                report.push(Check::fail(
                    "dlq",
                    e.to_string(),
                    "check that the topology exists (`whereby-ops doctor`)",
                ));
                break;
            }
        };
        // A message that failed again after a replay would only go round again:
        // stop, leave it where it is, and let a person look (`dlq list`).
        let replays =
            messaging::header_u32(m.delivery.properties.headers().as_ref(), HEADER_REPLAYS)
                .unwrap_or(0);
        if replays > 0 && !o.again {
            let _ = m
                .delivery
                .nack(BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                })
                .await;
            report.push(Check::fail(
                "replay",
                format!(
                    "stopped at message {}: it was replayed {replays} time(s) and dead-lettered again",
                    m.delivery
                        .properties
                        .message_id()
                        .as_ref()
                        .map_or("(no id)", |id| id.as_str())
                ),
                "look at it with `whereby-ops dlq list` and fix the cause; then `dlq replay --again`",
            ));
            break;
        }
        // Back to the events exchange under its original routing key, with a
        // fresh retry count; acked here only once the broker confirmed it there.
        let properties = messaging::replay_properties(&m.delivery.properties, replays + 1);
        let published = publish_confirmed(
            &channel,
            &topology.events_exchange(),
            m.delivery.routing_key.as_str(),
            &m.delivery.data,
            properties,
        )
        .await;
        if !published {
            report.push(Check::fail(
                "replay",
                "the broker did not take a message back",
                "check the worker queue exists and has room; nothing was lost",
            ));
            break;
        }
        let _ = m.delivery.ack(BasicAckOptions::default()).await;
        replayed += 1;
    }
    let _ = conn.close(200, "bye".into()).await;
    report.push(Check::ok(
        "replay",
        format!("{replayed} message(s) sent back to the worker"),
    ));
    report
}
