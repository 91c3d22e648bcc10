//! What every route gets, whatever the options: security headers, CORS, a time limit.

use std::time::Duration;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use crate::service::health::{CheckResult, HealthCheck};

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;

    for path in ["/health/liveness", "/no/such/route"] {
        let response = app.get(path).await;
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(headers["cache-control"], "no-store", "{path}");
        assert_eq!(
            headers["content-security-policy"], "default-src 'none'; frame-ancestors 'none'",
            "{path}"
        );
    }
}

/// A browser's CORS preflight for a GET from `origin` that sends an Authorization header.
async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/health/liveness", app.address),
        )
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn cross_origin_requests_are_refused_by_default() {
    let app = spawn_app().await;

    let preflight = preflight(&app, "https://evil.example").await;

    assert!(!preflight.status().is_success(), "{}", preflight.status());
    let allowed = preflight.headers().get("access-control-allow-origin");
    assert!(allowed.is_none(), "{allowed:?}");
}

#[tokio::test]
async fn listed_origins_may_call_cross_origin() {
    let app = spawn_app_with(&[("CORS_ALLOWED_ORIGINS", "https://app.example")]).await;

    let preflight = preflight(&app, "https://app.example").await;

    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let other = app
        .client
        .get(format!("{}/health/liveness", app.address))
        .header("origin", "https://other.example")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

/// A dependency check that never answers in time.
struct Stuck;

impl HealthCheck for Stuck {
    fn name(&self) -> &'static str {
        "stuck"
    }

    fn check(&self) -> std::pin::Pin<Box<dyn Future<Output = CheckResult> + Send + '_>> {
        Box::pin(async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        })
    }
}

#[tokio::test]
async fn a_request_over_the_time_limit_gets_503() {
    let app = spawn_app_with(&[("REQUEST_TIMEOUT", "1")]).await;
    app.readiness.register(Stuck);

    let response = app.get("/health/readiness").await;

    // The time limit answered, not readiness (whose own check timeout is 2 s).
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert!(response.headers().contains_key("x-request-id"));
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["detail"], "the request took longer than 1 s");
}
