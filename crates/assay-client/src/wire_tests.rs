//! The client against a real socket: a one-request HTTP/1.1 server written by hand, so the
//! test sees exactly the bytes sent and controls how the answer is chunked.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::{ClientConfig, Credential, RemoteControlPlane, TlsOptions, is_connection_error};
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
        credential: Credential::Bearer("secret-token".into()),
        tls: TlsOptions::default(),
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
            credential: Credential::None,
            tls: TlsOptions::default(),
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
    assert!(shown.contains("credential: Bearer(***)"), "{shown}");
}

// --- organization routes: members, API tokens, audit -----------------------------------

fn token_info() -> serde_json::Value {
    serde_json::json!({
        "id": "0193a0a0-0000-7000-8000-0000000000aa",
        "org_id": "0193a0a0-0000-7000-8000-000000000001",
        "name": "ci",
        "description": "",
        "kind": "member",
        "grants": {"dev": "run"},
        "created_by": null,
        "created_at": "2025-01-01T00:00:00Z",
        "expires_at": "2025-01-31T00:00:00Z",
        "never_expires": false,
        "state": "active",
    })
}

fn audit_line(seq: i64) -> String {
    serde_json::json!({
        "id": format!("0193a0a0-0000-7000-8000-0000000001{seq:02}"),
        "time": "2025-01-01T00:00:00Z",
        "org_id": "0193a0a0-0000-7000-8000-000000000001",
        "actor": {"kind": "api_token", "id": "0193a0a0-0000-7000-8000-0000000000aa",
                  "name": "ci", "auth_method": "api_token"},
        "client": {"ip": "127.0.0.1"},
        "action": "auth.failed",
        "resources": [],
        "outcome": "denied",
        "reason": "revoked",
        "seq": seq,
        "prev_hash": "00",
        "hash": "11",
    })
    .to_string()
}

#[tokio::test]
async fn creating_a_token_posts_the_request_and_returns_the_secret_once() {
    let answer = Answer::json(
        "201 Created",
        serde_json::json!({"token": token_info(), "secret": "assay_abc"}),
    );
    let (c, server) = serve_once(answer).await;
    let request = assay_core::identity::NewApiToken {
        name: "ci".into(),
        description: String::new(),
        kind: assay_core::identity::ApiTokenKind::Member,
        grants: [("dev".to_owned(), assay_core::Level::Run)].into(),
        expires_in_days: Some(30),
        never_expires: false,
    };
    let created = c
        .create_api_token(&c.actor(), "acme", &request)
        .await
        .unwrap();
    let got = server.await.unwrap();
    assert_eq!(
        got.request_line,
        "POST /v1/organizations/acme/tokens HTTP/1.1"
    );
    let sent: serde_json::Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(
        sent,
        serde_json::json!({"name": "ci", "description": "", "kind": "member",
                           "grants": {"dev": "run"}, "expires_in_days": 30,
                           "never_expires": false})
    );
    assert_eq!(created.secret, "assay_abc");
    assert_eq!(created.token.name, "ci");
    assert_eq!(
        created.token.state,
        assay_core::identity::TokenState::Active
    );
}

#[tokio::test]
async fn rotation_sends_the_grace_period_and_revocation_has_no_body() {
    let answer = Answer::json(
        "200 OK",
        serde_json::json!({"token": token_info(), "secret": "assay_new"}),
    );
    let (c, server) = serve_once(answer).await;
    let id: uuid::Uuid = "0193a0a0-0000-7000-8000-0000000000aa".parse().unwrap();
    let rotated = c
        .rotate_api_token(&c.actor(), "acme", id, Some(3600))
        .await
        .unwrap();
    let got = server.await.unwrap();
    assert_eq!(
        got.request_line,
        format!("POST /v1/organizations/acme/tokens/{id}/rotate HTTP/1.1")
    );
    assert_eq!(got.body, r#"{"grace_secs":3600}"#);
    assert_eq!(rotated.secret, "assay_new");

    let (c, server) = serve_once(Answer::json("200 OK", token_info())).await;
    c.revoke_api_token(&c.actor(), "acme", id).await.unwrap();
    let got = server.await.unwrap();
    assert_eq!(
        got.request_line,
        format!("POST /v1/organizations/acme/tokens/{id}/revoke HTTP/1.1")
    );
    assert_eq!(got.body, "");
}

#[tokio::test]
async fn grants_are_listed_and_revoked_under_me() {
    let grant = serde_json::json!({
        "id": "0193a0a0-0000-7000-8000-0000000000cc",
        "client_id": "https://client.example/oauth.json",
        "client_name": "Example",
        "client_kind": "metadata-document",
        "scope": "mcp:read mcp:run",
        "resource": "https://assay.example/organizations/acme/environments/dev/mcp",
        "created_at": "2025-01-01T00:00:00Z",
    });
    let (c, server) = serve_once(Answer::json(
        "200 OK",
        serde_json::json!({"items": [grant]}),
    ))
    .await;
    let grants = c.list_my_grants(&c.actor(), "acme").await.unwrap();
    let got = server.await.unwrap();
    assert_eq!(
        got.request_line,
        "GET /v1/organizations/acme/me/grants HTTP/1.1"
    );
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].client_name, "Example");
    assert_eq!(
        grants[0].client_kind,
        assay_core::oauth::OAuthClientKind::MetadataDocument
    );
    assert_eq!(grants[0].scope, "mcp:read mcp:run");

    let id: uuid::Uuid = "0193a0a0-0000-7000-8000-0000000000cc".parse().unwrap();
    let answer = Answer {
        status: "204 No Content",
        headers: vec![],
        chunks: vec![],
    };
    let (c, server) = serve_once(answer).await;
    c.revoke_my_grant(&c.actor(), "acme", id).await.unwrap();
    let got = server.await.unwrap();
    assert_eq!(
        got.request_line,
        format!("DELETE /v1/organizations/acme/me/grants/{id} HTTP/1.1")
    );
    assert_eq!(got.body, "");

    // Another user's grant: the server's 404 names the grant.
    let (c, server) = serve_once(Answer::problem(
        "404 Not Found",
        serde_json::json!({"type": "urn:assay:problem:not-found", "status": 404,
                           "detail": format!("grant \"{id}\" not found")}),
    ))
    .await;
    let err = c.revoke_my_grant(&c.actor(), "acme", id).await.unwrap_err();
    server.await.unwrap();
    assert_eq!(err.to_string(), format!("grant \"{id}\" not found"));

    // An API token: refused, with the server's reason.
    let (c, server) = serve_once(Answer::problem(
        "403 Forbidden",
        serde_json::json!({"type": "urn:assay:problem:forbidden", "status": 403,
                           "detail": "OAuth grants belong to users, and an API token acts for no user"}),
    ))
    .await;
    let err = c.list_my_grants(&c.actor(), "acme").await.unwrap_err();
    server.await.unwrap();
    assert_eq!(
        err.to_string(),
        "refused: OAuth grants belong to users, and an API token acts for no user"
    );
}

