//! Step-up at the MCP endpoint (MCP authorization; RFC 6750 §3.1): a tool needing more
//! than the OAuth token's scope — while the user's role allows it — answers 403 with an
//! `insufficient_scope` challenge naming the scope; a role that does not allow it keeps
//! the ordinary `isError` result. `tools/list` shows an OAuth user what their role allows.

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
