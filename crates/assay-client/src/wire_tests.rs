//! The client against a real socket: a one-request HTTP/1.1 server written by hand, so the
//! test sees exactly the bytes sent and controls how the answer is chunked.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::{ClientConfig, RemoteControlPlane, is_connection_error};
use assay_core::ports::ControlPlane;
use assay_core::{EnvRef, Error};
use futures::StreamExt;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// What the server received.
#[derive(Debug)]
struct Received {
    request_line: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The answer: status line, headers, and body chunks (sent chunked, one write each, with
/// a pause between so the client reads them separately).
struct Answer {
    status: &'static str,
    headers: Vec<(&'static str, String)>,
    chunks: Vec<Vec<u8>>,
}

impl Answer {
    fn json(status: &'static str, body: serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![("content-type", "application/json".into())],
            chunks: vec![body.to_string().into_bytes()],
        }
    }

    fn problem(status: &'static str, body: serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![
                ("content-type", "application/problem+json".into()),
                ("x-request-id", "rid-7".into()),
            ],
            chunks: vec![body.to_string().into_bytes()],
        }
    }
}

async fn serve_once(answer: Answer) -> (RemoteControlPlane, JoinHandle<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let head_end = loop {
            let mut chunk = [0u8; 4096];
            let n = socket.read(&mut chunk).await.unwrap();
            assert!(n > 0, "client closed before sending a request");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
        };
        let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap().to_owned();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.trim().to_owned(), v.trim().to_owned())
            })
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().unwrap())
            .unwrap_or(0);
        let mut body = buf[head_end + 4..].to_vec();
        while body.len() < length {
            let mut chunk = [0u8; 4096];
            let n = socket.read(&mut chunk).await.unwrap();
            body.extend_from_slice(&chunk[..n]);
        }

        let mut response = format!(
            "HTTP/1.1 {}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n",
            answer.status
        );
        for (name, value) in &answer.headers {
            response.push_str(&format!("{name}: {value}\r\n"));
        }
        response.push_str("\r\n");
        socket.write_all(response.as_bytes()).await.unwrap();
        for chunk in &answer.chunks {
            socket
                .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await
                .unwrap();
            socket.write_all(chunk).await.unwrap();
            socket.write_all(b"\r\n").await.unwrap();
            socket.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        socket.write_all(b"0\r\n\r\n").await.unwrap();
        socket.flush().await.unwrap();
        Received {
            request_line,
            headers,
            body: String::from_utf8(body).unwrap(),
        }
    });
    (client(&format!("http://{addr}")), task)
}

