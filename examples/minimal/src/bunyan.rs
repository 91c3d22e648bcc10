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

use std::cell::{Cell, RefCell};
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::time::{Duration, Instant, SystemTime};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_log::NormalizeEvent;
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
            if value < 0 {
                out.push('-');
            }
            decimal(out, value.unsigned_abs());
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if let Some(out) = self.member(field.name()) {
            decimal(out, value);
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
/// `log.*` fields that `tracing-log` adds to records of the `log` crate (the line's target,
/// file and line are the record's own, from [`NormalizeEvent`]).
fn usable(name: &'static str) -> Option<&'static str> {
    let name = name.strip_prefix("r#").unwrap_or(name);
    (!name.starts_with("log.") && !CORE_FIELDS.contains(&name)).then_some(name)
}

thread_local! {
    /// The line being written, reused from one line to the next.
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
    /// The second this thread last wrote a time in, with its date and time of day.
    static SECOND: Cell<Option<(u64, [u8; 19])>> = const { Cell::new(None) };
    /// The closing label and origin of each kind of span (each callsite: a handful in a
    /// process) this thread has closed one of, written once rather than on every line.
    static CLOSED: RefCell<Vec<(&'static Metadata<'static>, Closing)>> =
        const { RefCell::new(Vec::new()) };
}

/// `since_epoch` in RFC 3339 (UTC, nanoseconds without their trailing zeros), as `time`
/// writes it. The date and time of day change once a second, so a thread formats them once a
/// second, not on every line.
fn timestamp(line: &mut String, since_epoch: Duration) {
    let (second, nanos) = (since_epoch.as_secs(), since_epoch.subsec_nanos());
    match SECOND.get() {
        Some((cached, date_time)) if cached == second => {
            line.push_str(std::str::from_utf8(&date_time).unwrap_or_default());
            if nanos != 0 {
                let mut fraction = *b".000000000";
                decimal_into(&mut fraction[1..], nanos.into());
                let fraction = std::str::from_utf8(&fraction).unwrap_or_default();
                line.push_str(fraction.trim_end_matches('0'));
            }
            line.push('Z');
        }
        _ => {
            // RFC 3339 with nanoseconds is 30 bytes: formatted on the stack.
            let mut time = [0_u8; 40];
            let free = {
                let mut unused = &mut time[..];
                let now = OffsetDateTime::UNIX_EPOCH + since_epoch;
                let _ = now.format_into(&mut unused, &Rfc3339);
                unused.len()
            };
            let written = std::str::from_utf8(&time[..time.len() - free]).unwrap_or_default();
            line.push_str(written);
            if let Some(date_time) = written.as_bytes().first_chunk() {
                SECOND.set(Some((second, *date_time)));
            }
        }
    }
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
        // A record of the `log` crate arrives with `log` as its target and its origin in
        // `log.*` fields: the line gets the record's own target, file and line.
        let normalized = event.normalized_metadata();
        let metadata = normalized.as_ref().unwrap_or_else(|| event.metadata());
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
            self.level_and_time(line, metadata);
            origin(line, metadata);
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
            CLOSED.with_borrow_mut(|closed| {
                let at = match closed.iter().position(|(m, _)| std::ptr::eq(*m, metadata)) {
                    Some(at) => at,
                    None => {
                        closed.push((metadata, Closing::of(metadata)));
                        closed.len() - 1
                    }
                };
                line.push_str(&closed[at].1.label);
                self.level_and_time(line, metadata);
                line.push_str(&closed[at].1.origin);
            });
            if let Some(fields) = fields {
                line.push_str(&fields.json);
                line.push_str(",\"elapsed_milliseconds\":");
                let elapsed = fields.opened.elapsed().as_millis();
                decimal(line, u64::try_from(elapsed).unwrap_or(u64::MAX));
            }
        });
    }
}

impl<W: for<'writer> MakeWriter<'writer>> Bunyan<W> {
    /// Writes one line: the head, what `body` writes (the message, the level and time, the
    /// origin and the fields), and the closing brace.
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

    /// What follows the message: the level, host, pid and time.
    fn level_and_time(&self, line: &mut String, metadata: &Metadata<'_>) {
        line.push_str(level(metadata.level()));
        line.push_str(&self.host_and_pid);
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH);
        timestamp(line, now.unwrap_or_default());
        line.push('"');
    }
}

/// What follows the time: where the record comes from (`target`, `line` and `file`).
fn origin(line: &mut String, metadata: &Metadata<'_>) {
    line.push_str(",\"target\":");
    string(line, metadata.target());
    match metadata.line() {
        Some(number) => {
            line.push_str(",\"line\":");
            decimal(line, number.into());
        }
        None => line.push_str(",\"line\":null"),
    }
    line.push_str(",\"file\":");
    match metadata.file() {
        Some(file) => string(line, file),
        None => line.push_str("null"),
    }
}

/// The parts of a span's closing line that depend only on where the span is declared.
struct Closing {
    /// `"[HTTP REQUEST - END]"`, quoted.
    label: String,
    /// See [`origin`].
    origin: String,
}

impl Closing {
    fn of(metadata: &Metadata<'_>) -> Self {
        let mut label = String::from('"');
        span_label(&mut label, metadata, "END");
        label.push('"');
        let mut where_from = String::new();
        origin(&mut where_from, metadata);
        Self {
            label,
            origin: where_from,
        }
    }
}

/// The `level` member, by bunyan's numbers: 10 trace, 20 debug, 30 info, 40 warn, 50 error.
fn level(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => ",\"level\":10",
        Level::DEBUG => ",\"level\":20",
        Level::INFO => ",\"level\":30",
        Level::WARN => ",\"level\":40",
        Level::ERROR => ",\"level\":50",
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
        let start = line.len();
        line.push_str(name);
        line[start..].make_ascii_uppercase();
    } else {
        for upper in name.chars().flat_map(char::to_uppercase) {
            escape(line, upper.encode_utf8(&mut [0; 4]));
        }
    }
    line.push_str(" - ");
    line.push_str(kind);
    line.push(']');
}

