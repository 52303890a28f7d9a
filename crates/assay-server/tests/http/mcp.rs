//! The hosted MCP endpoint over real HTTP: JSON-RPC POSTs as an MCP client sends them,
//! authenticated by API tokens, authorized and audited by the real control plane.

use crate::support::{TestApp, expect_problem, http_client};
use serde_json::{Value, json};
use std::time::Duration;

const PASSING: &str = "\
kind: TestWorkflow
metadata:
  name: green
spec:
  steps:
  - name: ok
    shell: echo all good
";

const PROTOCOL: &str = "2025-11-25";

fn mcp_url(app: &TestApp) -> String {
    app.url("/organizations/default/environments/dev/mcp")
}

fn metadata_url(app: &TestApp) -> String {
    app.url("/.well-known/oauth-protected-resource/organizations/default/environments/dev/mcp")
}

/// One JSON-RPC exchange; returns the HTTP status and the JSON-RPC message (from a JSON
/// body or from the last `data:` line of an SSE body).
async fn rpc(client: &reqwest::Client, url: &str, body: Value) -> (u16, Value) {
    let res = client
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", PROTOCOL)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let message = serde_json::from_str(&text).unwrap_or_else(|_| {
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .rfind(|m| m.get("id").is_some())
            .unwrap_or(Value::Null)
    });
    (status, message)
}

fn initialize(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
        "protocolVersion": PROTOCOL,
        "capabilities": {},
        "clientInfo": {"name": "assay-http-test", "version": "9.8.7"}
    }})
}

/// A tool call that names its client in `_meta` (SEP-2575), as stateless clients do.
fn call(id: u64, tool: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
    "params": {"name": tool, "arguments": arguments, "_meta": {
        "io.modelcontextprotocol/clientInfo": {"name": "assay-http-test", "version": "9.8.7"}
    }}})
}

fn tool_names(list: &Value) -> Vec<String> {
    list["result"]["tools"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|t| t["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn an_admin_token_initializes_lists_and_runs_a_workflow() {
    let app = TestApp::start().await;
    app.create_workflow(PASSING).await;
    let url = mcp_url(&app);

    let (status, init) = rpc(&app.client, &url, initialize(1)).await;
    assert_eq!(status, 200, "{init}");
    assert_eq!(init["id"], 1);
    assert_eq!(init["result"]["serverInfo"]["name"], "assay", "{init}");
    assert!(
        init["result"]["capabilities"]["tools"].is_object(),
        "{init}"
    );

    let (status, list) = rpc(
        &app.client,
        &url,
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    )
    .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(tool_names(&list), assay_mcp::tool_names());
    assert_eq!(tool_names(&list).len(), 30);

    let (status, listed) = rpc(&app.client, &url, call(3, "list_workflows", json!({}))).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["result"]["isError"], false, "{listed}");
    assert_eq!(
        listed["result"]["content"][0]["text"],
        "1 of 1 workflows\n- green"
    );
    assert_eq!(listed["result"]["structuredContent"]["total"], 1);
    assert_eq!(
        listed["result"]["structuredContent"]["workflows"][0]["name"],
        "green"
    );

    let (status, ran) = rpc(
        &app.client,
        &url,
        call(
            4,
            "run_workflow",
            json!({"workflowName": "green", "wait": true, "timeoutSeconds": 60}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{ran}");
    assert_eq!(ran["id"], 4);
    assert_eq!(ran["result"]["isError"], false, "{ran}");
    let done = &ran["result"]["structuredContent"];
    assert_eq!(done["name"], "green-1", "{ran}");
    assert_eq!(done["status"], "passed", "{ran}");
    assert_eq!(done["startedBy"], "bootstrap", "{ran}");
    assert_eq!(done["steps"][0]["exitCode"], 0, "{ran}");

    // The run went through the control plane as the token's actor, with the client info.
    let export = app
        .client
        .get(app.url("/v1/organizations/default/audit/events?action=workflow.run&outcome=success"))
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), 200);
    let body = export.text().await.unwrap();
    let events: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 1, "{body}");
    let run = &events[0];
    assert_eq!(
        run["client"]["mcp_client"], "assay-http-test/9.8.7",
        "{run}"
    );
    assert_eq!(run["client"]["ip"], "127.0.0.1", "{run}");
    assert!(run["client"]["request_id"].is_string(), "{run}");
    assert_eq!(run["actor"]["name"], "bootstrap", "{run}");
}

#[tokio::test]
async fn no_token_gets_a_challenge_pointing_at_resource_metadata() {
    let app = TestApp::start().await;
    let res = app
        .anon
        .post(format!("{}?access_token={}", mcp_url(&app), app.token))
        .header("accept", "application/json, text/event-stream")
        .json(&initialize(1))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["www-authenticate"],
        format!(
            r#"Bearer resource_metadata="{}", scope="mcp:read""#,
            metadata_url(&app)
        )
        .as_str()
    );
    expect_problem(res, 401, "unauthenticated").await;
}