fn client(url: &str) -> RemoteControlPlane {
    RemoteControlPlane::new(ClientConfig {
        base_url: url.parse().unwrap(),
        token: "secret-token".into(),
        org: "acme".into(),
        env: "dev".into(),
        user_agent: "assay-test/1".into(),
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

fn env() -> EnvRef {
    EnvRef::new("acme", "dev")
}

fn detail(name: &str, source: &str) -> serde_json::Value {
    serde_json::json!({
        "id": "0193a0a0-0000-7000-8000-000000000001",
        "kind": "workflow",
        "name": name,
        "description": "",
        "labels": {},
        "created_at": "2025-01-01T00:00:00Z",
        "updated_at": "2025-01-01T00:00:00Z",
        "source": source,
        "definition": {},
    })
}

#[tokio::test]
async fn names_are_encoded_and_the_token_and_agent_are_sent() {
    let (c, server) = serve_once(Answer::problem(
        "404 Not Found",
        serde_json::json!({"type": "urn:assay:problem:not-found", "status": 404,
                           "detail": "workflow \"a b/c\" not found"}),
    ))
    .await;
    let err = c
        .get_workflow(&c.actor(), &env(), "a b/c")
        .await
        .unwrap_err();
    let got = server.await.unwrap();
    assert_eq!(
        got.request_line,
        "GET /v1/organizations/acme/environments/dev/workflows/a%20b%2Fc HTTP/1.1"
    );
    assert_eq!(got.header("authorization"), Some("Bearer secret-token"));
    assert_eq!(got.header("user-agent"), Some("assay-test/1"));
    match err {
        Error::NotFound { kind, name } => {
            assert_eq!(kind, "workflow");
            assert_eq!(name, "a b/c");
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn update_replaces_only_with_if_match() {
    let source = "kind: TestWorkflow\nmetadata:\n  name: smoke\n";
    let (c, server) = serve_once(Answer::json("200 OK", detail("smoke", source))).await;
    let d = c
        .update_workflow(&c.actor(), &env(), "smoke", source)
        .await
        .unwrap();
    let got = server.await.unwrap();
    assert_eq!(
        got.request_line,
        "PUT /v1/organizations/acme/environments/dev/workflows/smoke HTTP/1.1"
    );
    assert_eq!(got.header("if-match"), Some("*"));
    assert_eq!(got.header("content-type"), Some("application/yaml"));
    assert_eq!(got.body, source);
    assert_eq!(d.summary.name, "smoke");
    assert_eq!(d.source, source);
}

#[tokio::test]
async fn apply_puts_by_the_documents_own_name_and_reports_creation() {
    let source =
        "kind: TestWorkflow\nmetadata:\n  name: smoke\nspec:\n  steps:\n  - shell: echo hi\n";
    let (c, server) = serve_once(Answer::json("201 Created", detail("smoke", source))).await;
    let applied = c.apply_workflow(&c.actor(), &env(), source).await.unwrap();
    let got = server.await.unwrap();
    assert_eq!(
        got.request_line,
        "PUT /v1/organizations/acme/environments/dev/workflows/smoke HTTP/1.1"
    );
    assert_eq!(got.header("if-match"), None);
    assert!(applied.created);
    assert_eq!(applied.workflow.summary.name, "smoke");
}

#[tokio::test]
async fn the_log_stream_survives_lines_split_across_chunks() {
    let answer = Answer {
        status: "200 OK",
        headers: vec![("content-type", "application/x-ndjson".into())],
        chunks: vec![
            br#"{"number":3,"step":"1","time":"2025-01-01T00:00:00Z","text":"hel"#.to_vec(),
            b"lo\"}\n{\"number\":4,\"step\":\"1\",\"time\":\"2025-01-01T00:00:01Z\",\"text\":\"a\"}\n{\"num".to_vec(),
            br#"ber":5,"step":"2","time":"2025-01-01T00:00:02Z","text":"done"}"#.to_vec(),
            b"\n".to_vec(),
        ],
    };
    let (c, server) = serve_once(answer).await;
    let lines: Vec<_> = c
        .follow_execution_logs(&c.actor(), &env(), "smoke-1", Some("1".into()), 2)
        .await
        .unwrap()
        .map(|l| l.unwrap())
        .collect()
        .await;
    let got = server.await.unwrap();
    assert_eq!(
        got.request_line,
        "GET /v1/organizations/acme/environments/dev/executions/smoke-1/logs/stream?step=1&after_line=2 HTTP/1.1"
    );
    let seen: Vec<(u64, &str, &str)> = lines
        .iter()
        .map(|l| (l.number, l.step.as_str(), l.text.as_str()))
        .collect();
    assert_eq!(
        seen,
        vec![(3, "1", "hello"), (4, "1", "a"), (5, "2", "done")]
    );
}

#[tokio::test]
async fn downloads_stream_the_bytes_with_the_headers_metadata() {
    let answer = Answer {
        status: "200 OK",
        headers: vec![
            ("content-type", "application/octet-stream".into()),
            ("x-assay-artifact-step", "2".into()),
        ],
        chunks: vec![vec![0, 1, 2], vec![3, 4]],
    };
    let (c, server) = serve_once(answer).await;
    let (artifact, chunks) = c
        .download_artifact(&c.actor(), &env(), "smoke-1", "out/data 1.bin")
        .await
        .unwrap();
    let bytes: Vec<u8> = chunks
        .map(|c| c.unwrap())
        .collect::<Vec<_>>()
        .await
        .concat();
    let got = server.await.unwrap();
    assert_eq!(
        got.request_line,
        "GET /v1/organizations/acme/environments/dev/executions/smoke-1/artifacts/out/data%201.bin?download=true HTTP/1.1"
    );
    assert_eq!(bytes, vec![0, 1, 2, 3, 4]);
    assert_eq!(artifact.path, "out/data 1.bin");
    assert_eq!(artifact.step, "2");
    assert_eq!(
        artifact.content_type.as_deref(),
        Some("application/octet-stream")
    );
}

#[tokio::test]
async fn invalid_problems_come_back_with_their_field_errors() {
    let (c, server) = serve_once(Answer::problem(
        "422 Unprocessable Entity",
        serde_json::json!({"type": "urn:assay:problem:invalid", "status": 422,
                           "detail": "invalid",
                           "errors": [{"path": "config.retries", "message": "expected an integer"}]}),
    ))
    .await;
    let request = assay_core::execution::RunRequest::default();
    let err = c
        .run_workflow(&c.actor(), &env(), "smoke", &request)
        .await
        .unwrap_err();
    let got = server.await.unwrap();
    assert_eq!(
        got.request_line,
        "POST /v1/organizations/acme/environments/dev/workflows/smoke/executions HTTP/1.1"
    );
    assert_eq!(got.body, r#"{"config":{},"tags":{}}"#);
    assert_eq!(
        err.to_string(),
        "invalid input: config.retries: expected an integer"
    );
}

#[tokio::test]
async fn a_refused_connection_says_where_and_what_to_check() {
    // A port that was free a moment ago: nothing listens there.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let c = client(&format!("http://{addr}"));
    let err = c.list_runners(&c.actor(), &env()).await.unwrap_err();
    assert!(is_connection_error(&err), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("unavailable: cannot reach http://{addr}/: "))
            && text.ends_with("; check --url/ASSAY_URL"),
        "{text}"
    );
}

#[test]
fn base_urls_must_be_http_without_credentials() {
    for bad in ["ftp://h/", "mailto:x@y", "http://user:pw@h/"] {
        let config = ClientConfig {
            base_url: bad.parse().unwrap(),
            token: String::new(),
            org: "o".into(),
            env: "e".into(),
            user_agent: "t".into(),
            timeout: Duration::from_secs(1),
        };
        assert!(
            matches!(RemoteControlPlane::new(config), Err(Error::Invalid(_))),
            "{bad}"
        );
    }
}

#[test]
fn debug_output_never_shows_the_token() {
    let c = client("http://127.0.0.1:1");
    let shown = format!("{c:?}");
    assert!(!shown.contains("secret-token"), "{shown}");
    assert!(shown.contains("token: \"***\""), "{shown}");
}