#[tokio::test]
async fn members_are_addressed_by_email_and_patched() {
    let member = serde_json::json!({
        "user_id": "0193a0a0-0000-7000-8000-0000000000bb",
        "email": "bob+qa@example.com",
        "display_name": "Bob",
        "role": "member",
        "grants": {"dev": "read"},
        "disabled": true,
        "created_at": "2025-01-01T00:00:00Z",
    });
    let (c, server) = serve_once(Answer::json("200 OK", member)).await;
    let update = assay_core::identity::MemberUpdate {
        disabled: Some(true),
        ..Default::default()
    };
    let got_member = c
        .update_member(&c.actor(), "acme", "bob+qa@example.com", &update)
        .await
        .unwrap();
    let got = server.await.unwrap();
    assert_eq!(
        got.request_line,
        "PATCH /v1/organizations/acme/members/bob+qa@example.com HTTP/1.1"
    );
    assert_eq!(got.body, r#"{"disabled":true}"#);
    assert!(got_member.disabled);
}

#[tokio::test]
async fn a_forbidden_organization_call_needs_admin() {
    let (c, server) = serve_once(Answer::problem(
        "403 Forbidden",
        serde_json::json!({"type": "urn:assay:problem:forbidden", "status": 403,
                           "detail": "this needs organization admin rights (an owner or admin user, or an admin API token)"}),
    ))
    .await;
    let err = c.list_members(&c.actor(), "acme").await.unwrap_err();
    server.await.unwrap();
    assert!(
        matches!(
            err,
            Error::Forbidden {
                needed: assay_core::Level::Admin
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_audit_export_sends_the_filter_and_streams_events_split_across_chunks() {
    let body = format!("{}\n{}\n{}\n", audit_line(1), audit_line(2), audit_line(3));
    let (a, rest) = body.split_at(100);
    let (b, c_part) = rest.split_at(250);
    let answer = Answer {
        status: "200 OK",
        headers: vec![("content-type", "application/x-ndjson".into())],
        chunks: vec![a.into(), b.into(), c_part.into()],
    };
    let (c, server) = serve_once(answer).await;
    let filter = assay_core::audit::AuditFilter {
        since: Some(time::macros::datetime!(2025-01-01 00:00:00 UTC)),
        until: None,
        actor: Some("ci bot".into()),
        action: Some("token.*".into()),
        env: Some("dev".into()),
        outcome: Some(assay_core::audit::Outcome::Denied),
    };
    let events: Vec<_> = c
        .export_audit(&c.actor(), "acme", &filter)
        .await
        .unwrap()
        .map(|e| e.unwrap())
        .collect()
        .await;
    let got = server.await.unwrap();
    assert_eq!(
        got.request_line,
        "GET /v1/organizations/acme/audit/events?since=2025-01-01T00%3A00%3A00Z&actor=ci+bot&action=token.*&env=dev&outcome=denied&format=jsonl HTTP/1.1"
    );
    assert_eq!(
        got.header("accept"),
        Some("application/x-ndjson, application/problem+json")
    );
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    assert_eq!(events[0].reason.as_deref(), Some("revoked"));
}

#[tokio::test]
async fn the_raw_csv_export_is_passed_through_byte_for_byte() {
    let csv = "seq,time\r\n1,\"'=1+2\"\r\n";
    let answer = Answer {
        status: "200 OK",
        headers: vec![("content-type", "text/csv; charset=utf-8".into())],
        chunks: vec![csv.as_bytes()[..5].to_vec(), csv.as_bytes()[5..].to_vec()],
    };
    let (c, server) = serve_once(answer).await;
    let bytes: Vec<u8> = c
        .export_audit_raw(
            "acme",
            &assay_core::audit::AuditFilter::default(),
            crate::AuditExportFormat::Csv,
        )
        .await
        .unwrap()
        .map(|b| b.unwrap().to_vec())
        .collect::<Vec<_>>()
        .await
        .concat();
    let got = server.await.unwrap();
    assert_eq!(
        got.request_line,
        "GET /v1/organizations/acme/audit/events?format=csv HTTP/1.1"
    );
    assert_eq!(bytes, csv.as_bytes());
}
