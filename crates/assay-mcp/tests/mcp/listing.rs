//! What `tools/list` shows whom, its size, and that calls are authorized regardless.

use crate::mcp::harness::*;
use assay_core::Level;
use assay_core::audit::Outcome;
use assay_mcp::tool_level;
use serde_json::json;

const RUN_TOOLS: [&str; 3] = [
    "run_workflow",
    "abort_workflow_execution",
    "update_execution_tags",
];
const WRITE_TOOLS: [&str; 5] = [
    "create_workflow",
    "update_workflow",
    "delete_workflow",
    "create_workflowtemplate",
    "update_workflowtemplate",
];

#[tokio::test]
async fn an_admin_sees_every_tool_with_schemas_and_annotations() {
    let app = TestApp::start().await;
    let client = app.client(app.admin()).await;
    let tools = client.tools().await;
    assert_eq!(
        tools.iter().map(|t| t.name.to_string()).collect::<Vec<_>>(),
        assay_mcp::tool_names()
    );
    assert_eq!(tools.len(), 30);
    for t in &tools {
        let a = t.annotations.as_ref().unwrap();
        assert!(
            a.title.as_deref().is_some_and(|s| !s.is_empty()),
            "{}",
            t.name
        );
        let read_only = tool_level(&t.name) == Level::Read;
        assert_eq!(a.read_only_hint, Some(read_only), "{}", t.name);
        // The other two hints only mean something for tools that change things.
        assert_eq!(
            a.destructive_hint.is_some() && a.idempotent_hint.is_some(),
            !read_only,
            "{}",
            t.name
        );
        assert!(a.open_world_hint.is_some(), "{}", t.name);
        assert_eq!(
            t.input_schema.get("type"),
            Some(&json!("object")),
            "{}",
            t.name
        );
        let out = t.output_schema.as_ref().unwrap();
        assert_eq!(out.get("type"), Some(&json!("object")), "{}", t.name);
        assert!(
            t.description.as_ref().is_some_and(|d| d.len() <= 160),
            "{}",
            t.name
        );
    }
    let run = tools.iter().find(|t| t.name == "run_workflow").unwrap();
    let a = run.annotations.as_ref().unwrap();
    assert_eq!(
        (
            a.read_only_hint,
            a.destructive_hint,
            a.idempotent_hint,
            a.open_world_hint
        ),
        (Some(false), Some(false), Some(false), Some(true))
    );
    // Numbers are advertised as numbers.
    let logs = tools
        .iter()
        .find(|t| t.name == "fetch_execution_logs")
        .unwrap();
    assert_eq!(
        logs.input_schema["properties"]["tail"]["type"],
        json!("integer")
    );
    assert_eq!(logs.input_schema["required"], json!(["executionId"]));
}

/// The whole tools/list response (JSON-RPC envelope included) stays under 16 KB: it is
/// sent to the model on every turn.
#[tokio::test]
async fn the_tool_list_stays_under_16_kb() {
    let app = TestApp::start().await;
    let client = app.client(app.admin()).await;
    let result = client.service.list_tools(None).await.unwrap();
    let response = json!({"jsonrpc": "2.0", "id": 1, "result": result});
    let bytes = serde_json::to_vec(&response).unwrap().len();
    assert!(bytes < 16 * 1024, "tools/list is {bytes} bytes");
    assert_eq!(result.tools.len(), 30);
}

#[tokio::test]
async fn a_read_only_member_sees_only_read_tools_and_is_refused_the_rest() {
    let app = TestApp::start().await;
    let client = app.client(app.member(Level::Read)).await;
    let names = client.tool_names().await;
    assert_eq!(names.len(), 22);
    for name in &names {
        assert_eq!(tool_level(name), Level::Read, "{name}");
    }
    for hidden in RUN_TOOLS.iter().chain(&WRITE_TOOLS) {
        assert!(!names.iter().any(|n| n == hidden), "{hidden} listed");
    }

    // Calling a tool that was not listed is still decided by the control plane.
    let text = client
        .err("run_workflow", json!({"workflowName": "anything"}))
        .await;
    assert!(
        text.starts_with("Forbidden: run_workflow needs run permission on this environment"),
        "{text}"
    );
    assert!(text.contains("mcp:run"), "{text}");
    let text = client
        .err(
            "create_workflow",
            json!({"yaml": workflow("x", "steps:\n- shell: echo")}),
        )
        .await;
    assert!(
        text.starts_with("Forbidden: create_workflow needs write permission"),
        "{text}"
    );

    // The denial is on the record, attributed to this MCP client.
    let events = app.store.audit_events(app.acme.id, 0, 1000).await.unwrap();
    let denied = events
        .iter()
        .find(|e| e.action == "workflow.run")
        .expect("audited");
    assert_eq!(denied.outcome, Outcome::Denied);
    assert_eq!(denied.client.mcp_client.as_deref(), Some("test-client/1.0"));
}

#[tokio::test]
async fn run_and_write_members_see_their_levels() {
    let app = TestApp::start().await;
    let runner = app.client(app.member(Level::Run)).await;
    let names = runner.tool_names().await;
    assert_eq!(names.len(), 25);
    for t in RUN_TOOLS {
        assert!(names.iter().any(|n| n == t), "{t}");
    }
    assert!(!names.iter().any(|n| n == "create_workflow"));
    let writer = app.client(app.member(Level::Write)).await;
    assert_eq!(writer.tool_names().await.len(), 30);
}

/// With environment IDs the listing is exact: a member of dev sees nothing for staging,
/// while by slug it sees its best level anywhere; calls are refused either way.
#[tokio::test]
async fn listing_by_environment_ids_is_exact_and_calls_are_checked_anyway() {
    let app = TestApp::start().await;
    let member = app.member(Level::Write);
    let by_id = |env: &assay_core::Environment| {
        assay_core::EnvRef::new(app.acme.id.to_string(), env.id.to_string())
    };
    let dev = app.client_in(member.clone(), by_id(&app.dev)).await;
    assert_eq!(dev.tools().await.len(), 30);
    let staging = app.client_in(member.clone(), by_id(&app.staging)).await;
    assert!(staging.tools().await.is_empty());
    let by_slug = app
        .client_in(member, assay_core::EnvRef::new("acme", "staging"))
        .await;
    assert_eq!(by_slug.tools().await.len(), 30);
    let text = by_slug.err("list_workflows", json!({})).await;
    assert_eq!(
        text,
        "Environment \"acme/staging\" not found. Check the organization and environment this MCP server is configured for."
    );
}

#[tokio::test]
async fn a_principal_without_access_sees_no_tools() {
    let app = TestApp::start().await;
    let mut stranger = app.member(Level::Read);
    stranger.principal.access = assay_core::actor::Access::PerEnvironment {
        grants: Default::default(),
    };
    let client = app.client(stranger).await;
    assert!(client.tools().await.is_empty());
    let text = client.err("list_workflows", json!({})).await;
    assert!(
        text.starts_with("Environment \"acme/dev\" not found."),
        "{text}"
    );
}
