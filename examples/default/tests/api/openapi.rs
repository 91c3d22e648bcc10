//! The OpenAPI document: served, browsable, exported, and true to the routes it describes.

use crate::helpers::spawn_app;
use reqwest::Method;
use serde_json::Value;

const EXPORTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");

#[tokio::test]
async fn served_document_matches_the_exported_openapi_json() {
    let app = spawn_app().await;
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), 200);
    let served: Value = response.json().await.unwrap();
    let exported: Value = serde_json::from_str(
        &std::fs::read_to_string(EXPORTED).expect("openapi.json exists at the project root"),
    )
    .expect("openapi.json is JSON");
    assert_eq!(served["openapi"], "3.1.0");
    assert!(
        served == exported,
        "openapi.json differs from the API the service serves: \
         run `cargo run -- openapi > openapi.json`, review the change and commit it"
    );
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_answers_as_documented_without_a_token() {
    let app = spawn_app().await;
    let document: Value = app.get("/openapi.json").await.json().await.unwrap();
    let paths = document["paths"]
        .as_object()
        .expect("the document has paths");
    assert!(paths.contains_key("/health/liveness"));
    for (path, operations) in paths {
        let url = format!("{}{}", app.address, path.replace("{id}", "nobody"));
        for (method, operation) in operations.as_object().unwrap() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let status = app
                .client
                .request(method.clone(), &url)
                .send()
                .await
                .unwrap()
                .status();
            let documented = &operation["responses"][status.as_str()];
            assert!(
                documented.is_object(),
                "{method} {path} answered {status}, which its documentation does not list"
            );
            let requirements = operation["security"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let token_required = !requirements.is_empty()
                && requirements.iter().all(|requirement| {
                    requirement
                        .as_object()
                        .is_some_and(|schemes| !schemes.is_empty())
                });
            if token_required {
                assert_eq!(
                    status, 401,
                    "{method} {path} needs a token but answered {status}"
                );
            }
        }
    }
}

#[tokio::test]
async fn docs_serve_swagger_ui_pointed_at_the_document() {
    let app = spawn_app().await;
    let page = app.get("/docs").await;
    assert_eq!(page.url().path(), "/docs/", "/docs redirects to /docs/");
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    // The page loads its own scripts and styles, which the API-wide policy would block.
    let policy = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("default-src 'self'"), "{policy}");
    assert!(page.text().await.unwrap().contains("swagger-ui"));

    let initializer = app.get("/docs/swagger-initializer.js").await;
    assert_eq!(initializer.status(), 200);
    assert!(initializer.text().await.unwrap().contains("/openapi.json"));

    let api = app.get("/openapi.json").await;
    assert_eq!(
        api.headers()["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'",
        "only the docs get the looser policy"
    );
}

#[tokio::test]
async fn every_reference_in_the_document_resolves() {
    let app = spawn_app().await;
    let document: Value = app.get("/openapi.json").await.json().await.unwrap();

    fn references<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
        match value {
            Value::Object(object) => {
                if let Some(Value::String(target)) = object.get("$ref") {
                    found.push(target);
                }
                object.values().for_each(|value| references(value, found));
            }
            Value::Array(items) => items.iter().for_each(|value| references(value, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    references(&document, &mut found);

    assert!(!found.is_empty(), "schemas are shared by reference");
    for target in found {
        let pointer = target
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{target} points outside the document"));
        assert!(
            document.pointer(pointer).is_some(),
            "{target} names nothing in the document"
        );
    }
}
