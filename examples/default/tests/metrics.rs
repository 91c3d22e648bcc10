//! Prometheus metrics: requests by route and status, auth refusals, JWKS fetches and the
//! database pool, on the main port or a port of their own.
//!
//! The recorder is global to the process, so these tests have a binary of their own (the
//! other tests' requests would land in the counts); each holds [`ONE_AT_A_TIME`] and
//! compares counts before and after what it does.

use default_service as service;

// The integration tests' helpers; these tests use a part of them.
#[allow(dead_code)]
#[path = "api/helpers/mod.rs"]
mod helpers;

use helpers::{TestApp, spawn_app, spawn_app_with};

/// Held by each test, so no other test's requests land in the counts it compares.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The sum of the samples of `name` whose labels include `labels`, or 0 when there are none
/// yet. (Summing, not taking the first match: the exposition's order of series is not fixed.)
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter(|(series, _)| {
            let (series_name, series_labels) = series.split_once('{').unwrap_or((series, ""));
            series_name == name
                && labels
                    .iter()
                    .all(|(label, value)| series_labels.contains(&format!("{label}=\"{value}\"")))
        })
        .map(|(_, value)| value.parse::<f64>().expect("a number"))
        .sum()
}

async fn scrape(app: &TestApp) -> String {
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    response.text().await.unwrap()
}

#[tokio::test]
async fn requests_are_counted_and_timed_by_route_and_status() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let app = spawn_app().await;
    let liveness = [
        ("method", "GET"),
        ("route", "/health/liveness"),
        ("status", "200"),
    ];
    let unmatched = [("route", "unmatched"), ("status", "404")];
    let before = scrape(&app).await;

    for _ in 0..3 {
        app.get("/health/liveness").await;
    }
    app.get("/no/such/path/1").await;
    app.get("/no/such/path/2").await;
    // A method a client makes up shares one series too.
    let made_up = reqwest::Method::from_bytes(b"FROBNICATE").unwrap();
    app.client
        .request(made_up, format!("{}/health/liveness", app.address))
        .send()
        .await
        .unwrap();
    let after = scrape(&app).await;

    let count =
        |text: &str, labels: &[(&str, &str)]| sample(text, "http_server_requests_total", labels);
    assert_eq!(count(&after, &liveness) - count(&before, &liveness), 3.0);
    // Unknown paths share one series, whatever the path.
    assert_eq!(count(&after, &unmatched) - count(&before, &unmatched), 2.0);
    assert!(!after.contains("/no/such/path"));
    let other = [("method", "_OTHER"), ("route", "/health/liveness")];
    assert_eq!(count(&after, &other) - count(&before, &other), 1.0);
    assert!(!after.contains("FROBNICATE"));
    let slowest = |text: &str| {
        sample(
            text,
            "http_server_request_duration_seconds_bucket",
            &[
                ("method", "GET"),
                ("route", "/health/liveness"),
                ("le", "+Inf"),
            ],
        )
    };
    assert_eq!(
        slowest(&after) - slowest(&before),
        3.0,
        "every request lands in the +Inf bucket"
    );
    assert!(after.contains("http_server_request_duration_seconds_bucket{"));
}

#[tokio::test]
async fn metrics_can_move_to_a_port_of_their_own() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = spawn_app_with(&[("METRICS_PORT", port.to_string())]).await;
    app.get("/health/liveness").await;

    assert_eq!(
        app.get("/metrics").await.status(),
        404,
        "not on the main port"
    );
    let scraped = app
        .client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), 200);
    let text = scraped.text().await.unwrap();
    assert!(
        sample(
            &text,
            "http_server_requests_total",
            &[("route", "/health/liveness")]
        ) >= 1.0
    );
}

#[cfg(feature = "auth")]
#[tokio::test]
async fn auth_refusals_are_counted_by_reason_and_jwks_fetches_by_trigger() {
    use helpers::issuer::{SigningKey, TestIssuer};
    use jsonwebtoken::Algorithm;
    use serde_json::json;

    let _serial = ONE_AT_A_TIME.lock().await;
    let issuer = TestIssuer::start().await;
    let app = helpers::spawn_app_with_routes(&issuer.settings(), helpers::probe::routes).await;
    app.wait_until_ready().await;
    let reason =
        |text: &str, reason: &str| sample(text, "auth_rejections_total", &[("reason", reason)]);
    let fetches = |text: &str, trigger: &str| {
        sample(
            text,
            "oidc_jwks_fetches_total",
            &[("trigger", trigger), ("outcome", "ok")],
        )
    };
    let before = scrape(&app).await;
    assert!(fetches(&before, "scheduled") >= 1.0, "the keys were loaded");

    app.get("/api/v1/protected").await;
    let expired = issuer
        .token()
        .claim("exp", json!(jsonwebtoken::get_current_timestamp() - 60))
        .sign();
    app.get_with_token("/api/v1/protected", &expired).await;
    app.get_with_token("/api/v1/protected", &expired).await;
    let stranger = SigningKey::generate("stranger", Algorithm::ES256);
    let unknown = issuer.token().signed_by(&stranger).kid("stranger").sign();
    app.get_with_token("/api/v1/protected", &unknown).await;
    let after = scrape(&app).await;

    assert_eq!(
        reason(&after, "missing_token") - reason(&before, "missing_token"),
        1.0
    );
    assert_eq!(reason(&after, "expired") - reason(&before, "expired"), 2.0);
    assert_eq!(
        reason(&after, "unknown_key") - reason(&before, "unknown_key"),
        1.0
    );
    assert_eq!(
        fetches(&after, "unknown_kid") - fetches(&before, "unknown_kid"),
        1.0
    );
}

#[cfg(feature = "database")]
#[tokio::test]
async fn the_database_pool_is_reported_when_scraped() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let app = spawn_app().await;
    app.wait_until_ready().await;

    let text = scrape(&app).await;

    let max = sample(&text, "db_pool_max_connections", &[]);
    assert!(max >= 1.0, "{text}");
    let in_use = sample(&text, "db_pool_connections", &[("state", "in_use")]);
    let idle = sample(&text, "db_pool_connections", &[("state", "idle")]);
    assert!(
        idle + in_use >= 1.0,
        "readiness opened a connection: {text}"
    );
    assert!(idle + in_use <= max);
}
