//! Step-up at the MCP endpoint (MCP authorization; RFC 6750 §3.1): a tool needing more
//! than the OAuth token's scope — while the user's role allows it — answers 403 with an
//! `insufficient_scope` challenge naming the scope; a role that does not allow it keeps
//! the ordinary `isError` result. `tools/list` shows an OAuth user what their role allows.
//! The 403 is decided before the answer starts, so it holds with sessions (answers stream
//! as SSE) and on legacy HTTP+SSE (POSTs are otherwise answered 202) too.

use crate::mcp_sessions::{
    audit, handshake, initialize, initialized, message_of, post, request, streamable,
};
use crate::oauth_users::{dev_mcp, grant, member, token};
use crate::support::{TestApp, expect_problem, http_client};
use assay_auth::scope::McpScope;
use assay_core::Level;
use serde_json::{Value, json};

const PROTOCOL: &str = "2025-11-25";
const GREEN: &str = "kind: TestWorkflow\nmetadata:\n  name: green\nspec:\n  steps:\n  - name: ok\n    shell: echo ok\n";
const DESCRIPTION: &str = "this tool needs the mcp:run scope, which the access token does not carry; the user's role allows it, so authorize again with scope mcp:run";

async fn rpc(token: &str, url: &str, body: Value) -> reqwest::Response {
    http_client(Some(token))
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", PROTOCOL)
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn call(tool: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
           "params": {"name": tool, "arguments": arguments}})
}

async fn tool_names(token: &str, url: &str) -> Vec<String> {
    let res = rpc(
        token,
        url,
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let list: Value = res.json().await.unwrap();
    list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_read_token_of_a_run_user_steps_up_to_run_workflow() {
    let app = TestApp::start().await;
    app.create_workflow(GREEN).await;
    let runner = member(&app, "runner@example.com", Level::Run).await;
    let (path, resource) = dev_mcp(&app);
    let url = app.url(&path);
    let consented = grant(&app, runner.id, &resource, McpScope::Read).await;
    let read = token(&app, &consented, McpScope::Read);

    // Listed by role: run_workflow is there to step up to; write tools are not.
    let names = tool_names(&read, &url).await;
    assert!(names.iter().any(|n| n == "run_workflow"), "{names:?}");
    assert!(!names.iter().any(|n| n == "create_workflow"), "{names:?}");

    let res = rpc(
        &read,
        &url,
        call("run_workflow", json!({"workflowName": "green"})),
    )
    .await;
    assert_eq!(res.status(), 403);
    assert_eq!(
        res.headers()["www-authenticate"],
        format!(
            r#"Bearer error="insufficient_scope", scope="mcp:run", resource_metadata="{}/.well-known/oauth-protected-resource{path}", error_description="{DESCRIPTION}""#,
            app.base
        )
        .as_str()
    );
    assert_eq!(res.headers()["content-type"], "application/json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({"jsonrpc": "2.0", "id": 2, "error": {
            "code": -32000,
            "message": format!("Insufficient scope: {DESCRIPTION}."),
            "data": {"error": "insufficient_scope", "scope": "mcp:run"},
        }})
    );
    // Nothing ran.
    let executions: Value = app
        .client
        .get(app.env_url("/executions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(executions["items"], json!([]), "{executions}");

    // A read tool works with the same token.
    let res = rpc(&read, &url, call("list_workflows", json!({}))).await;
    assert_eq!(res.status(), 200);
    let listed: Value = res.json().await.unwrap();
    assert_eq!(listed["result"]["isError"], false, "{listed}");

    // After stepping up (the user consented to mcp:run), the call runs.
    let stepped = grant(&app, runner.id, &resource, McpScope::Run).await;
    assert_eq!(
        stepped.id, consented.id,
        "consent replaces the grant's scope"
    );
    let run = token(&app, &stepped, McpScope::Run);
    let res = rpc(
        &run,
        &url,
        call("run_workflow", json!({"workflowName": "green"})),
    )
    .await;
    assert_eq!(res.status(), 200);
    let ran: Value = res.json().await.unwrap();
    assert_eq!(ran["result"]["isError"], false, "{ran}");
    let executions: Value = app
        .client
        .get(app.env_url("/executions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = executions["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{executions}");
    app.wait_finished(items[0]["id"].as_str().unwrap()).await;

    // The refusal is on the record as denied, with the scope it needed.
    let res = app
        .client
        .get(app.url("/v1/organizations/default/audit/events?action=workflow.run&outcome=denied"))
        .send()
        .await
        .unwrap();
    let events: Vec<Value> = res
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["actor"]["id"], runner.id.to_string());
    assert_eq!(
        events[0]["reason"],
        "insufficient scope: this needs the mcp:run scope, which the access token does not carry"
    );
}

#[tokio::test]
async fn a_role_below_the_tool_keeps_the_ordinary_error_result() {
    let app = TestApp::start().await;
    app.create_workflow(GREEN).await;
    let reader = member(&app, "reader@example.com", Level::Read).await;
    let (path, resource) = dev_mcp(&app);
    let url = app.url(&path);
    let consented = grant(&app, reader.id, &resource, McpScope::Write).await;
    let write = token(&app, &consented, McpScope::Write);

    // Listed by role: a reader sees no run tool, whatever the scope.
    let names = tool_names(&write, &url).await;
    assert!(names.iter().any(|n| n == "list_workflows"), "{names:?}");
    assert!(!names.iter().any(|n| n == "run_workflow"), "{names:?}");

    let res = rpc(
        &write,
        &url,
        call("run_workflow", json!({"workflowName": "green"})),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("www-authenticate").is_none());
    let ran: Value = res.json().await.unwrap();
    assert_eq!(ran["result"]["isError"], true, "{ran}");
    assert!(
        ran["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Forbidden: run_workflow needs run permission on this environment"),
        "{ran}"
    );
}

#[tokio::test]
async fn rest_answers_a_too_narrow_scope_with_the_step_up_challenge_too() {
    let app = TestApp::start().await;
    app.create_workflow(GREEN).await;
    let runner = member(&app, "runner@example.com", Level::Run).await;
    let consented = grant(&app, runner.id, &app.base, McpScope::Read).await;
    let read = token(&app, &consented, McpScope::Read);
    let res = http_client(Some(&read))
        .post(app.env_url("/workflows/green/executions"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["www-authenticate"],
        r#"Bearer realm="assay", error="insufficient_scope", scope="mcp:run""#
    );
    let body = expect_problem(res, 403, "insufficient-scope").await;
    assert_eq!(
        body["detail"],
        "this needs the mcp:run scope, which this access token does not carry; your role allows it, so authorize again granting mcp:run"
    );
    assert_eq!(body["title"], "Insufficient scope");
}

/// The exact step-up answer to the `tools/call` with JSON-RPC id `id`.
async fn assert_step_up(app: &TestApp, path: &str, res: reqwest::Response, id: u64) {
    assert_eq!(res.status(), 403);
    assert_eq!(
        res.headers()["www-authenticate"],
        format!(
            r#"Bearer error="insufficient_scope", scope="mcp:run", resource_metadata="{}/.well-known/oauth-protected-resource{path}", error_description="{DESCRIPTION}""#,
            app.base
        )
        .as_str()
    );
    assert_eq!(res.headers()["content-type"], "application/json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({"jsonrpc": "2.0", "id": id, "error": {
            "code": -32000,
            "message": format!("Insufficient scope: {DESCRIPTION}."),
            "data": {"error": "insufficient_scope", "scope": "mcp:run"},
        }})
    );
}

