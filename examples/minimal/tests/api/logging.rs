//! Runs the real binary and reads what it prints.
#![cfg(unix)]

use crate::helpers::{Service, field, http_client};
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
fn a_request_is_one_line_and_no_line_is_lost_at_shutdown() {
    const REQUESTS: usize = 2000;
    let service = Service::start(&JSON);
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let client = http_client();
        let url = format!("{}/health/liveness", service.address);
        let ids: Vec<usize> = (0..REQUESTS).collect();
        // 50 at a time, so the lines queue up faster than one at a time would.
        for batch in ids.chunks(50) {
            let requests = batch.iter().map(|i| {
                let request = client
                    .get(&url)
                    .header("x-request-id", format!("burst-{i}"))
                    .header("user-agent", "burst-test");
                async move { request.send().await.map(|r| r.status().as_u16()) }
            });
            let statuses = futures_util::future::join_all(requests).await;
            assert!(
                statuses.iter().all(|s| matches!(s, Ok(200))),
                "{statuses:?}"
            );
        }
    });

    // Stopped at once: whatever is still queued for the writer is written before exit.
    let (status, lines) = service.terminate();
    assert!(status.success(), "{status:?}");
    let records: Vec<Value> = lines
        .iter()
        .filter(|line| line.contains("\"burst-"))
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    assert_eq!(records.len(), REQUESTS, "one line per request, none lost");
    let ids: std::collections::HashSet<&str> = records
        .iter()
        .filter_map(|record| record["request_id"].as_str())
        .collect();
    assert_eq!(ids.len(), REQUESTS);
    for record in &records {
        assert_eq!(record["msg"], "[HTTP REQUEST - END]");
        assert_eq!(record["http.status_code"], 200);
        assert_eq!(record["http.user_agent"], "burst-test");
        assert_eq!(record["http.route"], "/health/liveness");
        assert!(record["elapsed_milliseconds"].is_number(), "{record}");
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
fn a_user_agent_cannot_forge_fields_in_human_readable_lines() {
    let mut service = Service::start(&[("LOG_JSON_OUTPUT", "false")]);

    let forged = r#"curl/8" request_id=forged http.status_code=200 x="#;
    service.get(
        "/health/liveness",
        &[("x-request-id", "ua-probe"), ("user-agent", forged)],
    );
    let line = service
        .wait_for_line(|line| line.contains("ua-probe"))
        .expect("the request is logged");

    // Quoted and escaped: the forged pairs stay inside the user agent's value.
    assert!(
        line.contains(r#"http.user_agent="curl/8\" request_id=forged http.status_code=200 x=""#),
        "{line}"
    );
    assert!(line.contains(" request_id=ua-probe"), "{line}");
}

#[cfg(feature = "auth")]
#[test]
fn an_error_message_cannot_forge_lines_in_human_readable_output() {
    let mut service = Service::start(&[("LOG_JSON_OUTPUT", "false")]);

    // The development issuer refuses an unknown field, and its error names it, newline
    // and all.
    let status = service.send(
        reqwest::Method::POST,
        "/dev-issuer/token",
        &[("x-request-id", "error-probe")],
        Some(r#"{"a\nINFO forged=1": 1}"#),
    );
    assert_eq!(status, 422);
    service.get("/health/liveness", &[("x-request-id", "after-probe")]);

    let line = service
        .wait_for_line(|line| line.contains("error-probe"))
        .expect("the request is logged");
    assert!(line.contains(r"exception.message="), "{line}");
    assert!(
        line.contains(r"a\nINFO forged=1"),
        "escaped in place: {line}"
    );
    let next = service
        .wait_for_line(|line| line.starts_with("INFO forged") || line.contains("after-probe"))
        .expect("the next request is logged");
    assert!(next.contains("after-probe"), "a forged line: {next}");

    // JSON lines escape it anyway, and carry the error's message and status as they did.
    let mut service = Service::start(&JSON);
    service.send(
        reqwest::Method::POST,
        "/dev-issuer/token",
        &[("x-request-id", "json-error-probe")],
        Some(r#"{"a\nINFO forged=1": 1}"#),
    );
    let line = service
        .wait_for_line(|line| line.contains("json-error-probe"))
        .expect("the request is logged");
    let record: Value = serde_json::from_str(&line).expect("one JSON object per line");
    let message = record["exception.message"].as_str().unwrap_or_default();
    assert!(message.contains("a\nINFO forged=1"), "{line}");
    assert!(record["exception.details"].is_string(), "{line}");
    assert_eq!(record["http.status_code"], 422);
    assert_eq!(
        record["otel.status_code"], "OK",
        "a client error is not the server's"
    );
}

#[test]
fn the_client_address_is_the_peer_unless_a_trusted_proxy_forwards_it() {
    let forwarded = [
        ("x-forwarded-for", "203.0.113.9"),
        ("x-request-id", "xff-1"),
    ];

    let mut direct = Service::start(&JSON);
    direct.get("/health/liveness", &forwarded);
    let line = direct
        .wait_for_line(|line| line.contains("xff-1") && line.contains("END"))
        .expect("the request is logged");
    // Anyone can send the header: without TRUSTED_PROXIES it is ignored.
    assert_eq!(field(&line, "http.client_ip"), "127.0.0.1");

    let mut proxied = Service::start(&[
        ("LOG_JSON_OUTPUT", "true"),
        ("TRUSTED_PROXIES", "127.0.0.0/8"),
    ]);
    proxied.get("/health/liveness", &forwarded);
    let line = proxied
        .wait_for_line(|line| line.contains("xff-1") && line.contains("END"))
        .expect("the request is logged");
    assert_eq!(field(&line, "http.client_ip"), "203.0.113.9");
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