#[tokio::test]
async fn an_invalid_token_is_told_so_in_the_challenge() {
    let app = TestApp::start().await;
    let bogus = http_client(Some("assay_not_a_real_token"));
    let res = bogus
        .post(mcp_url(&app))
        .header("accept", "application/json, text/event-stream")
        .json(&initialize(1))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["www-authenticate"],
        format!(
            r#"Bearer resource_metadata="{}", scope="mcp:read", error="invalid_token""#,
            metadata_url(&app)
        )
        .as_str()
    );
    expect_problem(res, 401, "unauthenticated").await;
}

#[tokio::test]
async fn a_read_only_member_token_sees_read_tools_and_cannot_run() {
    let app = TestApp::start().await;
    app.create_workflow(PASSING).await;
    let res = app
        .client
        .post(app.url("/v1/organizations/default/tokens"))
        .json(&json!({"name": "agent", "kind": "member", "grants": {"dev": "read"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    let member = http_client(Some(created["secret"].as_str().unwrap()));
    let url = mcp_url(&app);

    let (status, list) = rpc(
        &member,
        &url,
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    )
    .await;
    assert_eq!(status, 200, "{list}");
    let names = tool_names(&list);
    assert_eq!(names.len(), 22, "{names:?}");
    assert!(
        names
            .iter()
            .all(|n| assay_mcp::tool_level(n) == assay_core::Level::Read)
    );
    assert!(!names.contains(&"run_workflow".to_owned()));

    let (status, ran) = rpc(
        &member,
        &url,
        call(2, "run_workflow", json!({"workflowName": "green"})),
    )
    .await;
    assert_eq!(status, 200, "{ran}");
    assert_eq!(ran["result"]["isError"], true, "{ran}");
    assert!(
        ran["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Forbidden: run_workflow needs run permission on this environment"),
        "{ran}"
    );
    let runs = app
        .client
        .get(app.url("/v1/organizations/default/environments/dev/executions"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(runs["items"], json!([]), "{runs}");
}

#[tokio::test]
async fn a_forged_origin_is_refused_before_authentication() {
    let app = TestApp::start().await;
    // With or without a credential: the check comes first.
    for client in [&app.client, &app.anon] {
        let res = client
            .post(mcp_url(&app))
            .header("origin", "https://evil.example")
            .header("accept", "application/json, text/event-stream")
            .json(&initialize(1))
            .send()
            .await
            .unwrap();
        expect_problem(res, 403, "forbidden").await;
    }

    // The server's own origin is fine.
    let (status, init) = {
        let res = app
            .client
            .post(mcp_url(&app))
            .header("origin", app.base.as_str())
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", PROTOCOL)
            .json(&initialize(1))
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.json::<Value>().await.unwrap())
    };
    assert_eq!(status, 200, "{init}");
}

#[tokio::test]
async fn a_foreign_host_is_refused_with_403() {
    let app = TestApp::start().await;
    let res = app
        .client
        .post(mcp_url(&app))
        .header("host", format!("rebind.evil.example:{}", app.addr.port()))
        .header("accept", "application/json, text/event-stream")
        .json(&initialize(1))
        .send()
        .await
        .unwrap();
    expect_problem(res, 403, "forbidden").await;

    // Any loopback name reaches a loopback server.
    let res = app
        .client
        .post(mcp_url(&app))
        .header("host", format!("localhost:{}", app.addr.port()))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", PROTOCOL)
        .json(&initialize(1))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn allowed_origins_extend_the_servers_own() {
    let app =
        TestApp::start_with(|c| c.allowed_origins = vec!["https://app.example.com".into()]).await;
    let res = app
        .client
        .post(mcp_url(&app))
        .header("origin", "https://app.example.com")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", PROTOCOL)
        .json(&initialize(1))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_token_of_another_organization_path_is_refused() {
    let app = TestApp::start().await;
    let res = app
        .client
        .post(app.url("/organizations/someone-else/environments/dev/mcp"))
        .header("accept", "application/json, text/event-stream")
        .json(&initialize(1))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.headers()["www-authenticate"],
        format!(
            r#"Bearer resource_metadata="{}", scope="mcp:read", error="invalid_token""#,
            app.url("/.well-known/oauth-protected-resource/organizations/someone-else/environments/dev/mcp")
        )
        .as_str()
    );
}

const SLOW: &str = "\
kind: TestWorkflow
metadata:
  name: slow
spec:
  steps:
  - name: nap
    shell: sleep 2 && echo rested
";

#[tokio::test]
async fn a_waiting_tool_outlives_the_rest_timeout() {
    let app = TestApp::start_with(|c| c.request_timeout = Duration::from_secs(1)).await;
    app.create_workflow(SLOW).await;
    let (status, ran) = rpc(
        &app.client,
        &mcp_url(&app),
        call(
            1,
            "run_workflow",
            json!({"workflowName": "slow", "wait": true}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{ran}");
    assert_eq!(ran["result"]["isError"], false, "{ran}");
    assert_eq!(
        ran["result"]["structuredContent"]["status"], "passed",
        "{ran}"
    );
    assert_eq!(
        ran["result"]["structuredContent"]["name"], "slow-1",
        "{ran}"
    );
}

#[tokio::test]
async fn the_mcp_endpoint_has_its_own_timeout() {
    let app = TestApp::start_with(|c| c.mcp_request_timeout = Duration::from_secs(1)).await;
    app.create_workflow(SLOW).await;
    let res = app
        .client
        .post(mcp_url(&app))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", PROTOCOL)
        .json(&call(
            1,
            "run_workflow",
            json!({"workflowName": "slow", "wait": true}),
        ))
        .send()
        .await
        .unwrap();
    expect_problem(res, 503, "unavailable").await;
}

#[tokio::test]
async fn an_oversized_request_is_refused_with_413() {
    let app = TestApp::start().await;
    let big = "x".repeat(assay_server::DEFAULT_BODY_LIMIT + 1);
    let res = app
        .client
        .post(mcp_url(&app))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", PROTOCOL)
        .json(&call(1, "list_workflows", json!({"search": big})))
        .send()
        .await
        .unwrap();
    expect_problem(res, 413, "too-large").await;
}

/// rmcp's own Streamable HTTP client (not our JSON-RPC helper) drives the endpoint.
#[tokio::test]
async fn the_rmcp_client_lists_and_runs_over_http() {
    use rmcp::ServiceExt;
    use rmcp::model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation};
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

    let app = TestApp::start().await;
    app.create_workflow(PASSING).await;
    // No proxy for loopback; `http_client` also installs the TLS provider reqwest needs.
    let http = http_client(None);
    let transport = StreamableHttpClientTransport::with_client(
        http,
        StreamableHttpClientTransportConfig::with_uri(mcp_url(&app)).auth_header(app.token.clone()),
    );
    let client = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("rmcp-e2e", "1.2.3"),
    )
    .serve(transport)
    .await
    .unwrap();
    let server = client.peer_info().unwrap();
    assert_eq!(server.server_info.as_ref().unwrap().name, "assay");

    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    assert_eq!(names, assay_mcp::tool_names());

    let args = json!({"workflowName": "green", "wait": true});
    let result = client
        .call_tool(
            CallToolRequestParams::new("run_workflow")
                .with_arguments(args.as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(false), "{result:?}");
    let done = result.structured_content.clone().unwrap();
    assert_eq!(done["status"], "passed", "{done}");
    assert_eq!(done["name"], "green-1", "{done}");
    client.cancel().await.unwrap();
    let body = app
        .client
        .get(app.url("/v1/organizations/default/audit/events?action=workflow.run"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 1, "{body}");
    assert_eq!(events[0]["resources"][0], "workflow:green", "{body}");
    // A 2025-11-25 client names itself only in `initialize`; stateless serving remembers
    // that name for the same credential and User-Agent (not rmcp's placeholder for the
    // missing handshake).
    assert_eq!(
        events[0]["client"]["mcp_client"], "rmcp-e2e/1.2.3",
        "{body}"
    );
}

/// JSON-RPC errors that rmcp answers with an HTTP error status keep their JSON-RPC body
/// (clients read `error.code`); they are not rewritten into problem documents.
#[tokio::test]
async fn json_rpc_errors_keep_their_body() {
    let app = TestApp::start().await;
    // `rpc` sends MCP-Protocol-Version 2025-11-25; the body asks for another version.
    let mut init = initialize(7);
    init["params"]["protocolVersion"] = json!("2025-06-18");
    let (status, answer) = rpc(&app.client, &mcp_url(&app), init).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["jsonrpc"], "2.0", "{answer}");
    assert_eq!(answer["id"], 7, "{answer}");
    assert_eq!(answer["error"]["code"], -32600, "{answer}");

    // An unknown method is a JSON-RPC error too (HTTP 200 at this protocol version).
    let (status, answer) = rpc(
        &app.client,
        &mcp_url(&app),
        json!({"jsonrpc": "2.0", "id": 8, "method": "no/such/method"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["error"]["code"], -32601, "{answer}");
}
