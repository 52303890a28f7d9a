//! Waiting, aborting and tagging executions through the tools.

use crate::mcp::harness::*;
use serde_json::json;

#[tokio::test]
async fn wait_for_executions_reports_progress_and_returns_final_states() {
    let app = TestApp::start().await;
    let c = app.client(app.admin()).await;
    c.ok(
        "create_workflow",
        json!({"yaml": workflow("slow", "steps:\n- shell: sleep 0.5; echo done")}),
    )
    .await;
    let a = c.ok("run_workflow", json!({"workflowName": "slow"})).await;
    let b = c
        .ok(
            "run_workflow",
            json!({"workflowName": "slow", "tags": {"build": 42}}),
        )
        .await;
    assert_eq!(a["status"], "queued");
    assert_eq!(b["tags"], json!({"build": "42"}));

    // Testkube's comma-separated string form and numeric-string timeout.
    let ids = format!(
        "{},{}",
        a["id"].as_str().unwrap(),
        b["name"].as_str().unwrap()
    );
    let done = c
        .ok(
            "wait_for_executions",
            json!({"executionIds": ids, "timeoutSeconds": "60"}),
        )
        .await;
    assert_eq!(done["allFinished"], true);
    let states: Vec<(&str, &str)> = done["executions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["status"].as_str().unwrap()))
        .collect();
    assert_eq!(states, [("slow-1", "passed"), ("slow-2", "passed")]);

    // Progress went out while waiting: distinct, growing values (sorted here, as the client
    // handles them concurrently), finished counts that never go down, and the last one
    // saying all are done.
    let progress = c.progress(2).await;
    assert!(progress.len() >= 2, "{progress:?}");
    assert!(progress.windows(2).all(|w| w[1].progress > w[0].progress));
    assert!(progress.iter().all(|p| p.total == Some(60.0)));
    let finished: Vec<u32> = progress
        .iter()
        .map(|p| {
            let m = p.message.as_deref().unwrap();
            m.split('/').next().unwrap().parse().unwrap()
        })
        .collect();
    assert!(finished.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    assert_eq!(
        progress.last().and_then(|p| p.message.as_deref()),
        Some("2/2 finished")
    );
}

#[tokio::test]
async fn a_wait_times_out_then_the_execution_is_aborted_and_tagged() {
    let app = TestApp::start().await;
    let c = app.client(app.admin()).await;
    let release = app.dir.path().join("release");
    let script = format!(
        "while [ ! -f '{}' ]; do sleep 0.05; done",
        release.display()
    );
    c.ok(
        "create_workflow",
        json!({"yaml": workflow("blocked", &format!("steps:\n- shell: {}", serde_json::to_string(&script).unwrap()))}),
    )
    .await;
    let run = c
        .ok(
            "run_workflow",
            json!({"workflowName": "blocked", "wait": true, "timeoutSeconds": 1}),
        )
        .await;
    assert_eq!(run["timedOut"], true);
    assert!(run.get("digest").is_none());
    let id = run["id"].as_str().unwrap().to_owned();

    let waited = c
        .ok(
            "wait_for_executions",
            json!({"executionIds": [id.clone()], "timeoutSeconds": 1}),
        )
        .await;
    assert_eq!(waited["allFinished"], false);
    assert_eq!(waited["executions"][0]["status"], "running");

    let aborted = c
        .ok(
            "abort_workflow_execution",
            json!({"executionId": id, "workflowName": "blocked"}),
        )
        .await;
    assert_eq!(aborted["execution"]["id"], id.as_str());
    let done = c
        .ok("wait_for_executions", json!({"executionIds": [id.clone()]}))
        .await;
    assert_eq!(done["executions"][0]["status"], "aborted");

    let tagged = c
        .ok(
            "update_execution_tags",
            json!({"executionId": id, "tags": {"triage": "flaky", "attempt": 2}}),
        )
        .await;
    assert_eq!(tagged["tags"], json!({"attempt": "2", "triage": "flaky"}));
    let info = c.ok("get_execution_info", json!({"executionId": id})).await;
    assert_eq!(info["tags"], json!({"attempt": "2", "triage": "flaky"}));
    assert_eq!(info["status"], "aborted");
    assert_eq!(info["digest"]["failedSteps"][0]["status"], "aborted");
}

#[tokio::test]
async fn bad_arguments_explain_themselves() {
    let app = TestApp::start().await;
    let c = app.client(app.admin()).await;
    let text = c
        .err("wait_for_executions", json!({"executionIds": ""}))
        .await;
    assert!(text.starts_with("executionIds is empty"), "{text}");
    let text = c.err("get_execution_info", json!({})).await;
    assert!(
        text.starts_with("Invalid arguments for get_execution_info: missing field `executionId`"),
        "{text}"
    );
    let text = c
        .err(
            "fetch_execution_logs",
            json!({"executionId": "x", "tail": "ten"}),
        )
        .await;
    assert!(
        text.contains("\"ten\" is not a non-negative integer"),
        "{text}"
    );
    let text = c
        .err("query_workflows", json!({"expression": "spec.steps"}))
        .await;
    assert!(text.starts_with("Invalid JSONPath"), "{text}");
    let text = c
        .err(
            "create_workflow",
            json!({"yaml": workflow("bad", "steps:\n- name: x\n  timeout: 5x\n  shell: echo")}),
        )
        .await;
    assert!(
        text.starts_with("Invalid input:\n- spec.steps[0].timeout"),
        "{text}"
    );
    assert!(
        text.ends_with("get_workflow_schema shows the document format."),
        "{text}"
    );
    let text = c
        .err("get_execution_info", json!({"executionId": "nope-1"}))
        .await;
    assert!(
        text.starts_with("Execution \"nope-1\" not found."),
        "{text}"
    );

    // An unknown tool is a protocol error, not a tool result.
    let err = c
        .service
        .call_tool(rmcp::model::CallToolRequestParams::new("no_such_tool"))
        .await;
    assert!(err.is_err());
}

#[tokio::test]
async fn the_workflow_schema_is_a_workflow_that_parses() {
    let app = TestApp::start().await;
    let c = app.client(app.member(assay_core::Level::Read)).await;
    let s = c.ok("get_workflow_schema", json!({})).await;
    let yaml = s["schema"].as_str().unwrap();
    assert!(yaml.contains("kind: TestWorkflow"));
    let e = c.ok("get_execution_schema", json!({})).await;
    assert!(e["schema"].as_str().unwrap().contains("junitFailures"));
    let labels = c.ok("list_labels", json!({})).await;
    assert_eq!(labels["labels"], json!({}));
    let agents = c.ok("list_agents", json!({})).await;
    assert_eq!(agents["agents"][0]["kind"], "local");
    let none = c.ok("list_agents", json!({"type": "kubernetes"})).await;
    assert_eq!(none["agents"], json!([]));
}
