use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::helpers::spawn_app;
use crate::service::health::{Cached, CheckResult, HealthCheck};
use serde_json::{Value, json};
use tokio::sync::Notify;

/// A dependency check whose answer the test chooses.
struct Fixed {
    name: &'static str,
    answer: CheckResult,
    delay: Duration,
}

impl Fixed {
    fn up(name: &'static str) -> Self {
        Self {
            name,
            answer: Ok(()),
            delay: Duration::ZERO,
        }
    }

    fn down(name: &'static str, reason: &str) -> Self {
        Self {
            name,
            answer: Err(reason.to_owned()),
            delay: Duration::ZERO,
        }
    }
}

impl HealthCheck for Fixed {
    fn name(&self) -> &'static str {
        self.name
    }

    fn check(&self) -> std::pin::Pin<Box<dyn Future<Output = CheckResult> + Send + '_>> {
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            self.answer.clone()
        })
    }
}

#[tokio::test]
async fn liveness_answers_alive() {
    let app = spawn_app().await;

    let response = app.get("/health/liveness").await;

    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "status": "alive" })
    );
}

#[tokio::test]
async fn readiness_is_up_and_lists_every_check_when_all_pass() {
    let app = spawn_app().await;
    // The service's own dependencies (database, identity provider) come up first.
    app.wait_until_ready().await;
    app.readiness.register(Fixed::up("cache"));
    app.readiness.register(Fixed::up("queue"));

    let response = app.get("/health/readiness").await;

    assert_eq!(response.status(), 200);
    let body = response.json::<Value>().await.unwrap();
    assert_eq!(body["status"], "up");
    assert_eq!(body["checks"]["cache"], json!({ "status": "up" }));
    assert_eq!(body["checks"]["queue"], json!({ "status": "up" }));
}

#[tokio::test]
async fn readiness_answers_503_naming_the_failing_check_but_not_why() {
    let app = spawn_app().await;
    app.readiness.register(Fixed::up("cache"));
    app.readiness
        .register(Fixed::down("queue", "connection refused by 10.0.3.7:5672"));

    let response = app.get("/health/readiness").await;

    assert_eq!(response.status(), 503);
    let body = response.json::<Value>().await.unwrap();
    assert_eq!(body["status"], "down");
    assert_eq!(body["checks"]["cache"], json!({ "status": "up" }));
    // The reason (an address, an error) goes to the log; the public probe says "down".
    assert_eq!(body["checks"]["queue"], json!({ "status": "down" }));
}

#[tokio::test]
async fn a_cached_check_answers_frequent_probes_from_one_result() {
    let app = spawn_app().await;
    app.wait_until_ready().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Counted {
        calls: Arc::clone(&calls),
        failures: 0,
    };
    // Long enough for ten probes on a busy machine.
    app.readiness
        .register(Cached::new(counted, Duration::from_secs(2)));

    let probes = (0..10).map(|_| app.get("/health/readiness"));
    for response in futures_util::future::join_all(probes).await {
        assert_eq!(response.status(), 200);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "ten probes, one check");

    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(app.get("/health/readiness").await.status(), 200);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "checked again once the result is old"
    );
}

#[tokio::test]
async fn a_failed_check_is_asked_again_at_the_next_probe() {
    let app = spawn_app().await;
    app.wait_until_ready().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let starting = Counted {
        calls: Arc::clone(&calls),
        failures: 2,
    };
    app.readiness
        .register(Cached::new(starting, Duration::from_secs(60)));

    // A dependency still starting: each probe asks again, and the first success counts.
    assert_eq!(app.get("/health/readiness").await.status(), 503);
    assert_eq!(app.get("/health/readiness").await.status(), 503);
    assert_eq!(app.get("/health/readiness").await.status(), 200);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // The success is remembered.
    assert_eq!(app.get("/health/readiness").await.status(), 200);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

/// Counts how often it is asked; fails the first `failures` times.
struct Counted {
    calls: Arc<AtomicUsize>,
    failures: usize,
}

impl HealthCheck for Counted {
    fn name(&self) -> &'static str {
        "counted"
    }

    fn check(&self) -> std::pin::Pin<Box<dyn Future<Output = CheckResult> + Send + '_>> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        let result = if call < self.failures {
            Err("starting".to_owned())
        } else {
            Ok(())
        };
        Box::pin(std::future::ready(result))
    }
}

#[tokio::test]
async fn a_check_that_does_not_answer_in_time_fails_readiness() {
    let app = spawn_app().await;
    let mut slow = Fixed::up("slow");
    slow.delay = Duration::from_secs(30);
    app.readiness.register(slow);

    let response = app.get("/health/readiness").await;

    assert_eq!(response.status(), 503);
    let body = response.json::<Value>().await.unwrap();
    assert_eq!(body["checks"]["slow"]["status"], "down");
}

#[tokio::test]
async fn readiness_turns_503_when_shutdown_begins_and_in_flight_requests_finish() {
    let app = spawn_app().await;
    let (started, proceed) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    app.readiness.register(Probe {
        started: Arc::clone(&started),
        proceed: Arc::clone(&proceed),
    });
    // A readiness request is in flight, inside its dependency check, when the signal arrives.
    let in_flight = tokio::spawn(
        app.client
            .get(format!("{}/health/readiness", app.address))
            .send(),
    );
    started.notified().await;

    let readiness = app.readiness.clone();
    let server = app.begin_shutdown();
    // The check answers once the server has taken the signal.
    let marked = tokio::time::timeout(Duration::from_secs(10), async {
        while !readiness.is_shutting_down() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    marked.await.expect("shutdown begins");
    proceed.notify_one();

    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight request is answered");
    assert_eq!(response.status(), 503);
    let body = response.json::<Value>().await.unwrap();
    assert_eq!(body["status"], "down");
    assert_eq!(body["checks"]["probe"], json!({ "status": "up" }));
    assert_eq!(body["checks"]["shutdown"], json!({ "status": "down" }));
    let stopped = tokio::time::timeout(Duration::from_secs(10), server).await;
    assert!(
        matches!(stopped, Ok(Ok(Ok(())))),
        "the server drains and stops: {stopped:?}"
    );
}

/// Tells the test when a readiness request has reached it, then answers when told to.
struct Probe {
    started: Arc<Notify>,
    proceed: Arc<Notify>,
}

impl HealthCheck for Probe {
    fn name(&self) -> &'static str {
        "probe"
    }

    fn check(&self) -> std::pin::Pin<Box<dyn Future<Output = CheckResult> + Send + '_>> {
        Box::pin(async move {
            self.started.notify_one();
            self.proceed.notified().await;
            Ok(())
        })
    }
}
