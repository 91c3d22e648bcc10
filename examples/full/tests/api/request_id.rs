use crate::helpers::spawn_app;

fn request_id(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-request-id")
        .expect("every response carries x-request-id")
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn every_response_carries_a_fresh_request_id() {
    let app = spawn_app().await;

    let first = request_id(&app.get("/health/liveness").await);
    let second = request_id(&app.get("/health/liveness").await);

    assert!(uuid::Uuid::parse_str(&first).is_ok(), "{first}");
    assert_ne!(first, second);
}

#[tokio::test]
async fn a_well_formed_incoming_request_id_is_kept() {
    let app = spawn_app().await;

    let response = app
        .client
        .get(format!("{}/health/liveness", app.address))
        .header("x-request-id", "edge-7f3a:42")
        .send()
        .await
        .unwrap();

    assert_eq!(request_id(&response), "edge-7f3a:42");
}

#[tokio::test]
async fn a_malformed_incoming_request_id_is_replaced() {
    let app = spawn_app().await;

    for malformed in ["has space", "x".repeat(129).as_str(), "quote\"inside"] {
        let response = app
            .client
            .get(format!("{}/health/liveness", app.address))
            .header("x-request-id", malformed)
            .send()
            .await
            .unwrap();

        let id = request_id(&response);
        assert!(
            uuid::Uuid::parse_str(&id).is_ok(),
            "{malformed:?} was replaced by {id}"
        );
    }
}

#[tokio::test]
async fn an_unknown_route_gets_a_404_problem_with_a_request_id() {
    let app = spawn_app().await;

    let response = app.get("/no/such/route").await;

    assert_eq!(response.status(), 404);
    request_id(&response);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["status"], 404);
    assert_eq!(problem["detail"], "no route for GET /no/such/route");
}
