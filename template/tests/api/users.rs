//! The users API, fully integrated: HTTP → auth (a test issuer) → handler → a real
//! database (a fresh SQLite file, or a fresh PostgreSQL database, per test).

use crate::helpers::issuer::{TestIssuer, dev_issuer_token};
use crate::helpers::{TestApp, spawn_app, spawn_app_with, spawn_app_with_routes};
use crate::service::server::Routes;
use serde_json::{Value, json};

struct Harness {
    issuer: TestIssuer,
    app: TestApp,
}

impl Harness {
    async fn start() -> Self {
        let issuer = TestIssuer::start().await;
        let app = spawn_app_with(&issuer.settings()).await;
        app.wait_until_ready().await;
        Self { issuer, app }
    }

    /// A token for `sub`, with a verified email, and the admin role when `admin`.
    fn token(&self, sub: &str, admin: bool) -> String {
        let roles: &[&str] = if admin { &["user", "admin"] } else { &["user"] };
        self.issuer
            .token()
            .claim("sub", json!(sub))
            .claim("preferred_username", json!(format!("{sub}-name")))
            .claim("email", json!(format!("{sub}@example.test")))
            .roles(roles)
            .sign()
    }

    /// A token for `sub` whose verified email is `email`.
    fn token_with_email(&self, sub: &str, email: &str) -> String {
        self.issuer
            .token()
            .claim("sub", json!(sub))
            .claim("email", json!(email))
            .sign()
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .app
            .client
            .request(method, format!("{}{path}", self.app.address))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the request is answered");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn put_me(&self, token: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::PUT, "/api/v1/users/me", token, Some(body))
            .await
    }

    async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, token, None).await
    }
}

#[tokio::test]
async fn put_me_creates_the_profile_from_the_token_then_updates_it() {
    let harness = Harness::start().await;
    let token = harness.token("ada", false);

    let (status, created) = harness.put_me(&token, json!({})).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["id"], "ada");
    assert_eq!(
        created["display_name"], "ada-name",
        "from preferred_username"
    );
    assert_eq!(
        created["email"], "ada@example.test",
        "from the verified email claim"
    );

    let (status, updated) = harness
        .put_me(&token, json!({ "display_name": "Ada L." }))
        .await;
    assert_eq!(status, 200);
    assert_eq!(updated["display_name"], "Ada L.");
    assert_eq!(updated["created_at"], created["created_at"]);

    let (status, me) = harness.get("/api/v1/users/me", &token).await;
    assert_eq!(status, 200);
    assert_eq!(me, updated);
}

#[tokio::test]
async fn get_me_is_404_before_the_profile_exists() {
    let harness = Harness::start().await;

    let (status, problem) = harness
        .get("/api/v1/users/me", &harness.token("nobody", false))
        .await;

    assert_eq!(status, 404);
    assert_eq!(problem["status"], 404);
}

#[tokio::test]
async fn invalid_input_is_a_422_naming_the_field() {
    let harness = Harness::start().await;
    let token = harness.token("ada", false);

    for (body, field) in [
        (json!({ "display_name": "x".repeat(101) }), "display_name"),
        (json!({ "display_name": "   " }), "display_name"),
        (json!({ "email": "not-an-email" }), "email"),
    ] {
        let (status, problem) = harness.put_me(&token, body).await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["invalid-params"][0]["name"], field, "{problem}");
    }
    // Nothing was written.
    assert_eq!(harness.get("/api/v1/users/me", &token).await.0, 404);
}

