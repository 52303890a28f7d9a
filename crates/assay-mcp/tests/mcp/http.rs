//! The Streamable HTTP service as the server crate will mount it: the caller arrives in the
//! request's extensions; Host and Origin are checked; answers are plain JSON.

use crate::mcp::harness::*;
use assay_core::Level;
use assay_core::ports::ControlPlane;
use assay_mcp::{AssayMcp, AssayMcpConfig, McpCaller, McpHttpConfig, streamable_http_service};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tower_service::Service;

fn service(app: &TestApp) -> assay_mcp::McpHttpService {
    let mcp = AssayMcp::new(
        app.plane.clone() as Arc<dyn ControlPlane>,
        AssayMcpConfig::default(),
    );
    let config = McpHttpConfig {
        allowed_hosts: vec!["assay.example.com".into()],
        allowed_origins: vec!["https://assay.example.com".into()],
        ..McpHttpConfig::default()
    };
    streamable_http_service(mcp, &config, CancellationToken::new())
}

fn post(
    body: Value,
    caller: Option<McpCaller>,
    origin: Option<&str>,
    host: &str,
) -> http::Request<Full<Bytes>> {
    let mut req = http::Request::builder()
        .method("POST")
        .uri("/organizations/acme/environments/dev/mcp")
        .header("host", host)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25");
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    let mut req = req
        .body(Full::new(Bytes::from(serde_json::to_vec(&body).unwrap())))
        .unwrap();
    if let Some(c) = caller {
        req.extensions_mut().insert(c);
    }
    req
}

async fn send(
    svc: &mut assay_mcp::McpHttpService,
    req: http::Request<Full<Bytes>>,
) -> (http::StatusCode, Option<String>, Vec<u8>) {
    let resp = svc.call(req).await.unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, ct, body)
}

fn caller(app: &TestApp, level: Option<Level>) -> McpCaller {
    McpCaller {
        actor: match level {
            Some(l) => app.member(l),
            None => app.admin(),
        },
        env: app.dev_ref(),
    }
}

const LIST: fn() -> Value = || json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});

#[tokio::test]
async fn tools_list_over_http_is_json_filtered_by_the_callers_level_and_small() {
    let app = TestApp::start().await;
    let mut svc = service(&app);

    let (status, ct, body) = send(
        &mut svc,
        post(LIST(), Some(caller(&app, None)), None, "assay.example.com"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(ct.as_deref(), Some("application/json"));
    assert!(
        body.len() < 16 * 1024,
        "tools/list over HTTP is {} bytes",
        body.len()
    );
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["result"]["tools"].as_array().unwrap().len(), 30);

    let (_, _, body) = send(
        &mut svc,
        post(
            LIST(),
            Some(caller(&app, Some(Level::Read))),
            Some("https://assay.example.com"),
            "assay.example.com",
        ),
    )
    .await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["result"]["tools"].as_array().unwrap().len(), 22);
}

#[tokio::test]
async fn tool_calls_over_http_act_as_the_caller() {
    let app = TestApp::start().await;
    let mut svc = service(&app);
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "create_workflow", "arguments": {"yaml": workflow("web", "steps:\n- shell: echo")}}});
    let (status, _, body) = send(
        &mut svc,
        post(
            call.clone(),
            Some(caller(&app, Some(Level::Run))),
            None,
            "assay.example.com",
        ),
    )
    .await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["result"]["isError"], true);
    assert!(
        v["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Forbidden: create_workflow needs write permission"),
        "{v}"
    );
    let (_, _, body) = send(
        &mut svc,
        post(
            call,
            Some(caller(&app, Some(Level::Write))),
            None,
            "assay.example.com",
        ),
    )
    .await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["result"]["isError"], false, "{v}");
    assert_eq!(v["result"]["structuredContent"]["name"], "web");
}

#[tokio::test]
async fn requests_without_a_caller_or_from_foreign_hosts_are_refused() {
    let app = TestApp::start().await;
    let mut svc = service(&app);
    // No identity: a JSON-RPC error, never a tool list.
    let (_, _, body) = send(&mut svc, post(LIST(), None, None, "assay.example.com")).await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert!(v.get("result").is_none(), "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unauthenticated"),
        "{v}"
    );
    // DNS rebinding: a foreign Host, or a foreign Origin.
    let (status, _, _) = send(
        &mut svc,
        post(LIST(), Some(caller(&app, None)), None, "evil.example.com"),
    )
    .await;
    assert!(status.is_client_error(), "{status}");
    let (status, _, _) = send(
        &mut svc,
        post(
            LIST(),
            Some(caller(&app, None)),
            Some("http://evil.example.com"),
            "assay.example.com",
        ),
    )
    .await;
    assert_eq!(status, 403);
}
