//! Health, readiness, OpenAPI, request ids and the headers every response carries.

use crate::support::{TestApp, expect_problem};
use assay_server::routes::{ROUTES, Requires, openapi_path};
use serde_json::Value;
use std::collections::BTreeSet;

#[tokio::test]
async fn healthz_and_readyz_answer_without_a_token() {
    let app = TestApp::start().await;
    let res = app.anon.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(res.text().await.unwrap(), r#"{"status":"ok"}"#);
    let res = app.anon.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), r#"{"status":"ready"}"#);
}

#[tokio::test]
async fn openapi_lists_every_route_with_its_parameters() {
    let app = TestApp::start().await;
    let res = app
        .anon
        .get(app.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let doc: Value = res.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"][0]["url"], app.base.as_str());
    let mut listed = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (verb, op) in item.as_object().unwrap() {
            listed.insert((verb.clone(), path.clone()));
            assert!(op["operationId"].is_string());
        }
    }
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.verb.as_str().to_owned(), openapi_path(r.path)))
        .collect();
    assert_eq!(listed, expected);
    let list_executions =
        &doc["paths"]["/v1/organizations/{org}/environments/{env}/executions"]["get"];
    let params: BTreeSet<&str> = list_executions["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        params,
        BTreeSet::from([
            "org", "env", "workflow", "status", "tags", "labels", "since", "until", "limit",
            "cursor"
        ])
    );
    assert_eq!(list_executions["x-assay-permission"], "read");
    let run = &doc["paths"]["/v1/organizations/{org}/environments/{env}/workflows/{name}/executions"]
        ["post"];
    assert_eq!(run["x-assay-permission"], "run");
    assert_eq!(
        doc["paths"]["/healthz"]["get"]["security"],
        serde_json::json!([])
    );
    let public: Vec<&str> = ROUTES
        .iter()
        .filter(|r| r.requires == Requires::Public)
        .map(|r| r.path)
        .collect();
    assert_eq!(public, vec!["/healthz", "/readyz", "/v1/openapi.json"]);
}

#[tokio::test]
async fn every_response_carries_the_security_headers_and_a_request_id() {
    let app = TestApp::start().await;
    let responses = [
        app.anon.get(app.url("/healthz")).send().await.unwrap(),
        app.client
            .get(app.env_url("/workflows"))
            .send()
            .await
            .unwrap(),
        app.anon
            .get(app.env_url("/workflows"))
            .send()
            .await
            .unwrap(),
        app.client.get(app.url("/nope")).send().await.unwrap(),
    ];
    let mut ids = BTreeSet::new();
    for res in responses {
        let h = res.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{}", res.url());
        assert_eq!(h["referrer-policy"], "no-referrer", "{}", res.url());
        assert_eq!(h["cache-control"], "no-store", "{}", res.url());
        let id = h["x-request-id"].to_str().unwrap().to_owned();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        ids.insert(id);
    }
    assert_eq!(ids.len(), 4, "request ids are unique");

    // A plain client id is kept, echoed and put into problems; a hostile one is replaced.
    let res = app
        .anon
        .get(app.env_url("/workflows"))
        .header("x-request-id", "ci-run-42.step:7")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "ci-run-42.step:7");
    let body = expect_problem(res, 401, "unauthenticated").await;
    assert_eq!(body["request_id"], "ci-run-42.step:7");
    let res = app
        .anon
        .get(app.url("/healthz"))
        .header("x-request-id", "evil id with spaces")
        .send()
        .await
        .unwrap();
    let id = res.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
}

#[tokio::test]
async fn the_server_stops_gracefully() {
    let app = TestApp::start().await;
    let addr = app.addr;
    app.stop().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
