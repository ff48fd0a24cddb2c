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
    /// Whether spans have trace ids at all (traces configured).
    traced: bool,
}

impl ServiceJson {
    pub fn new(service: &str, traced: bool) -> Self {
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
            traced,
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
        // Our fields first, then the inner object without its opening brace: written
        // straight through, no buffer. The ids are read before the inner format
        // takes the span's data (reading them locks it).
        writer.write_char('{')?;
        writer.write_str(&self.prefix)?;
        if self.traced
            && let Some((trace_id, span_id)) = crate::trace::ids(&tracing::Span::current())
        {
            write!(
                writer,
                "\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\","
            )?;
        }
        let mut rest = SkipFirst {
            inner: &mut writer,
            skipped: false,
        };
        self.inner
            .format_event(ctx, format::Writer::new(&mut rest), event)
    }
}

/// Forwards everything but the first character (the inner object's `{`).
struct SkipFirst<'a, 'b> {
    inner: &'a mut format::Writer<'b>,
    skipped: bool,
}

impl fmt::Write for SkipFirst<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.skipped {
            return self.inner.write_str(s);
        }
        let mut chars = s.chars();
        if chars.next().is_none() {
            return Ok(());
        }
        self.skipped = true;
        self.inner.write_str(chars.as_str())
    }
}
