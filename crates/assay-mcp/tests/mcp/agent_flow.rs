//! What an AI agent does: write a workflow, run it, and find out why it failed — with real
//! processes writing a real JUnit report.

use crate::mcp::harness::*;
use serde_json::{Value, json};

/// A suite whose second step fails one JUnit test; the third step keeps the reports.
fn failing_suite() -> String {
    workflow(
        "login-tests",
        r#"steps:
- name: prepare
  shell: |
    for i in $(seq 1 150); do echo "noise $i"; done
- name: run tests
  shell: |
    mkdir -p reports
    cat > reports/junit.xml <<'XML'
    <?xml version="1.0" encoding="UTF-8"?>
    <testsuite name="auth" tests="3" failures="1" errors="0" skipped="0" time="0.5">
      <testcase classname="auth.LoginTest" name="accepts valid password" time="0.1"/>
      <testcase classname="auth.LoginTest" name="rejects expired token" time="0.2">
        <failure message="expected 401 but was 200">AssertionError at LoginTest.java:42</failure>
      </testcase>
      <testcase classname="auth.LoginTest" name="logs out" time="0.2"/>
    </testsuite>
    XML
    printf '\000\001\002\003binary' > reports/shot.bin
    for i in $(seq 1 30); do echo "test output line $i"; done
    echo "FAIL auth.LoginTest rejects expired token"
    exit 1
- name: collect reports
  condition: always
  artifacts:
    paths: ["reports/*"]"#,
    )
}

