//! HTTP-layer behaviour the real control plane cannot be made to show on demand, over a
//! scripted one: panics, internal errors, timeouts, streams outliving the timeout,
//! broken streams, readiness failures, and what the control plane is handed.

use crate::fake::{DOWN_TOKEN, FAKE_TIMEOUT, FakeApp, SECRET};
use crate::support::{CapturedLogs, expect_problem, http_client};
use futures::StreamExt;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_panicking_handler_is_a_500_problem_and_the_server_lives_on() {
    let app = FakeApp::start().await;
    let res = app
        .client
        .get(app.env_url("/workflows/panic"))
        .send()
        .await
        .unwrap();
    let body = expect_problem(res, 500, "internal").await;
    assert!(!body.to_string().contains("scripted panic"), "{body}");
    let res = app
        .client
        .get(app.env_url("/workflows"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn internal_errors_hide_their_cause() {
    let app = FakeApp::start().await;
    let res = app
        .client
        .get(app.env_url("/workflows/internal"))
        .send()
        .await
        .unwrap();
    let body = expect_problem(res, 500, "internal").await;
    assert!(!body.to_string().contains("hunter2"), "{body}");
    assert!(!body.to_string().contains(SECRET), "{body}");
}

#[tokio::test]
async fn domain_errors_map_to_their_documented_problems() {
    let app = FakeApp::start().await;
    let cases = [
        ("forbidden", 403, "forbidden"),
        ("conflict", 409, "conflict"),
        ("unavailable", 503, "unavailable"),
        ("too-large", 413, "too-large"),
        ("missing", 404, "not-found"),
    ];
    for (name, status, kind) in cases {
        let res = app
            .client
            .get(app.env_url(&format!("/workflows/{name}")))
            .send()
            .await
            .unwrap();
        let body = expect_problem(res, status, kind).await;
        assert!(body.get("errors").is_none(), "{body}");
    }
    let res = app
        .client
        .get(app.env_url("/workflows/forbidden"))
        .send()
        .await
        .unwrap();
    let body = expect_problem(res, 403, "forbidden").await;
    assert!(body["detail"].as_str().unwrap().contains("write"), "{body}");
    let res = app
        .client
        .get(app.env_url("/workflows/expired"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["www-authenticate"], r#"Bearer realm="assay""#);
    expect_problem(res, 401, "unauthenticated").await;
}

#[tokio::test]
async fn an_authenticator_that_cannot_answer_is_503_not_401() {
    let app = FakeApp::start().await;
    let res = http_client(Some(DOWN_TOKEN))
        .get(app.env_url("/workflows"))
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("www-authenticate").is_none());
    expect_problem(res, 503, "unavailable").await;
}

#[tokio::test]
async fn a_request_over_the_time_limit_is_a_503_problem() {
    let app = FakeApp::start().await;
    let started = Instant::now();
    let res = app
        .client
        .get(app.env_url("/workflows/slow"))
        .send()
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert!(elapsed >= FAKE_TIMEOUT, "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    expect_problem(res, 503, "unavailable").await;
}

#[tokio::test]
async fn streams_and_downloads_outlive_the_request_timeout() {
    let app = FakeApp::start().await;
    let started = Instant::now();
    let res = app
        .client
        .get(app.env_url("/executions/slow-stream/logs/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    let body = res.text().await.unwrap();
    assert!(started.elapsed() > FAKE_TIMEOUT * 2);
    let texts: Vec<String> = body
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["text"].to_string())
        .collect();
    assert_eq!(texts, vec!["\"line 1\"", "\"line 2\"", "\"line 3\""]);

    let res = app
        .client
        .get(
            app.env_url("/executions/slow-download/artifacts/site/index%20page.html?download=true"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/html");
    assert_eq!(
        res.headers()["content-disposition"],
        "attachment; filename=\"index_page.html\""
    );
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert_eq!(
        res.headers()["content-security-policy"],
        "default-src 'none'; sandbox"
    );
    assert_eq!(res.text().await.unwrap(), "helloworld");
}

#[tokio::test]
async fn a_stream_that_fails_midway_is_cut_off_not_completed() {
    let app = FakeApp::start().await;
    let res = app
        .client
        .get(app.env_url("/executions/broken-stream/logs/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut chunks = res.bytes_stream();
    let first = chunks.next().await.unwrap().unwrap();
    let line: serde_json::Value = serde_json::from_slice(&first).unwrap();
    assert_eq!(line["number"], 1);
    let mut failed = false;
    while let Some(chunk) = chunks.next().await {
        if chunk.is_err() {
            failed = true;
            break;
        }
    }
    assert!(failed, "a truncated stream must not look complete");
}

#[tokio::test]
async fn readiness_failure_is_a_503_problem() {
    let app = FakeApp::start().await;
    app.ready.store(false, Ordering::SeqCst);
    let res = http_client(None)
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    expect_problem(res, 503, "unavailable").await;
    app.ready.store(true, Ordering::SeqCst);
    let res = http_client(None)
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn the_control_plane_gets_the_actor_and_the_document_verbatim() {
    let app = FakeApp::start().await;
    // CRLF, a BOM-less odd layout and trailing blanks must arrive untouched.
    let source = "kind: TestWorkflow\r\nmetadata:\r\n  name: echo   \r\n\r\n";
    let res = app
        .client
        .post(app.env_url("/workflows"))
        .header("content-type", "application/x-yaml")
        .header("user-agent", "assay-tests/1.0")
        .header("x-request-id", "req-verbatim")
        .body(source)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(
        app.fake.last_source.lock().unwrap().as_deref(),
        Some(source)
    );
    let actor = app.fake.last_actor.lock().unwrap().clone().unwrap();
    assert_eq!(actor.principal.display_name, "fake");
    assert_eq!(actor.client.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(actor.client.user_agent.as_deref(), Some("assay-tests/1.0"));
    assert_eq!(actor.client.request_id.as_deref(), Some("req-verbatim"));
    assert_eq!(actor.client.mcp_client, None);
}

#[tokio::test]
async fn tokens_never_reach_the_logs_but_internal_causes_do() {
    let (logs, _guard) = CapturedLogs::start();

    let app = FakeApp::start().await;
    let res = app
        .client
        .get(app.env_url("/workflows/internal"))
        .header("x-request-id", "req-logged")
        .send()
        .await
        .unwrap();
    expect_problem(res, 500, "internal").await;
    let leaky = "assay_leaky_token_0123456789";
    let res = http_client(Some(leaky))
        .get(format!(
            "{}?access_token={leaky}",
            app.env_url("/workflows")
        ))
        .send()
        .await
        .unwrap();
    expect_problem(res, 401, "unauthenticated").await;

    let logs = logs.text();
    // The cause is logged next to the request id…
    let cause_line = logs
        .lines()
        .find(|l| l.contains("hunter2"))
        .unwrap_or_else(|| panic!("internal cause not logged:\n{logs}"));
    assert!(cause_line.contains("req-logged"), "{cause_line}");
    // …and no credential is logged anywhere, from the header or the query string.
    assert!(!logs.contains(crate::fake::GOOD_TOKEN), "{logs}");
    assert!(!logs.contains(leaky), "{logs}");
}
