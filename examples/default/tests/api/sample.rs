//! The sample API as a caller meets it, with tokens from the development issuer: each way
//! of requiring a token answers as documented.

use serde_json::{Value, json};

use crate::helpers::issuer::dev_issuer_token;
use crate::helpers::{TestApp, spawn_app};

/// The service with its development issuer, and a token from it for `roles`.
async fn app_and_token(roles: &[&str]) -> (TestApp, String) {
    let app = spawn_app().await;
    app.wait_until_ready().await;
    let request = json!({ "sub": "ada", "roles": roles, "scope": "read" });
    let token = dev_issuer_token(&app.client, &app.address, request).await;
    (app, token)
}

#[tokio::test]
async fn protected_needs_any_valid_token() {
    let (app, token) = app_and_token(&[]).await;

    let response = app.get_with_token("/api/v1/protected", &token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "message": "Authorized access", "sub": "ada" })
    );
    assert_eq!(app.get("/api/v1/protected").await.status(), 401);
}

#[tokio::test]
async fn me_shows_the_callers_identity_roles_and_scopes() {
    let (app, token) = app_and_token(&["clerk"]).await;

    let me: Value = app
        .get_with_token("/api/v1/me", &token)
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(me["sub"], "ada");
    assert_eq!(me["username"], "ada");
    assert_eq!(me["roles"], json!(["clerk"]));
    assert_eq!(me["scopes"], json!(["read"]));
}

#[tokio::test]
async fn hello_greets_anonymous_callers_and_names_token_holders() {
    let (app, token) = app_and_token(&[]).await;

    let anonymous: Value = app.get("/api/v1/hello").await.json().await.unwrap();
    assert_eq!(anonymous["message"], "Hello, anonymous");
    let named: Value = app
        .get_with_token("/api/v1/hello", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(named["message"], "Hello, ada");
    let refused = app.get_with_token("/api/v1/hello", "not.a.token").await;
    assert_eq!(refused.status(), 401);
}

#[tokio::test]
async fn admin_needs_the_admin_role() {
    let (app, user) = app_and_token(&["user"]).await;
    assert_eq!(
        app.get_with_token("/api/v1/admin", &user).await.status(),
        403
    );

    let request = json!({ "sub": "root", "roles": ["admin"] });
    let admin = dev_issuer_token(&app.client, &app.address, request).await;
    let response = app.get_with_token("/api/v1/admin", &admin).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap()["message"],
        "Admin access"
    );
}
