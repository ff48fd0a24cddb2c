//! JSON log lines with the service, its version and the trace they belong to:
//! tracing-subscriber's own JSON object, with those fields put first.

use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::{
    fmt::{FmtContext, FormatEvent, FormatFields, format},
    registry::LookupSpan,
};

pub struct ServiceJson {
    inner: format::Format<format::Json>,
    /// `"service":"…","version":"…",`: the same on every line.
    prefix: String,
}

impl ServiceJson {
    pub fn new(service: &str) -> Self {
        let prefix = format!(
            "\"service\":{},\"version\":{},",
            serde_json_string(service),
            serde_json_string(crate::VERSION)
        );
        Self {
            inner: format::json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false),
            prefix,
        }
    }
}

/// A JSON string literal (names and versions are plain ASCII, but stay correct
/// whatever they hold).
fn serde_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl<S, N> FormatEvent<S, N> for ServiceJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: format::Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = String::with_capacity(256);
        self.inner
            .format_event(ctx, format::Writer::new(&mut line), event)?;
        let Some(rest) = line.strip_prefix('{') else {
            return writer.write_str(&line);
        };
        writer.write_char('{')?;
        writer.write_str(&self.prefix)?;
        // The ids of the span the event is in, once the inner format let go of
        // the span's data (reading them locks it).
        if let Some((trace_id, span_id)) = crate::trace::ids(&tracing::Span::current()) {
            write!(
                writer,
                "\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\","
            )?;
        }
        writer.write_str(rest)
    }
}