fn texts(lines: &Value) -> Vec<String> {
    lines
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_agent_writes_runs_and_diagnoses_a_failing_workflow() {
    let app = TestApp::start().await;
    let c = app.client(app.admin()).await;

    // Write it.
    let saved = c
        .ok("create_workflow", json!({"yaml": failing_suite()}))
        .await;
    assert_eq!(saved["name"], "login-tests");

    // A typo gets the closest names, not a dead end.
    let typo = c
        .err("run_workflow", json!({"workflowName": "login-test"}))
        .await;
    assert!(
        typo.starts_with("Workflow \"login-test\" not found. Closest existing names: login-tests."),
        "{typo}"
    );

    // Run it and wait: one call returns the result and the digest.
    let run = c
        .ok(
            "run_workflow",
            json!({"workflowName": "login-tests", "wait": true, "timeoutSeconds": 60}),
        )
        .await;
    assert_eq!(run["name"], "login-tests-1");
    assert_eq!(run["status"], "failed");
    assert!(run.get("timedOut").is_none());
    let steps: Vec<(String, String)> = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["ref"].as_str().unwrap().into(),
                s["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("1".to_string(), "passed".to_string()),
            ("2".into(), "failed".into()),
            ("3".into(), "passed".into())
        ]
    );
    let digest = &run["digest"];
    assert_eq!(digest["failedSteps"].as_array().unwrap().len(), 1);
    assert_eq!(digest["failedSteps"][0]["ref"], "2");
    assert_eq!(digest["failedSteps"][0]["name"], "run tests");
    assert_eq!(digest["failedSteps"][0]["exitCode"], 1);
    assert_eq!(digest["junitFailures"].as_array().unwrap().len(), 1);
    assert_eq!(digest["junitFailures"][0]["name"], "rejects expired token");
    assert_eq!(digest["junitFailures"][0]["classname"], "auth.LoginTest");
    assert_eq!(
        digest["junitFailures"][0]["message"],
        "expected 401 but was 200"
    );
    assert_eq!(digest["logStep"], "2");
    let tail: Vec<&str> = digest["lastLogLines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(tail.len(), 20);
    assert_eq!(tail[19], "FAIL auth.LoginTest rejects expired token");
    assert_eq!(tail[18], "test output line 30");
    assert!(
        digest["next"]
            .as_str()
            .unwrap()
            .contains("reports/junit.xml")
    );
    // Waiting reported progress.
    assert!(!c.progress(1).await.is_empty());

    // The same, later, through get_execution_info (by name); the text names the test too.
    let info = c
        .call(
            "get_execution_info",
            json!({"executionId": "login-tests-1"}),
        )
        .await;
    let rendered = text(&info);
    assert!(
        rendered.contains(
            "failed test auth.LoginTest.rejects expired token (failure): expected 401 but was 200"
        ),
        "{rendered}"
    );
    let info = info.structured_content.unwrap();
    assert_eq!(info["junit"]["tests"], 3);
    assert_eq!(info["junit"]["failures"], 1);
    assert_eq!(info["junit"]["reports"], json!(["reports/junit.xml"]));
    assert_eq!(info["digest"], *digest);
    let id = info["id"].as_str().unwrap().to_owned();

    // Logs: the tail (numbers as strings work too), grep, one step, and a wrong step.
    let logs = c
        .ok(
            "fetch_execution_logs",
            json!({"executionId": id, "tail": "3"}),
        )
        .await;
    assert_eq!(
        texts(&logs["lines"]),
        [
            "test output line 29",
            "test output line 30",
            "FAIL auth.LoginTest rejects expired token"
        ]
    );
    assert_eq!(logs["totalLines"], 181);
    let logs = c
        .ok("fetch_execution_logs", json!({"executionId": id}))
        .await;
    assert_eq!(logs["lines"].as_array().unwrap().len(), 100);
    let logs = c
        .ok(
            "fetch_execution_logs",
            json!({"executionId": id, "grep": "line (7|13)$"}),
        )
        .await;
    assert_eq!(
        texts(&logs["lines"]),
        ["test output line 7", "test output line 13"]
    );
    let logs = c
        .ok(
            "fetch_execution_logs",
            json!({"executionId": id, "grep": "noise"}),
        )
        .await;
    assert_eq!(logs["lines"].as_array().unwrap().len(), 100);
    assert_eq!(logs["truncated"], true);
    // One step, by name; line numbers stay those of the whole log.
    let logs = c
        .ok(
            "fetch_execution_logs",
            json!({"executionId": id, "step": "run tests", "tail": 2}),
        )
        .await;
    assert_eq!(logs["totalLines"], 31);
    assert_eq!(
        texts(&logs["lines"]),
        [
            "test output line 30",
            "FAIL auth.LoginTest rejects expired token"
        ]
    );
    assert_eq!(logs["lines"][1]["n"], 181);
    assert_eq!(logs["lines"][1]["step"], "2");
    let logs = c
        .ok(
            "fetch_execution_logs",
            json!({"executionId": id, "step": "2", "startLine": 151, "endLine": 152}),
        )
        .await;
    assert_eq!(
        texts(&logs["lines"]),
        ["test output line 1", "test output line 2"]
    );
    let wrong = c
        .err(
            "fetch_execution_logs",
            json!({"executionId": id, "step": "tests"}),
        )
        .await;
    assert!(
        wrong.contains("unknown step \"tests\"; valid steps (reference (name)): 1 (prepare), 2 (run tests), 3 (collect reports)"),
        "{wrong}"
    );

    // Artifacts: list, read a range, grep with context, a binary file.
    let list = c.ok("list_artifacts", json!({"executionId": id})).await;
    let mut paths: Vec<&str> = list["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["path"].as_str().unwrap())
        .collect();
    paths.sort();
    assert_eq!(paths, ["reports/junit.xml", "reports/shot.bin"]);
    let xml = c
        .ok(
            "read_artifact",
            json!({"executionId": id, "fileName": "reports/junit.xml", "startLine": 2, "endLine": 3}),
        )
        .await;
    assert!(xml.get("binary").is_none());
    assert_eq!(xml["totalLines"], 8);
    assert_eq!(xml["lines"][0]["n"], 2);
    assert!(
        xml["lines"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("<testsuite name=\"auth\"")
    );
    let grep = c
        .ok(
            "read_artifact",
            json!({"executionId": id, "fileName": "reports/junit.xml", "grep": "<failure", "context": 1}),
        )
        .await;
    let numbers: Vec<u64> = grep["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["n"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [4, 5, 6]);
    let bin = c
        .ok(
            "read_artifact",
            json!({"executionId": id, "fileName": "reports/shot.bin"}),
        )
        .await;
    assert_eq!(bin["binary"]["size"], 10);
    assert!(
        bin["binary"]["headHex"]
            .as_str()
            .unwrap()
            .starts_with("00010203")
    );
    assert!(bin.get("lines").is_none());

    // Queries over definitions and executions.
    let q = c
        .ok(
            "query_workflows",
            json!({"expression": "$.spec.steps[*].name"}),
        )
        .await;
    assert_eq!(
        q["results"],
        json!({"login-tests": ["prepare", "run tests", "collect reports"]})
    );
    let q = c
        .ok(
            "query_executions",
            json!({"expression": "$[?@.status=='failed'].name"}),
        )
        .await;
    assert_eq!(q["aggregate"], true);
    assert_eq!(q["results"], json!(["login-tests-1"]));
    let listed = c
        .ok(
            "list_executions",
            json!({"workflowName": "login-tests", "status": "failed", "pageSize": "5"}),
        )
        .await;
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["executions"][0]["id"], id.as_str());
    let found = c
        .ok(
            "lookup_execution_id",
            json!({"executionName": "login-tests-1"}),
        )
        .await;
    assert_eq!(found["id"], id.as_str());

    // Health and metrics reflect the run.
    let wf = c.ok("list_workflows", json!({})).await;
    assert_eq!(wf["total"], 1);
    assert_eq!(wf["workflows"][0]["latest"]["status"], "failed");
    let m = c
        .ok(
            "get_workflow_metrics",
            json!({"workflowName": "login-tests"}),
        )
        .await;
    assert_eq!(m["executions"], 1);
    assert_eq!(m["passRate"], 0.0);
    let url = c
        .ok(
            "build_dashboard_url",
            json!({"resourceType": "execution", "workflowName": "login-tests", "executionId": id, "stepRef": "2"}),
        )
        .await;
    assert_eq!(
        url["url"],
        format!(
            "https://assay.example.com/dashboard/organizations/acme/environments/dev/workflows/login-tests/executions/{id}/log-output?step=2"
        )
    );
}

#[tokio::test]
async fn read_artifact_never_leaves_the_artifacts() {
    let app = TestApp::start().await;
    let c = app.client(app.admin()).await;
    c.ok(
        "create_workflow",
        json!({"yaml": workflow("files", "steps:\n- shell: echo hi > out.txt\n  artifacts:\n    paths: [out.txt]")}),
    )
    .await;
    let run = c
        .ok(
            "run_workflow",
            json!({"workflowName": "files", "wait": true}),
        )
        .await;
    assert_eq!(run["status"], "passed", "{run}");
    assert!(run.get("digest").is_none());
    let id = run["id"].as_str().unwrap();
    let ok = c
        .ok(
            "read_artifact",
            json!({"executionId": id, "fileName": "out.txt"}),
        )
        .await;
    assert_eq!(ok["lines"], json!([{"n": 1, "text": "hi"}]));

    for path in [
        "../../etc/passwd",
        "/etc/passwd",
        "out.txt/../../../../etc/passwd",
        "./out.txt",
        "..\\..\\etc\\passwd",
    ] {
        let refusal = c
            .err(
                "read_artifact",
                json!({"executionId": id, "fileName": path}),
            )
            .await;
        assert!(
            refusal.contains("is not an artifact path"),
            "{path}: {refusal}"
        );
        assert!(!refusal.contains("root:"), "{path}: {refusal}");
    }
    // Spellings that pass the shape check are still only looked up in the index.
    for path in ["..%2f..%2fetc%2fpasswd", "etc/passwd", "out.txt%00"] {
        let refusal = c
            .err(
                "read_artifact",
                json!({"executionId": id, "fileName": path}),
            )
            .await;
        assert!(
            refusal.starts_with(&format!("Artifact {path:?} not found.")),
            "{path}: {refusal}"
        );
    }
}