#[tokio::test]
async fn malformed_bodies_get_precise_4xx_answers() {
    let harness = Harness::start().await;
    let token = harness.token("ada", false);
    let url = format!("{}/api/v1/users/me", harness.app.address);
    let send = |content_type: &'static str, body: &'static str| {
        harness
            .app
            .client
            .put(&url)
            .bearer_auth(&token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };

    assert_eq!(send("application/json", "{").await.unwrap().status(), 400);
    assert_eq!(
        send("application/json", r#"{"nickname":"x"}"#)
            .await
            .unwrap()
            .status(),
        422
    );
    assert_eq!(send("text/plain", "{}").await.unwrap().status(), 415);
    let oversize = format!(r#"{{"display_name":"{}"}}"#, "x".repeat(300_000));
    let too_large = harness
        .app
        .client
        .put(&url)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(oversize)
        .send()
        .await
        .unwrap();
    assert_eq!(too_large.status(), 413, "over JSON_BODY_LIMIT");
}

#[tokio::test]
async fn an_email_used_by_another_user_is_a_409_and_changes_nothing() {
    let harness = Harness::start().await;
    harness
        .put_me(
            &harness.token_with_email("ada", "shared@example.test"),
            json!({}),
        )
        .await;
    let (_, bob_before) = harness
        .put_me(
            &harness.token("bob", false),
            json!({ "display_name": "Bob" }),
        )
        .await;

    // Bob's provider account now claims ada's address (verified there: two accounts).
    let bob = harness.token_with_email("bob", "shared@example.test");
    let (status, problem) = harness
        .put_me(&bob, json!({ "display_name": "Bobby" }))
        .await;

    assert_eq!(status, 409, "{problem}");
    assert_eq!(
        harness.get("/api/v1/users/me", &bob).await.1,
        bob_before,
        "rolled back"
    );
}

#[tokio::test]
async fn nobody_can_claim_an_address_the_provider_did_not_verify_for_them() {
    let harness = Harness::start().await;
    let eve = harness.token("eve", false);

    // Taking the CEO's address first would lock the CEO out of it (addresses are unique).
    let (status, problem) = harness
        .put_me(&eve, json!({ "email": "ceo@example.test" }))
        .await;

    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["invalid-params"][0]["name"], "email");
    // Her own verified address, written out, is fine.
    let (status, created) = harness
        .put_me(&eve, json!({ "email": "EVE@example.test" }))
        .await;
    assert_eq!(status, 201, "{created}");
}

#[tokio::test]
async fn an_unverified_email_in_the_token_is_not_taken() {
    let harness = Harness::start().await;
    // Anyone can put any address in a self-service profile at the provider.
    let unverified = harness
        .issuer
        .token()
        .claim("sub", json!("eve"))
        .claim("email", json!("ceo@example.test"))
        .claim("email_verified", json!(false))
        .sign();
    let unstated = harness
        .issuer
        .token()
        .claim("sub", json!("mallory"))
        .claim("email", json!("cfo@example.test"))
        .without("email_verified")
        .sign();

    for token in [unverified, unstated] {
        let (status, created) = harness.put_me(&token, json!({})).await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["email"], Value::Null, "{created}");
    }
}

#[tokio::test]
async fn email_addresses_are_unique_whatever_their_case_among_live_profiles() {
    let harness = Harness::start().await;
    let ada = harness.token_with_email("ada", "Shared@Example.test");
    let bob = harness.token_with_email("bob", "shared@example.TEST");
    harness.put_me(&ada, json!({})).await;

    let (status, problem) = harness.put_me(&bob, json!({})).await;
    assert_eq!(status, 409, "{problem}");

    // Once ada's profile is deleted, her address is free for someone else.
    let admin = harness.token("root", true);
    let delete = harness
        .send(reqwest::Method::DELETE, "/api/v1/users/ada", &admin, None)
        .await;
    assert_eq!(delete.0, 204);
    let (status, bob) = harness.put_me(&bob, json!({})).await;
    assert_eq!(status, 201, "{bob}");
}

#[tokio::test]
async fn a_profile_an_admin_deleted_stays_deleted() {
    let harness = Harness::start().await;
    let ada = harness.token("ada", false);
    harness.put_me(&ada, json!({})).await;
    let admin = harness.token("root", true);
    let delete = harness
        .send(reqwest::Method::DELETE, "/api/v1/users/ada", &admin, None)
        .await;
    assert_eq!(delete.0, 204);

    // The user's next PUT does not bring the profile back.
    let (status, problem) = harness
        .put_me(&ada, json!({ "display_name": "Ada again" }))
        .await;
    assert_eq!(status, 410, "{problem}");
    assert_eq!(
        problem["detail"],
        "the profile was deleted by an administrator"
    );
    assert_eq!(harness.get("/api/v1/users/ada", &admin).await.0, 404);
    assert_eq!(harness.get("/api/v1/users/me", &ada).await.0, 404);
}

#[tokio::test]
async fn listing_users_needs_the_admin_role_and_pages_in_a_stable_order() {
    let harness = Harness::start().await;
    for sub in ["carol", "alice", "erin", "bob", "dave"] {
        harness.put_me(&harness.token(sub, false), json!({})).await;
    }
    assert_eq!(
        harness
            .get("/api/v1/users", &harness.token("alice", false))
            .await
            .0,
        403
    );
    let admin = harness.token("root", true);

    let mut seen = Vec::new();
    let mut path = "/api/v1/users?limit=2".to_owned();
    loop {
        let (status, page) = harness.get(&path, &admin).await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|user| user["id"].as_str().unwrap().to_owned()),
        );
        match page["next"].as_str() {
            Some(next) => path = format!("/api/v1/users?limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, ["alice", "bob", "carol", "dave", "erin"]);

    let (status, problem) = harness.get("/api/v1/users?limit=1000", &admin).await;
    assert_eq!(status, 422);
    assert_eq!(problem["invalid-params"][0]["name"], "limit");
}

#[tokio::test]
async fn admins_read_and_delete_users_by_id() {
    let harness = Harness::start().await;
    let ada = harness.token("ada", false);
    harness.put_me(&ada, json!({})).await;
    let admin = harness.token("root", true);

    assert_eq!(
        harness.get("/api/v1/users/ada", &admin).await.1["id"],
        "ada"
    );
    assert_eq!(harness.get("/api/v1/users/ghost", &admin).await.0, 404);
    assert_eq!(
        harness.get("/api/v1/users/ada", &ada).await.0,
        403,
        "not an admin"
    );

    let delete = reqwest::Method::DELETE;
    let (ada_path, ghost_path) = ("/api/v1/users/ada", "/api/v1/users/ghost");
    assert_eq!(
        harness.send(delete.clone(), ada_path, &admin, None).await.0,
        204
    );
    let again = harness.send(delete.clone(), ada_path, &admin, None).await;
    assert_eq!(again.0, 404, "already deleted");
    assert_eq!(harness.send(delete, ghost_path, &admin, None).await.0, 404);
    assert_eq!(harness.get("/api/v1/users/ada", &admin).await.0, 404);
    assert_eq!(harness.get("/api/v1/users/me", &ada).await.0, 404);
    let (_, page) = harness.get("/api/v1/users", &admin).await;
    assert_eq!(page["items"], json!([]));
}

#[tokio::test]
async fn the_api_v1_modules_share_one_scope_in_either_order() {
    // The service mounts the modules of `server::API_V1` in order; here, last first. It names
    // no module, so it holds when a team deletes the sample routes.
    let reversed: Routes = |config| {
        for routes in crate::service::server::API_V1.iter().rev() {
            routes(config);
        }
    };
    let paths = [
        "/api/v1/users",
        "/api/v1/users/me",
        "/api/v1/users/ada",
        "/api/v1/nothing-here",
        // The sample routes, while the service has them.
        "/api/v1/me",
        "/api/v1/protected",
        "/api/v1/hello",
        "/api/v1/admin",
    ];
    let mut answers = Vec::new();
    for app in [
        spawn_app().await,
        spawn_app_with_routes::<&str>(&[], reversed).await,
    ] {
        app.wait_until_ready().await;
        let request = json!({ "sub": "ada", "roles": ["admin"] });
        let token = dev_issuer_token(&app.client, &app.address, request).await;
        let mut statuses = Vec::new();
        for path in paths {
            statuses.push(app.get_with_token(path, &token).await.status().as_u16());
        }
        answers.push(statuses);
    }

    // The users routes answer (ada has no profile yet: 404), what no module serves is a 404,
    // and the order changes no answer.
    assert_eq!(answers[0][..4], [200, 404, 404, 404]);
    assert_eq!(answers[1], answers[0]);
}

#[tokio::test]
async fn the_users_api_needs_a_token() {
    let harness = Harness::start().await;

    assert_eq!(harness.app.get("/api/v1/users/me").await.status(), 401);
}

#[tokio::test]
async fn the_users_api_answers_503_when_the_database_is_unreachable() {
    let issuer = TestIssuer::start().await;
    let mut vars = issuer.settings();
    vars.push((
        "DATABASE_URL",
        crate::helpers::database::UNREACHABLE_URL.to_owned(),
    ));
    vars.push(("DATABASE_ACQUIRE_TIMEOUT", "1".to_owned()));
    let app = spawn_app_with(&vars).await;
    // Readiness stays 503 without a database, but says when the provider's keys are in.
    for _ in 0..300 {
        let readiness: Value = app.get("/health/readiness").await.json().await.unwrap();
        if readiness["checks"]["oidc"]["status"] == "up" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let response = app
        .get_with_token("/api/v1/users/me", &issuer.token().sign())
        .await;

    assert_eq!(response.status(), 503);
    // From the database, not from auth waiting for the provider's keys.
    let problem: Value = response.json().await.unwrap();
    assert_eq!(
        problem["detail"], "the database is not available",
        "{problem}"
    );
}

/// SIGTERM while clients write, with clients that stop sending once readiness answers 503
/// (as a load balancer does): every acknowledged write is in the database, and no request
/// fails, neither in flight nor during the shutdown delay.
#[cfg(unix)]
#[test]
fn no_acknowledged_write_is_lost_when_sigterm_arrives_mid_traffic() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let database = crate::helpers::database::TestDatabase::create_blocking();
    // Locally the service is its own token issuer, so the real binary needs nothing else.
    let service = crate::helpers::Service::start(&[
        ("DATABASE_URL", database.url.as_str()),
        ("SHUTDOWN_DELAY", "2"),
        ("DRAIN_TIMEOUT", "10"),
    ]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let address = service.address.clone();
    let draining = Arc::new(AtomicBool::new(false));
    let writing = Arc::new(AtomicUsize::new(0));

    let writers = runtime.block_on(async {
        let client = crate::helpers::http_client();
        // The instance joins the rotation once ready (its database migrated).
        while client
            .get(format!("{address}/health/readiness"))
            .send()
            .await
            .map_or(true, |response| response.status() != 200)
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        // The load balancer: polls readiness and takes the instance out on a 503.
        let (monitor, readiness) = (client.clone(), format!("{address}/health/readiness"));
        let flag = Arc::clone(&draining);
        tokio::spawn(async move {
            loop {
                if let Ok(response) = monitor.get(&readiness).send().await
                    && response.status() == 503
                {
                    flag.store(true, Ordering::SeqCst);
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        });
        let mut writers = Vec::new();
        for writer in 0..8 {
            let (client, address, draining, writing) = (
                client.clone(),
                address.clone(),
                Arc::clone(&draining),
                Arc::clone(&writing),
            );
            writers.push(tokio::spawn(async move {
                let request = json!({ "sub": format!("writer-{writer}") });
                let token = dev_issuer_token(&client, &address, request).await;
                let mut acknowledged = None;
                for version in 0.. {
                    if draining.load(Ordering::SeqCst) {
                        break;
                    }
                    let response = client
                        .put(format!("{address}/api/v1/users/me"))
                        .bearer_auth(&token)
                        .json(&json!({ "display_name": format!("v{version}") }))
                        .send()
                        .await
                        .unwrap_or_else(|error| {
                            panic!("a request failed during shutdown: {error:?}")
                        });
                    assert!(response.status().is_success(), "{}", response.status());
                    if acknowledged.replace(version).is_none() {
                        writing.fetch_add(1, Ordering::SeqCst);
                    }
                }
                (format!("writer-{writer}"), acknowledged)
            }));
        }
        writers
    });
    // SIGTERM once every writer has had a write acknowledged, in the thick of the traffic.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while writing.load(Ordering::SeqCst) < 8 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let (status, _) = service.terminate();
    assert!(status.success(), "{status:?}");
    assert!(
        draining.load(Ordering::SeqCst),
        "readiness answered 503 before the listener closed"
    );

    runtime.block_on(async {
        let pool = sqlx::Pool::<crate::service::db::Db>::connect(&database.url)
            .await
            .unwrap();
        for writer in writers {
            let (id, acknowledged) = writer.await.expect("no writer saw a failed request");
            let acknowledged = acknowledged.expect("every writer got some writes through");
            let stored: String = sqlx::query_scalar("SELECT display_name FROM users WHERE id = $1")
                .bind(&id)
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!(
                stored,
                format!("v{acknowledged}"),
                "{id}'s last acknowledged write"
            );
        }
    });
}
