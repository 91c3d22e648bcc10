//! The JSON log format: [bunyan](https://github.com/trentm/node-bunyan#core-fields) records,
//! one per line, as `tracing-bunyan-formatter` writes them: the core fields (`v`, `name`,
//! `msg`, `level`, `hostname`, `pid`, `time`), then `target`, `line` and `file`, then the
//! record's own fields and those of every enclosing span.
//!
//! An event is a line. A span is a line when it closes (`[HTTP REQUEST - END]`, with every
//! field it gathered and `elapsed_milliseconds`), not also when it opens: a request is one
//! line. A span's fields are kept as JSON text from the moment they are recorded, and a line
//! is written into a buffer the thread reuses, so a line costs a handful of allocations
//! instead of a map of values per span and a string per field.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::time::Instant;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// Core fields of a record: a span's or an event's field of the same name is left out.
const CORE_FIELDS: [&str; 7] = ["v", "name", "msg", "level", "hostname", "pid", "time"];

/// The layer: formats each record and hands the line to `writer`.
pub struct Bunyan<W> {
    /// `{"v":0,"name":"<name>","msg":`, the same at the start of every line.
    head: String,
    /// `,"hostname":"<host>","pid":<pid>,"time":"`, the same after every level.
    host_and_pid: String,
    writer: W,
}

impl<W> Bunyan<W> {
    /// Records named `name` (the service), written to `writer`. The host name is `HOSTNAME`
    /// when set (Kubernetes sets it to the pod's name), else empty.
    pub fn new(name: &str, writer: W) -> Self {
        let mut head = String::from("{\"v\":0,\"name\":");
        string(&mut head, name);
        head.push_str(",\"msg\":");
        let mut host_and_pid = String::from(",\"hostname\":");
        string(
            &mut host_and_pid,
            &std::env::var("HOSTNAME").unwrap_or_default(),
        );
        let _ = write!(host_and_pid, ",\"pid\":{},\"time\":\"", std::process::id());
        Self {
            head,
            host_and_pid,
            writer,
        }
    }
}

/// The fields of a span (its parents' first) or of an event, as JSON members, each starting
/// with a comma.
struct Fields {
    json: String,
    /// For a span: where each member starts in `json`, by name, so a field recorded again
    /// replaces its value. `None` for an event, whose fields are recorded once.
    members: Option<Vec<(&'static str, usize)>>,
    /// How many of `members` a new member may replace: while a span records its own fields
    /// (unique in its callsite), only its parents'; afterwards, all.
    replaceable: usize,
    /// For an event: its message, which becomes `msg` rather than a member.
    message: Option<String>,
    opened: Instant,
}

impl Fields {
    /// A span's: the parent's fields, with room for `more` of its own.
    fn span(parent: Option<&Fields>, more: usize) -> Self {
        let mut json = String::with_capacity(parent.map_or(0, |p| p.json.len()) + 40 * more);
        let mut members =
            Vec::with_capacity(parent.and_then(|p| p.members.as_ref()).map_or(0, Vec::len) + more);
        if let Some(parent) = parent {
            json.push_str(&parent.json);
            members.extend(parent.members.iter().flatten().copied());
        }
        Self {
            json,
            replaceable: members.len(),
            members: Some(members),
            message: None,
            opened: Instant::now(),
        }
    }

    fn event() -> Self {
        Self {
            json: String::new(),
            members: None,
            replaceable: 0,
            message: None,
            opened: Instant::now(),
        }
    }

    /// Starts the member `name` (a span's removes its earlier value); `None` for a name left
    /// out.
    fn member(&mut self, name: &'static str) -> Option<&mut String> {
        let name = usable(name)?;
        if let Some(members) = &mut self.members {
            let replaceable = &members[..self.replaceable.min(members.len())];
            if let Some(index) = replaceable.iter().position(|(n, _)| *n == name) {
                let (_, start) = members.remove(index);
                let end = members.get(index).map_or(self.json.len(), |(_, at)| *at);
                self.json.drain(start..end);
                for (_, at) in &mut members[index..] {
                    *at -= end - start;
                }
            }
            members.push((name, self.json.len()));
        }
        self.json.push(',');
        string(&mut self.json, name);
        self.json.push(':');
        Some(&mut self.json)
    }

