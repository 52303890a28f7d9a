//! Every failure is problem+json with the right status, including framework-level ones.

use crate::support::{TestApp, expect_problem};
use std::time::{Duration, Instant};

pub const SMOKE: &str = "\
kind: TestWorkflow
apiVersion: testworkflows.testkube.io/v1
metadata:
  name: smoke
spec:
  steps:
  - name: hello
    shell: echo hello
";

#[tokio::test]
async fn an_unknown_route_is_a_404_problem() {
    let app = TestApp::start().await;
    for path in [
        "/v1/nope".to_owned(),
        "/".to_owned(),
        app.env_url("/nope").replacen(&app.base, "", 1),
        "/v1/organizations/default/environments/dev/workflows/a/b/c".to_owned(),
    ] {
        let res = app.client.get(app.url(&path)).send().await.unwrap();
        expect_problem(res, 404, "not-found").await;
    }
}

#[tokio::test]
async fn a_wrong_method_is_a_405_problem_with_allow() {
    let app = TestApp::start().await;
    let res = app
        .client
        .delete(app.env_url("/workflows"))
        .send()
        .await
        .unwrap();
    let allow = res.headers()["allow"].to_str().unwrap().to_owned();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    expect_problem(res, 405, "method-not-allowed").await;
    let res = app.anon.post(app.url("/healthz")).send().await.unwrap();
    expect_problem(res, 405, "method-not-allowed").await;
}

#[tokio::test]
async fn a_10_mb_body_is_a_413_problem() {
    let app = TestApp::start().await;
    let body = "a: b\n".repeat(2 * 1024 * 1024); // 10 MiB
    let res = app
        .client
        .post(app.env_url("/workflows"))
        .header("content-type", "text/yaml")
        .body(body)
        .send()
        .await
        .unwrap();
    expect_problem(res, 413, "too-large").await;
    // The same through a chunked body, which has no Content-Length to check up front.
    let chunks =
        futures::stream::iter((0..10).map(|_| Ok::<_, std::io::Error>(vec![b'#'; 1024 * 1024])));
    let res = app
        .client
        .post(app.env_url("/workflows"))
        .header("content-type", "text/yaml")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    expect_problem(res, 413, "too-large").await;
    // Under the body limit but over the document limit (1 MiB): the parser says so.
    let doc = format!("{}{SMOKE}", "# padding\n".repeat(150 * 1024));
    let res = app
        .client
        .post(app.env_url("/workflows"))
        .header("content-type", "text/yaml")
        .body(doc)
        .send()
        .await
        .unwrap();
    expect_problem(res, 413, "too-large").await;
}

#[tokio::test]
async fn a_document_with_an_unsupported_content_type_is_a_415_problem() {
    let app = TestApp::start().await;
    for ct in [Some("text/plain"), Some("application/xml"), None] {
        let mut req = app.client.post(app.env_url("/workflows")).body(SMOKE);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let res = req.send().await.unwrap();
        expect_problem(res, 415, "unsupported-media-type").await;
    }
    // Every documented type is accepted (and parameters like charset are fine).
    for (i, ct) in [
        "text/yaml",
        "application/yaml",
        "application/x-yaml; charset=utf-8",
        "application/json",
    ]
    .iter()
    .enumerate()
    {
        let doc = SMOKE.replace("name: smoke", &format!("name: smoke-{i}"));
        let doc = if ct.starts_with("application/json") {
            serde_json::json!({
                "kind": "TestWorkflow",
                "metadata": {"name": format!("smoke-{i}")},
                "spec": {"steps": [{"shell": "echo hi"}]},
            })
            .to_string()
        } else {
            doc
        };
        let res = app
            .client
            .post(app.env_url("/workflows"))
            .header("content-type", *ct)
            .body(doc)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "{ct}: {}", res.text().await.unwrap());
    }
}

#[tokio::test]
async fn a_document_that_is_not_utf8_is_a_400_problem() {
    let app = TestApp::start().await;
    let mut body = SMOKE.as_bytes().to_vec();
    body.extend_from_slice(&[0xff, 0xfe, b'\n']);
    let res = app
        .client
        .post(app.env_url("/workflows"))
        .header("content-type", "text/yaml")
        .body(body)
        .send()
        .await
        .unwrap();
    expect_problem(res, 400, "bad-request").await;
}