/// `text` as a JSON string.
fn string(out: &mut String, text: &str) {
    out.push('"');
    escape(out, text);
    out.push('"');
}

/// A value's `Debug` form (a `%value`'s `Display` form) as a JSON string. Written as it
/// comes and escaped afterwards if it has to be: a value written in many pieces (an address,
/// a number with its sign) is then checked once, not piece by piece.
fn debug_string(out: &mut String, value: &dyn fmt::Debug) {
    out.push('"');
    let start = out.len();
    let _ = write!(out, "{value:?}");
    if !is_plain(&out[start..]) {
        let raw = out.split_off(start);
        escape(out, &raw);
    }
    out.push('"');
}

/// `value` in decimal, written without the formatting machinery (a `write!` costs more than
/// the digits, on every line).
fn decimal(out: &mut String, value: u64) {
    let mut digits = [b'0'; 20];
    let start = decimal_into(&mut digits, value);
    out.push_str(std::str::from_utf8(&digits[start..]).unwrap_or_default());
}

/// Writes `value`'s decimal digits at the end of `digits` and returns where they start; the
/// bytes before are left as they were (zeros, for a fixed width).
fn decimal_into(digits: &mut [u8], mut value: u64) -> usize {
    let mut start = digits.len();
    while start > 0 {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    start
}

/// A number; JSON has no NaN or infinity, which become `null`.
fn number(out: &mut String, value: f64) {
    if value.is_finite() {
        let _ = write!(out, "{value}");
    } else {
        out.push_str("null");
    }
}

/// Whether `text` can go into a JSON string as it is: no quote, backslash or control
/// character. Checked 64 bytes at a time without stopping early inside a chunk, which the
/// compiler turns into vector instructions.
fn is_plain(text: &str) -> bool {
    let plain = |b: u8| b >= 0x20 && b != b'"' && b != b'\\';
    text.as_bytes()
        .chunks(64)
        .all(|chunk| chunk.iter().fold(true, |ok, &b| ok & plain(b)))
}

/// Writes `text` as the inside of a JSON string (RFC 8259 §7): quotes, backslashes and
/// control characters escaped.
fn escape(out: &mut String, text: &str) {
    if is_plain(text) {
        out.push_str(text);
        return;
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
        out.push_str(&text[start..at]);
        if escaped.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escaped);
        }
        start = at + 1;
    }
    out.push_str(&text[start..]);
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
    fn each_kind_of_span_closes_with_its_own_label_and_origin() {
        let declared = line!() + 3;
        let lines = lines(|| {
            for _ in 0..2 {
                drop(tracing::info_span!("first"));
                drop(tracing::warn_span!(target: "elsewhere", "second"));
            }
        });
        let [first, second, first_again, second_again] = lines.as_slice() else {
            panic!("{lines:?}")
        };
        for (record, label, target, line) in [
            (first, "[FIRST - END]", module_path!(), declared),
            (second, "[SECOND - END]", "elsewhere", declared + 1),
        ] {
            assert_eq!(record["msg"], label);
            assert_eq!(record["target"], target);
            assert_eq!(record["line"], line);
            assert_eq!(record["file"], file!());
        }
        assert_eq!(first["level"], 30);
        assert_eq!(second["level"], 40);
        for (again, once) in [(first_again, first), (second_again, second)] {
            for member in ["msg", "level", "target", "line", "file"] {
                assert_eq!(again[member], once[member], "{member}");
            }
        }
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
    fn a_record_of_the_log_crate_keeps_its_own_target_file_and_line() {
        let lines = lines(|| {
            let record = log::Record::builder()
                .args(format_args!("starting new connection"))
                .level(log::Level::Info)
                .target("reqwest::connect")
                .module_path_static(Some("reqwest::connect"))
                .file_static(Some("src/connect.rs"))
                .line(Some(42))
                .build();
            tracing_log::format_trace(&record).unwrap();
        });
        let [record] = lines.as_slice() else {
            panic!("{lines:?}")
        };
        assert_eq!(record["msg"], "starting new connection");
        assert_eq!(record["level"], 30);
        assert_eq!(record["target"], "reqwest::connect");
        assert_eq!(record["file"], "src/connect.rs");
        assert_eq!(record["line"], 42);
        let text = record.to_string();
        assert!(!text.contains("log."), "no log.* field: {text}");
    }

    #[test]
    fn times_are_written_as_the_time_crate_writes_them() {
        let second = Duration::from_secs(1_764_583_508);
        for nanos in [0, 1, 500_000_000, 123_456_789, 999_999_999, 7_000] {
            let since_epoch = second + Duration::from_nanos(nanos);
            let expected = (OffsetDateTime::UNIX_EPOCH + since_epoch)
                .format(&Rfc3339)
                .unwrap();
            // The thread's first call formats with `time` and keeps the second; every other
            // call in that second, each of these twice, comes from the cache.
            for _ in 0..2 {
                let mut line = String::new();
                timestamp(&mut line, since_epoch);
                assert_eq!(line, expected);
            }
        }
        let mut line = String::new();
        timestamp(&mut line, second + Duration::from_secs(1));
        assert_eq!(
            line, "2025-12-01T10:05:09Z",
            "a new second is formatted anew"
        );
    }

    #[test]
    fn numbers_are_written_in_decimal() {
        for value in [0, 7, 10, 200, 65_535, u64::MAX] {
            let mut out = String::new();
            decimal(&mut out, value);
            assert_eq!(out, value.to_string());
        }
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
