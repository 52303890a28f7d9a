//! Running a workflow through the API and reading what it left: status, logs (paged and
//! streamed), artifacts (read, download, traversal attempts), metrics.

use crate::support::{TestApp, expect_problem, raw_get};
use futures::StreamExt;
use serde_json::Value;
use std::time::Duration;

const REPORT: &str = "\
kind: TestWorkflow
metadata:
  name: report
  labels: {suite: api}
spec:
  steps:
  - name: produce
    shell: |
      echo starting
      mkdir -p out
      printf 'line one\\nline two\\nneedle here\\n' > out/report.txt
      echo done
    artifacts:
      paths: [\"out/*\"]
";

/// Runs `report` to completion and returns the finished execution.
async fn finished_report(app: &TestApp) -> Value {
    app.create_workflow(REPORT).await;
    let started = app.run("report").await;
    assert_eq!(started["workflow_name"], "report");
    assert_eq!(started["number"], 1);
    app.wait_finished(started["id"].as_str().unwrap()).await
}

#[tokio::test]
async fn a_passing_workflow_runs_to_passed_and_its_logs_can_be_read() {
    let app = TestApp::start().await;
    app.create_workflow(REPORT).await;
    let res = app
        .client
        .post(app.env_url("/workflows/report/executions"))
        .json(&serde_json::json!({"tags": {"ci": "yes"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let started: Value = res.json().await.unwrap();
    let id = started["id"].as_str().unwrap().to_owned();
    assert_eq!(location, app.env_url(&format!("/executions/{id}")));
    let done = app.wait_finished(&id).await;
    assert_eq!(done["status"], "passed", "{done}");
    assert_eq!(done["name"], "report-1");
    assert_eq!(done["tags"]["ci"], "yes");

    // By name too.
    let by_name: Value = app
        .client
        .get(app.env_url("/executions/report-1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_name["id"], id.as_str());

    // Logs as JSON.
    let res = app
        .client
        .get(app.env_url("/executions/report-1/logs"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let logs: Value = res.json().await.unwrap();
    let texts: Vec<&str> = logs["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert!(texts.contains(&"starting"), "{logs}");
    assert!(texts.contains(&"done"), "{logs}");
    let grep: Value = app
        .client
        .get(app.env_url("/executions/report-1/logs?grep=^done$"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let lines = grep["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 1, "{grep}");
    assert_eq!(lines[0]["text"], "done");

    // Listing with a status filter finds it; another status does not.
    let page: Value = app
        .client
        .get(app.env_url("/executions?status=passed&workflow=report"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["name"], "report-1");
    let page: Value = app
        .client
        .get(app.env_url("/executions?status=failed,aborted"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 0);

    // Tags are replaced.
    let res = app
        .client
        .put(app.env_url("/executions/report-1/tags"))
        .json(&serde_json::json!({"tags": {"reviewed": "true"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let tagged: Value = res.json().await.unwrap();
    assert_eq!(tagged["tags"], serde_json::json!({"reviewed": "true"}));

    // Metrics and insight routes answer.
    for path in [
        "/executions/report-1/metrics",
        "/workflows/report/metrics?last=10",
        "/workflows/report/resource-history",
        "/labels",
        "/runners",
    ] {
        let res = app.client.get(app.env_url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()["content-type"], "application/json", "{path}");
    }
    let metrics: Value = app
        .client
        .get(app.env_url("/workflows/report/metrics"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metrics["executions"], 1, "{metrics}");
    let labels: Value = app
        .client
        .get(app.env_url("/labels"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(labels, serde_json::json!({"labels": {"suite": ["api"]}}));
    let runners: Value = app
        .client
        .get(app.env_url("/runners"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(runners["items"][0]["kind"], "local", "{runners}");
    app.stop().await;
}

#[tokio::test]
async fn the_ndjson_log_stream_ends_with_the_execution() {
    let app = TestApp::start().await;
    let done = finished_report(&app).await;
    assert_eq!(done["status"], "passed", "{done}");
    let res = app
        .client
        .get(app.env_url("/executions/report-1/logs/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    let body = tokio::time::timeout(Duration::from_secs(20), res.text())
        .await
        .expect("the stream ends once the log is closed")
        .unwrap();
    assert!(body.ends_with('\n'));
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let texts: Vec<&str> = lines.iter().map(|l| l["text"].as_str().unwrap()).collect();
    assert!(
        texts.contains(&"starting") && texts.contains(&"done"),
        "{body}"
    );
    let numbers: Vec<u64> = lines
        .iter()
        .map(|l| l["number"].as_u64().unwrap())
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");

    // after_line skips what the caller has seen.
    let last = *numbers.last().unwrap();
    let rest = app
        .client
        .get(format!(
            "{}?after_line={last}",
            app.env_url("/executions/report-1/logs/stream")
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(rest, "");

    // Unknown execution: a problem, not a stream.
    let res = app
        .client
        .get(app.env_url("/executions/nope-1/logs/stream"))
        .send()
        .await
        .unwrap();
    expect_problem(res, 404, "not-found").await;
}

#[tokio::test]
async fn a_live_stream_delivers_lines_before_the_execution_ends() {
    let app = TestApp::start().await;
    app.create_workflow(
        "\
kind: TestWorkflow
metadata:
  name: slow
spec:
  steps:
  - shell: |
      echo first
      sleep 2
      echo second
",
    )
    .await;
    let started = app.run("slow").await;
    let id = started["id"].as_str().unwrap();
    let res = app
        .client
        .get(app.env_url(&format!("/executions/{id}/logs/stream")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut chunks = res.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(20), chunks.next())
        .await
        .expect("a first line arrives while the step sleeps")
        .unwrap()
        .unwrap();
    let first: Value = serde_json::from_slice(&first).unwrap();
    assert_eq!(first["text"], "first");
    let status: Value = app
        .client
        .get(app.env_url(&format!("/executions/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "running", "{status}");
    let mut rest = Vec::new();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(20), chunks.next())
        .await
        .expect("the stream ends")
    {
        rest.extend_from_slice(&chunk.unwrap());
    }
    let rest = String::from_utf8(rest).unwrap();
    assert!(rest.contains("\"second\""), "{rest}");
}

#[tokio::test]
async fn artifacts_can_be_listed_read_and_downloaded() {
    let app = TestApp::start().await;
    let done = finished_report(&app).await;
    assert_eq!(done["status"], "passed", "{done}");

    let res = app
        .client
        .get(app.env_url("/executions/report-1/artifacts"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let list: Value = res.json().await.unwrap();
    assert_eq!(list["total"], 1, "{list}");
    let artifact = &list["items"][0];
    let path = artifact["path"].as_str().unwrap().to_owned();
    assert!(path.ends_with("report.txt"), "{list}");
    assert_eq!(artifact["size"], 30);

    // Read as text lines, grep.
    let content: Value = app
        .client
        .get(app.env_url(&format!(
            "/executions/report-1/artifacts/{path}?grep=needle"
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(content["kind"], "text", "{content}");
    assert_eq!(content["lines"], serde_json::json!([[3, "needle here"]]));

    // Download the raw bytes.
    let res = app
        .client
        .get(app.env_url(&format!(
            "/executions/report-1/artifacts/{path}?download=true"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-disposition"],
        "attachment; filename=\"report.txt\""
    );
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        ct.starts_with("text/plain") || ct == "application/octet-stream",
        "{ct}"
    );
    assert_eq!(
        res.bytes().await.unwrap().as_ref(),
        b"line one\nline two\nneedle here\n"
    );

    // A bad flag is refused, not guessed.
    let res = app
        .client
        .get(app.env_url(&format!(
            "/executions/report-1/artifacts/{path}?download=yes"
        )))
        .send()
        .await
        .unwrap();
    let body = expect_problem(res, 422, "invalid").await;
    assert_eq!(body["errors"][0]["path"], "download");
}

#[tokio::test]
async fn artifact_paths_cannot_escape_the_execution() {
    let app = TestApp::start().await;
    let done = finished_report(&app).await;
    assert_eq!(done["status"], "passed", "{done}");
    let base = "/v1/organizations/default/environments/dev/executions/report-1/artifacts";
    let attempts = [
        "..%2f..%2fetc%2fpasswd",
        "%2e%2e/%2e%2e/etc/passwd",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "../../etc/passwd",
        "/etc/passwd",
        "%2fetc%2fpasswd",
        "out/../../../../etc/passwd",
        "..%5c..%5cetc%5cpasswd",
    ];
    for attempt in attempts {
        for download in ["", "?download=true"] {
            let target = format!("{base}/{attempt}{download}");
            let (status, head, body) = raw_get(app.addr, &target, &app.token).await;
            assert!(!body.contains("root:"), "{target} leaked a file: {body}");
            assert_eq!(status, 404, "{target}: {head}\n{body}");
            assert!(
                head.contains("content-type: application/problem+json"),
                "{target}: {head}"
            );
            let problem: Value = serde_json::from_str(&body).unwrap();
            // It reached the artifact store (decoded once) and was refused there; the
            // router did not just miss.
            assert!(
                problem["detail"].as_str().unwrap().starts_with("artifact "),
                "{target}: {problem}"
            );
            assert_eq!(problem["type"], "urn:assay:problem:not-found", "{target}");
        }
    }
}

#[tokio::test]
async fn waiting_answers_when_the_execution_finishes_or_at_the_timeout() {
    let app = TestApp::start().await;
    app.create_workflow(
        "\
kind: TestWorkflow
metadata:
  name: pause
spec:
  steps:
  - shell: sleep 1
",
    )
    .await;
    let started = app.run("pause").await;
    let id = started["id"].as_str().unwrap();
    let wait = |secs: &str| {
        app.client
            .get(app.env_url(&format!("/executions/{id}/wait?timeout_secs={secs}")))
            .send()
    };

    let early = wait("0").await.unwrap();
    assert_eq!(early.status(), 200);
    let early: Value = early.json().await.unwrap();
    assert!(
        matches!(early["status"].as_str(), Some("queued" | "running")),
        "{early}"
    );

    let done = wait("20").await.unwrap();
    assert_eq!(done.status(), 200);
    let done: Value = done.json().await.unwrap();
    assert_eq!(done["status"], "passed", "{done}");

    let bad = wait("soon").await.unwrap();
    assert_eq!(bad.status(), 422);
    let problem: Value = bad.json().await.unwrap();
    assert_eq!(problem["type"], "urn:assay:problem:invalid");
}