#[tokio::test]
async fn malformed_json_on_run_is_a_400_problem() {
    let app = TestApp::start().await;
    app.create_workflow(SMOKE).await;
    let res = app
        .client
        .post(app.env_url("/workflows/smoke/executions"))
        .header("content-type", "application/json")
        .body(r#"{"config": "#)
        .send()
        .await
        .unwrap();
    let body = expect_problem(res, 400, "bad-request").await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("malformed JSON")
    );
    // A run body in another media type.
    let res = app
        .client
        .post(app.env_url("/workflows/smoke/executions"))
        .header("content-type", "text/plain")
        .body(r#"{"config": {}}"#)
        .send()
        .await
        .unwrap();
    expect_problem(res, 415, "unsupported-media-type").await;
    // Unknown fields in the run request are named, not ignored.
    let res = app
        .client
        .post(app.env_url("/workflows/smoke/executions"))
        .json(&serde_json::json!({"confg": {"x": 1}}))
        .send()
        .await
        .unwrap();
    let body = expect_problem(res, 422, "invalid").await;
    assert_eq!(body["errors"][0]["path"], "confg");
}

#[tokio::test]
async fn an_invalid_document_is_a_422_problem_with_field_paths() {
    let app = TestApp::start().await;
    let doc = "\
kind: TestWorkflow
metadata:
  name: typo
spec:
  steps:
  - shell: echo ok
  - shell: echo ok
    timeot: 5s
";
    let res = app
        .client
        .post(app.env_url("/workflows"))
        .header("content-type", "text/yaml")
        .body(doc)
        .send()
        .await
        .unwrap();
    let body = expect_problem(res, 422, "invalid").await;
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(errors[0]["path"], "spec.steps[1].timeot");
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field")
    );

    // YAML syntax errors are reported the same way (the document is the input).
    let res = app
        .client
        .post(app.env_url("/workflows"))
        .header("content-type", "text/yaml")
        .body("metadata:\n  name: [x\n")
        .send()
        .await
        .unwrap();
    expect_problem(res, 422, "invalid").await;
}

#[tokio::test]
async fn a_yaml_alias_bomb_is_refused_quickly() {
    let app = TestApp::start().await;
    // Inside `spec.pod`, which takes any value, so only the alias limits can stop it:
    // expanded, this is 9^12 scalars.
    let mut doc = String::from(
        "kind: TestWorkflow\nmetadata:\n  name: bomb\nspec:\n  pod:\n    x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for i in 1..12 {
        let p = i - 1;
        doc.push_str(&format!(
            "    x{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    doc.push_str("  steps:\n  - shell: echo\n");
    let started = Instant::now();
    let res = app
        .client
        .post(app.env_url("/workflows"))
        .header("content-type", "text/yaml")
        .body(doc)
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    expect_problem(res, 422, "invalid").await;
}

#[tokio::test]
async fn bad_query_values_are_422_problems_naming_the_parameter() {
    let app = TestApp::start().await;
    let cases = [
        ("status=passed,bogus", "status"),
        ("since=yesterday", "since"),
        ("until=2025-13-01T00:00:00Z", "until"),
        ("limit=abc", "limit"),
        ("limit=-1", "limit"),
    ];
    for (query, path) in cases {
        let res = app
            .client
            .get(format!("{}?{query}", app.env_url("/executions")))
            .send()
            .await
            .unwrap();
        let body = expect_problem(res, 422, "invalid").await;
        assert_eq!(body["errors"][0]["path"], path, "{query}: {body}");
    }
    let res = app
        .client
        .get(format!(
            "{}?since=2025-02-01T00:00:00Z&until=2025-01-01T00:00:00Z",
            app.env_url("/executions")
        ))
        .send()
        .await
        .unwrap();
    let body = expect_problem(res, 422, "invalid").await;
    assert_eq!(body["errors"][0]["path"], "until");
    let res = app
        .client
        .get(format!(
            "{}?last=0",
            app.env_url("/workflows/smoke/metrics")
        ))
        .send()
        .await
        .unwrap();
    let body = expect_problem(res, 422, "invalid").await;
    assert_eq!(body["errors"][0]["path"], "last");
    // Valid filters answer normally.
    let res = app
        .client
        .get(format!(
            "{}?status=passed,failed&since=2025-01-01T00:00:00Z&limit=5",
            app.env_url("/executions")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_path_parameter_that_does_not_decode_is_a_400_problem() {
    let app = TestApp::start().await;
    let res = app
        .client
        .get(app.env_url("/workflows/%ff%fe"))
        .send()
        .await
        .unwrap();
    let body = expect_problem(res, 400, "bad-request").await;
    assert!(
        body["detail"].as_str().unwrap().starts_with("bad path:"),
        "{body}"
    );
}