/// The one denied `workflow.run` event a step-up leaves, by `user`, named `client`.
async fn assert_one_denial(app: &TestApp, user: uuid::Uuid, client: &str) {
    let runs = audit(app, "workflow.run").await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["outcome"], "denied", "{runs:?}");
    assert_eq!(runs[0]["actor"]["id"], user.to_string());
    assert_eq!(runs[0]["resources"], json!(["workflow:green"]), "{runs:?}");
    assert_eq!(runs[0]["client"]["mcp_client"], client, "{runs:?}");
    assert_eq!(
        runs[0]["reason"],
        "insufficient scope: this needs the mcp:run scope, which the access token does not carry"
    );
}

async fn no_executions(app: &TestApp) {
    let executions: Value = app
        .client
        .get(app.env_url("/executions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(executions["items"], json!([]), "{executions}");
}

#[tokio::test]
async fn with_sessions_the_step_up_comes_before_the_answer_streams() {
    let app = TestApp::start_with(|c| c.mcp_sessions = true).await;
    app.create_workflow(GREEN).await;
    let runner = member(&app, "runner@example.com", Level::Run).await;
    let (path, resource) = dev_mcp(&app);
    let url = app.url(&path);
    let consented = grant(&app, runner.id, &resource, McpScope::Read).await;
    let client = http_client(Some(&token(&app, &consented, McpScope::Read)));

    let res = streamable(&client, reqwest::Method::POST, &url, None)
        .json(&initialize(1, PROTOCOL, "session-client"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let session = res.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let res = streamable(&client, reqwest::Method::POST, &url, Some(&session))
        .json(&initialized())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);

    // With a progress token too: without the gate this answer would be an SSE stream.
    let run = request(
        7,
        "tools/call",
        json!({"name": "run_workflow", "arguments": {"workflowName": "green", "wait": true},
               "_meta": {"progressToken": "p1"}}),
    );
    let res = streamable(&client, reqwest::Method::POST, &url, Some(&session))
        .json(&run)
        .send()
        .await
        .unwrap();
    assert_step_up(&app, &path, res, 7).await;
    no_executions(&app).await;
    assert_one_denial(&app, runner.id, "session-client/1.0.0").await;

    // The session lives on: a read tool answers in it.
    let res = streamable(&client, reqwest::Method::POST, &url, Some(&session))
        .json(&request(
            8,
            "tools/call",
            json!({"name": "list_workflows", "arguments": {}}),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let listed = message_of(&res.text().await.unwrap());
    assert_eq!(listed["result"]["isError"], false, "{listed}");

    // Someone else's session id is still nobody's session, step-up or not.
    let other = member(&app, "other@example.com", Level::Run).await;
    let theirs = grant(&app, other.id, &resource, McpScope::Read).await;
    let stranger = http_client(Some(&token(&app, &theirs, McpScope::Read)));
    let res = streamable(&stranger, reqwest::Method::POST, &url, Some(&session))
        .json(&run)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert!(res.headers().get("www-authenticate").is_none());
    assert_eq!(audit(&app, "workflow.run").await.len(), 1);
}

#[tokio::test]
async fn a_legacy_sse_post_answers_the_step_up_instead_of_202() {
    let app = TestApp::start().await;
    app.create_workflow(GREEN).await;
    let runner = member(&app, "runner@example.com", Level::Run).await;
    let (path, resource) = dev_mcp(&app);
    let url = app.url(&path);
    let consented = grant(&app, runner.id, &resource, McpScope::Read).await;
    let client = http_client(Some(&token(&app, &consented, McpScope::Read)));
    let (mut stream, post_url) = handshake(&client, &url, "legacy-client").await;

    let run = request(
        5,
        "tools/call",
        json!({"name": "run_workflow", "arguments": {"workflowName": "green"}}),
    );
    assert_step_up(&app, &path, post(&client, &post_url, &run).await, 5).await;
    no_executions(&app).await;
    assert_one_denial(&app, runner.id, "legacy-client/1.0.0").await;

    // Nothing about it went down the stream: the next message answers the next request.
    let res = post(
        &client,
        &post_url,
        &request(
            6,
            "tools/call",
            json!({"name": "list_workflows", "arguments": {}}),
        ),
    )
    .await;
    assert_eq!(res.status(), 202);
    let listed = stream.message().await;
    assert_eq!(listed["id"], 6, "{listed}");
    assert_eq!(listed["result"]["isError"], false, "{listed}");
}

#[tokio::test]
async fn a_role_below_the_tool_is_refused_once_whatever_the_transport() {
    let app = TestApp::start().await;
    app.create_workflow(GREEN).await;
    let reader = member(&app, "reader@example.com", Level::Read).await;
    let (path, resource) = dev_mcp(&app);
    let url = app.url(&path);
    let consented = grant(&app, reader.id, &resource, McpScope::Read).await;
    let client = http_client(Some(&token(&app, &consented, McpScope::Read)));
    let run = |id: u64| {
        request(
            id,
            "tools/call",
            json!({"name": "run_workflow", "arguments": {"workflowName": "green"}}),
        )
    };
    let forbidden = |answer: &Value| {
        assert_eq!(answer["result"]["isError"], true, "{answer}");
        assert!(
            answer["result"]["content"][0]["text"]
                .as_str()
                .unwrap()
                .starts_with("Forbidden: run_workflow needs run permission on this environment"),
            "{answer}"
        );
    };

    // Streamable HTTP.
    let res = rpc(&token(&app, &consented, McpScope::Read), &url, run(2)).await;
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("www-authenticate").is_none());
    forbidden(&message_of(&res.text().await.unwrap()));

    // Legacy HTTP+SSE: 202, and the ordinary result on the stream.
    let (mut stream, post_url) = handshake(&client, &url, "legacy-reader").await;
    let res = post(&client, &post_url, &run(3)).await;
    assert_eq!(res.status(), 202);
    let answer = stream.message().await;
    assert_eq!(answer["id"], 3, "{answer}");
    forbidden(&answer);

    // One denied event per call: decided once, before rmcp, never again by the tool.
    let runs = audit(&app, "workflow.run").await;
    assert_eq!(runs.len(), 2, "{runs:?}");
    for event in &runs {
        assert_eq!(event["outcome"], "denied", "{event}");
        assert_eq!(event["actor"]["id"], reader.id.to_string());
        assert_eq!(
            event["reason"], "forbidden: this needs run permission on the environment",
            "{event}"
        );
    }
}
