//! Runs the real binary and reads what it prints.
#![cfg(unix)]

mod helpers;

use helpers::{Service, field};
use serde_json::Value;

const JSON: [(&str, &str); 1] = [("LOG_JSON_OUTPUT", "true")];

#[test]
fn json_lines_are_bunyan_records_that_carry_the_request_id() {
    let mut service = Service::start(&JSON);

    service.get("/health/liveness", &[("x-request-id", "trace-me-1")]);
    let line = service
        .wait_for_line(|line| line.contains("trace-me-1") && line.contains("END"))
        .expect("the request is logged");

    let record: Value = serde_json::from_str(&line).expect("one JSON object per line");
    assert_eq!(record["v"], 0);
    assert_eq!(record["name"], env!("CARGO_PKG_NAME"));
    assert_eq!(record["level"], 30);
    assert_eq!(record["request_id"], "trace-me-1");
    assert_eq!(record["http.method"], "GET");
    assert_eq!(record["http.route"], "/health/liveness");
    assert_eq!(record["http.status_code"], 200);
    for key in ["time", "hostname", "pid", "msg", "elapsed_milliseconds"] {
        assert!(record.get(key).is_some(), "{key} missing from {line}");
    }
}

#[test]
fn actix_server_records_go_through_the_same_formatter() {
    let (_, lines) = Service::start(&JSON).terminate();

    let workers = lines
        .iter()
        .find(|line| line.contains("workers"))
        .expect("actix-server announces its workers");
    let record: Value = serde_json::from_str(workers).expect("a JSON line, not plain text");
    assert_eq!(record["target"], "actix_server::builder");
    assert!(lines.iter().all(|line| line.starts_with('{')), "{lines:#?}");
}

#[test]
fn credentials_never_reach_the_logs_even_at_trace_level() {
    let mut service = Service::start(&[("LOG_JSON_OUTPUT", "true"), ("LOG_LEVEL", "trace")]);

    service.get(
        "/health/liveness?access_token=query-secret-0451",
        &[
            ("authorization", "Bearer header-secret-0451"),
            ("x-request-id", "creds"),
        ],
    );
    service.wait_for_line(|line| line.contains("creds") && line.contains("END"));
    let (_, lines) = service.terminate();

    assert!(lines.len() > 5, "trace logging is on: {lines:#?}");
    for line in &lines {
        assert!(
            !line.contains("secret-0451"),
            "a credential was logged: {line}"
        );
    }
}

#[test]
fn human_readable_lines_carry_the_request_id_too() {
    let mut service = Service::start(&[("LOG_JSON_OUTPUT", "false")]);

    service.get("/health/liveness", &[("x-request-id", "plain-id-7")]);
    let line = service
        .wait_for_line(|line| line.contains("plain-id-7"))
        .expect("the request is logged");

    assert!(!line.starts_with('{'), "{line}");
    assert_eq!(field(&line, "request_id"), "plain-id-7");
    assert!(
        !line.contains('\u{1b}'),
        "no colour codes when stdout is not a terminal"
    );
}

#[test]
fn sigterm_drains_and_exits_cleanly() {
    let (status, lines) = Service::start(&JSON).terminate();

    assert!(status.success(), "{status:?}");
    let messages: Vec<String> = lines.iter().map(|line| field(line, "msg")).collect();
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("shutdown signal received")),
        "{messages:#?}"
    );
    assert!(
        messages.iter().any(|m| m == "shutdown complete"),
        "{messages:#?}"
    );
}
