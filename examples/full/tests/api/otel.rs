//! OpenTelemetry: a caller's `traceparent` continues its trace, the trace id is on the
//! request's log lines, and the spans reach an OTLP/HTTP receiver.
#![cfg(unix)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use crate::helpers::{Service, field};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

/// A minimal OTLP/HTTP receiver: answers 200 to every request and hands over the path and
/// body of each.
fn otlp_receiver() -> (u16, Receiver<(String, Vec<u8>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (sender, received) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut length = 0;
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).unwrap();
                if header.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let path = request_line.split(' ').nth(1).unwrap_or("").to_owned();
            let _ = sender.send((path, body));
            let _ = reader.get_mut().write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n",
            );
        }
    });
    (port, received)
}

fn hex(bytes: &str) -> Vec<u8> {
    (0..bytes.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&bytes[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn a_traceparent_is_continued_logged_and_exported_over_otlp() {
    let (port, received) = otlp_receiver();
    let endpoint = format!("http://127.0.0.1:{port}");
    let mut service = Service::start(&[
        ("LOG_JSON_OUTPUT", "true"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ]);

    let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    let status = service.get("/health/liveness", &[("traceparent", &traceparent)]);
    assert_eq!(status, 200);

    let line = service
        .wait_for_line(|line| line.contains("/health/liveness") && line.contains("END"))
        .expect("the request is logged");
    assert_eq!(field(&line, "trace_id"), TRACE_ID);

    let (path, body) = received
        .recv_timeout(Duration::from_secs(10))
        .expect("spans are exported within the batch delay");
    assert_eq!(path, "/v1/traces");
    let contains = |needle: &[u8]| body.windows(needle.len()).any(|window| window == needle);
    assert!(
        contains(&hex(TRACE_ID)),
        "the exported span carries the caller's trace id"
    );
    assert!(
        contains(&hex(PARENT_ID)),
        "and names the caller's span as its parent"
    );
    assert!(
        contains(b"GET /health/liveness"),
        "the span is named after the route"
    );
}

#[test]
fn a_made_up_method_does_not_name_a_span() {
    let (port, received) = otlp_receiver();
    let endpoint = format!("http://127.0.0.1:{port}");
    let service = Service::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ]);

    // Any token is a method; span names stay bounded: `HTTP` for the others (semconv).
    let made_up = reqwest::Method::from_bytes(b"FROBNICATE").unwrap();
    service.send(made_up, "/health/liveness", &[], None);

    let (_, body) = received
        .recv_timeout(Duration::from_secs(10))
        .expect("spans are exported within the batch delay");
    let contains = |needle: &[u8]| body.windows(needle.len()).any(|window| window == needle);
    assert!(contains(b"HTTP /health/liveness"), "named HTTP");
    assert!(!contains(b"FROBNICATE /health/liveness"));
}

#[test]
fn a_request_without_traceparent_starts_a_trace_and_logs_its_id() {
    let mut service = Service::start(&[("LOG_JSON_OUTPUT", "true")]);

    assert_eq!(service.get("/health/liveness", &[]), 200);

    let line = service
        .wait_for_line(|line| line.contains("/health/liveness") && line.contains("END"))
        .expect("the request is logged");
    let trace_id = field(&line, "trace_id");
    assert_eq!(trace_id.len(), 32, "{trace_id}");
    assert_ne!(trace_id, TRACE_ID);
    assert_ne!(trace_id, "0".repeat(32));
}