    /// Whether `field` is an event's message.
    fn is_message(&self, field: &Field) -> bool {
        self.members.is_none() && field.name() == "message"
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.is_message(field) {
            let mut message = String::new();
            let _ = write!(message, "{value:?}");
            self.message = Some(message);
        } else if let Some(out) = self.member(field.name()) {
            debug_string(out, value);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if self.is_message(field) {
            self.message = Some(value.to_owned());
        } else if let Some(out) = self.member(field.name()) {
            string(out, value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if let Some(out) = self.member(field.name()) {
            let _ = write!(out, "{value}");
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if let Some(out) = self.member(field.name()) {
            let _ = write!(out, "{value}");
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if let Some(out) = self.member(field.name()) {
            number(out, value);
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if let Some(out) = self.member(field.name()) {
            let _ = write!(out, "{value}");
        }
    }
}

/// `name` as a member name, or `None` for names left out: the core fields, and the
/// `log.*` fields that `tracing-log` adds to records of the `log` crate (their target,
/// file and line are the record's own already).
fn usable(name: &'static str) -> Option<&'static str> {
    let name = name.strip_prefix("r#").unwrap_or(name);
    (!name.starts_with("log.") && !CORE_FIELDS.contains(&name)).then_some(name)
}

thread_local! {
    /// The line being written, reused from one line to the next.
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
}

impl<S, W> Layer<S> for Bunyan<W>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
    W: for<'writer> MakeWriter<'writer> + 'static,
{
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = {
            let parent = span.parent();
            let extensions = parent.as_ref().map(|parent| parent.extensions());
            let more = attributes.metadata().fields().len();
            Fields::span(extensions.as_ref().and_then(|e| e.get::<Fields>()), more)
        };
        attributes.record(&mut fields);
        fields.replaceable = usize::MAX;
        span.extensions_mut().insert(fields);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<Fields>()
        {
            values.record(fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::event();
        event.record(&mut fields);
        let metadata = event.metadata();
        let span = ctx.event_span(event);
        let extensions = span.as_ref().map(|span| span.extensions());
        let span_fields = extensions.as_ref().and_then(|e| e.get::<Fields>());
        self.write_line(metadata, |line| {
            line.push('"');
            if let Some(span) = &span {
                span_label(line, span.metadata(), "EVENT");
                line.push(' ');
            }
            let message = fields.message.as_deref().unwrap_or(metadata.target());
            escape(line, message);
            line.push('"');
            self.rest(line, metadata);
            line.push_str(&fields.json);
            if let Some(span_fields) = span_fields {
                line.push_str(&span_fields.json);
            }
        });
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let extensions = span.extensions();
        let fields = extensions.get::<Fields>();
        let metadata = span.metadata();
        self.write_line(metadata, |line| {
            line.push('"');
            span_label(line, metadata, "END");
            line.push('"');
            self.rest(line, metadata);
            if let Some(fields) = fields {
                line.push_str(&fields.json);
                let elapsed = fields.opened.elapsed().as_millis();
                let _ = write!(line, ",\"elapsed_milliseconds\":{elapsed}");
            }
        });
    }
}

impl<W: for<'writer> MakeWriter<'writer>> Bunyan<W> {
    /// Writes one line: the head, what `body` writes (the message, then through
    /// [`Bunyan::rest`]), and the closing brace.
    fn write_line(&self, metadata: &Metadata<'_>, body: impl FnOnce(&mut String)) {
        let write = |line: &mut String| {
            line.clear();
            line.push_str(&self.head);
            body(line);
            line.push_str("}\n");
            let _ = self
                .writer
                .make_writer_for(metadata)
                .write_all(line.as_bytes());
        };
        // A line written while another is (a `Debug` implementation that logs) gets a
        // buffer of its own.
        LINE.with(|line| match line.try_borrow_mut() {
            Ok(mut line) => write(&mut line),
            Err(_) => write(&mut String::new()),
        });
    }

    /// What follows the message: the level, host, pid and time, and where the record
    /// comes from.
    fn rest(&self, line: &mut String, metadata: &Metadata<'_>) {
        let _ = write!(line, ",\"level\":{}", level(metadata.level()));
        line.push_str(&self.host_and_pid);
        // RFC 3339 with nanoseconds is 30 bytes: formatted on the stack.
        let mut time = [0_u8; 40];
        let free = {
            let mut unused = &mut time[..];
            let _ = OffsetDateTime::now_utc().format_into(&mut unused, &Rfc3339);
            unused.len()
        };
        line.push_str(std::str::from_utf8(&time[..time.len() - free]).unwrap_or_default());
        line.push_str("\",\"target\":");
        string(line, metadata.target());
        match metadata.line() {
            Some(number) => {
                let _ = write!(line, ",\"line\":{number}");
            }
            None => line.push_str(",\"line\":null"),
        }
        line.push_str(",\"file\":");
        match metadata.file() {
            Some(file) => string(line, file),
            None => line.push_str("null"),
        }
    }
}

/// Bunyan's levels: 10 trace, 20 debug, 30 info, 40 warn, 50 error.
fn level(level: &Level) -> u8 {
    match *level {
        Level::TRACE => 10,
        Level::DEBUG => 20,
        Level::INFO => 30,
        Level::WARN => 40,
        Level::ERROR => 50,
    }
}

/// `[HTTP REQUEST - END]`, without the brackets' quotes.
fn span_label(line: &mut String, metadata: &Metadata<'_>, kind: &str) {
    line.push('[');
    let name = metadata.name();
    if name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b' ' || b == b'_')
    {
        line.extend(name.chars().map(|c| c.to_ascii_uppercase()));
    } else {
        for upper in name.chars().flat_map(char::to_uppercase) {
            escape(line, upper.encode_utf8(&mut [0; 4]));
        }
    }
    let _ = write!(line, " - {kind}]");
}

/// `text` as a JSON string.
fn string(out: &mut String, text: &str) {
    out.push('"');
    escape(out, text);
    out.push('"');
}

/// A value's `Debug` form (a `%value`'s `Display` form) as a JSON string.
fn debug_string(out: &mut String, value: &dyn fmt::Debug) {
    out.push('"');
    let _ = write!(Escaped(out), "{value:?}");
    out.push('"');
}

/// A number; JSON has no NaN or infinity, which become `null`.
fn number(out: &mut String, value: f64) {
    if value.is_finite() {
        let _ = write!(out, "{value}");
    } else {
        out.push_str("null");
    }
}

fn escape(out: &mut String, text: &str) {
    let _ = Escaped(out).write_str(text);
}

/// Writes what it is given as the inside of a JSON string (RFC 8259 §7): quotes,
/// backslashes and control characters escaped.
struct Escaped<'a>(&'a mut String);

impl fmt::Write for Escaped<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        // Most text needs no escaping: one pass to find out, which the compiler vectorizes.
        if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
            self.0.push_str(text);
            return Ok(());
        }
        let mut start = 0;
        for (at, byte) in text.bytes().enumerate() {
            let escaped = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x00..=0x1f => "",
                _ => continue,
            };
            // Every byte matched above is ASCII, so `at` is a character boundary.
            self.0.push_str(&text[start..at]);
            if escaped.is_empty() {
                write!(self.0, "\\u{byte:04x}")?;
            } else {
                self.0.push_str(escaped);
            }
            start = at + 1;
        }
        self.0.push_str(&text[start..]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::Value;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// The lines written while `log` runs, parsed.
    fn lines(log: impl FnOnce()) -> Vec<Value> {
        let written = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = Arc::clone(&written);
        let layer = Bunyan::new("svc", move || Sink(Arc::clone(&sink)));
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, log);
        let text = String::from_utf8(written.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect()
    }

    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_event_is_one_bunyan_record() {
        let lines = lines(|| tracing::warn!(count = 3, ok = true, ratio = 0.5, "it \"broke\"\n"));
        let [record] = lines.as_slice() else {
            panic!("{lines:?}")
        };
        assert_eq!(record["v"], 0);
        assert_eq!(record["name"], "svc");
        assert_eq!(record["msg"], "it \"broke\"\n");
        assert_eq!(record["level"], 40);
        assert_eq!(record["pid"], std::process::id());
        assert!(record["hostname"].is_string());
        assert!(record["time"].as_str().unwrap().ends_with('Z'));
        assert_eq!(record["target"], module_path!());
        assert!(record["line"].is_u64() && record["file"].is_string());
        assert_eq!(record["count"], 3);
        assert_eq!(record["ok"], true);
        assert_eq!(record["ratio"], 0.5);
    }

    #[test]
    fn a_span_is_one_line_when_it_closes_with_every_field() {
        let lines = lines(|| {
            let span = tracing::info_span!(
                "HTTP request",
                http.method = %"GET",
                http.status_code = tracing::field::Empty,
                request_id = "r-1",
            );
            let _entered = span.enter();
            tracing::info!(user = "ada", "handled");
            span.record("http.status_code", 200);
            // Recorded again: the last value wins, once.
            span.record("http.status_code", 201);
        });
        let [event, end] = lines.as_slice() else {
            panic!("{lines:?}")
        };
        assert_eq!(event["msg"], "[HTTP REQUEST - EVENT] handled");
        assert_eq!(event["user"], "ada");
        assert_eq!(event["request_id"], "r-1", "span fields on the event");
        assert_eq!(end["msg"], "[HTTP REQUEST - END]");
        assert_eq!(end["http.method"], "GET");
        assert_eq!(end["http.status_code"], 201);
        assert_eq!(end["request_id"], "r-1");
        assert!(end["elapsed_milliseconds"].is_u64());
        let text = end.to_string();
        assert_eq!(text.matches("http.status_code").count(), 1, "{text}");
    }

    #[test]
    fn a_child_span_carries_its_parents_fields() {
        let lines = lines(|| {
            let parent = tracing::info_span!("outer", request_id = "r-2", tenant = "a");
            let _outer = parent.enter();
            let child = tracing::info_span!("inner", tenant = "b", step = 1);
            let _inner = child.enter();
            tracing::info!("inside");
        });
        let inside = &lines[0];
        assert_eq!(inside["msg"], "[INNER - EVENT] inside");
        assert_eq!(inside["request_id"], "r-2");
        assert_eq!(
            inside["tenant"], "b",
            "the child's value replaces the parent's"
        );
        assert_eq!(inside["step"], 1);
    }

    #[test]
    fn nothing_a_caller_sends_can_break_a_line_or_forge_a_field() {
        let forged = "x\",\"level\":60,\"msg\":\"forged\u{0}\u{1b}\r\t\\";
        let lines = lines(|| {
            tracing::info!(user_agent = forged, name = "core", "{forged}");
        });
        let [record] = lines.as_slice() else {
            panic!("{lines:?}")
        };
        assert_eq!(record["user_agent"], forged);
        assert_eq!(record["msg"], forged);
        assert_eq!(record["level"], 30);
        assert_eq!(
            record["name"], "svc",
            "a field named like a core field is left out"
        );
    }
}
