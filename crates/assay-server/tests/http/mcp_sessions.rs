//! MCP sessions and legacy HTTP+SSE over real HTTP: sessions (`mcp_sessions`) are bound to
//! the principal and endpoint that opened them; 2024-11-05 clients get an SSE stream and
//! POST to it, authenticated like every request; stateless clients keep the name they gave
//! in `initialize` on the audit trail.

use crate::support::{TestApp, http_client};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use std::time::Duration;

const PROTOCOL: &str = "2025-11-25";
const LEGACY: &str = "2024-11-05";

const PASSING: &str = "\
kind: TestWorkflow
metadata:
  name: green
spec:
  steps:
  - name: ok
    shell: echo all good
";

fn mcp_url(app: &TestApp) -> String {
    app.url("/organizations/default/environments/dev/mcp")
}

/// A member token of the bootstrapped organization: another principal than the admin's.
async fn member_client(app: &TestApp, name: &str) -> reqwest::Client {
    let res = app
        .client
        .post(app.url("/v1/organizations/default/tokens"))
        .json(&json!({"name": name, "kind": "member", "grants": {"dev": "write"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    http_client(Some(created["secret"].as_str().unwrap()))
}

/// What an answer looks like to its client: status, content type, and the body without
/// the per-request id the server adds to problem documents.
#[derive(Debug, PartialEq)]
struct Seen {
    status: u16,
    content_type: Option<String>,
    body: Value,
}

async fn seen(res: reqwest::Response) -> Seen {
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = res.text().await.unwrap();
    let mut body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if let Some(o) = body.as_object_mut() {
        o.remove("request_id");
    }
    Seen {
        status,
        content_type,
        body,
    }
}

/// The JSON-RPC message of a Streamable HTTP answer (JSON, or the last message of SSE).
pub(crate) fn message_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| {
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .rfind(|m| m.get("id").is_some())
            .unwrap_or(Value::Null)
    })
}

pub(crate) fn streamable(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    session: Option<&str>,
) -> reqwest::RequestBuilder {
    let mut b = client
        .request(method, url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", PROTOCOL);
    if let Some(s) = session {
        b = b.header("mcp-session-id", s);
    }
    b
}

pub(crate) fn initialize(id: u64, version: &str, name: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
        "protocolVersion": version,
        "capabilities": {},
        "clientInfo": {"name": name, "version": "1.0.0"}
    }})
}

pub(crate) fn request(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

pub(crate) fn initialized() -> Value {
    json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
}

/// Audit events of one action, oldest first.
pub(crate) async fn audit(app: &TestApp, action: &str) -> Vec<Value> {
    let body = app
        .client
        .get(app.url(&format!(
            "/v1/organizations/default/audit/events?action={action}"
        )))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    body.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

// ---------------------------------------------------------------- Streamable HTTP sessions

#[tokio::test]
async fn sessions_are_bound_to_the_principal_and_endpoint_that_opened_them() {
    let app = TestApp::start_with(|c| c.mcp_sessions = true).await;
    let url = mcp_url(&app);
    let a = &app.client;
    let b = member_client(&app, "other").await;

    let res = streamable(a, reqwest::Method::POST, &url, None)
        .json(&initialize(1, PROTOCOL, "owner"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let id = res.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    assert_eq!(
        message_of(&res.text().await.unwrap())["result"]["protocolVersion"],
        PROTOCOL
    );
    let res = streamable(a, reqwest::Method::POST, &url, Some(&id))
        .json(&initialized())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);

    let list = |who: &reqwest::Client, url: &str, session: &str| {
        streamable(who, reqwest::Method::POST, url, Some(session))
            .json(&request(2, "tools/list", json!({})))
            .send()
    };
    let res = list(a, &url, &id).await.unwrap();
    assert_eq!(res.status(), 200);
    let tools = message_of(&res.text().await.unwrap());
    assert_eq!(
        tools["result"]["tools"].as_array().unwrap().len(),
        30,
        "{tools}"
    );

    // What anyone gets for an id that never existed.
    let made_up = uuid::Uuid::new_v4().to_string();
    let unknown = seen(list(&b, &url, &made_up).await.unwrap()).await;
    assert_eq!(unknown.status, 404, "{unknown:?}");

    // Another valid principal holding A's id: exactly the same answer.
    assert_eq!(seen(list(&b, &url, &id).await.unwrap()).await, unknown);
    let delete = |who: &reqwest::Client, url: &str, session: &str| {
        streamable(who, reqwest::Method::DELETE, url, Some(session)).send()
    };
    let unknown_delete = seen(delete(&b, &url, &made_up).await.unwrap()).await;
    assert_eq!(unknown_delete.status, 404);
    assert_eq!(
        seen(delete(&b, &url, &id).await.unwrap()).await,
        unknown_delete
    );

    // The same principal at another environment's URL: not its session there.
    let elsewhere = app.url("/organizations/default/environments/staging/mcp");
    let unknown_elsewhere = seen(list(a, &elsewhere, &made_up).await.unwrap()).await;
    assert_eq!(unknown_elsewhere.status, 404, "{unknown_elsewhere:?}");
    assert_eq!(
        seen(list(a, &elsewhere, &id).await.unwrap()).await,
        unknown_elsewhere
    );

    // None of that disturbed the owner.
    let res = list(a, &url, &id).await.unwrap();
    assert_eq!(res.status(), 200);

    // The owner ends the session (rmcp answers 202 Accepted); then it is gone for A too.
    let res = delete(a, &url, &id).await.unwrap();
    assert_eq!(res.status(), 202);
    assert_eq!(seen(list(a, &url, &id).await.unwrap()).await, unknown);
}

// ------------------------------------------------------------------------- legacy HTTP+SSE

/// A 2024-11-05 client's view of its SSE stream.
pub(crate) struct SseStream {
    res: reqwest::Response,
    buffer: String,
}

#[derive(Debug)]
struct Event {
    event: String,
    data: String,
}

impl SseStream {
    /// The next event (comments skipped). Bounded, so a missing event fails the test
    /// instead of hanging it.
    async fn next(&mut self) -> Event {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let raw: String = self.buffer.drain(..end + 2).collect();
                let mut event = Event {
                    event: "message".into(),
                    data: String::new(),
                };
                let mut has_data = false;
                for line in raw.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event.event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        event.data.push_str(v.trim_start());
                        has_data = true;
                    }
                }
                if has_data {
                    return event;
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(60), self.res.chunk())
                .await
                .expect("an event within a minute")
                .unwrap()
                .expect("the stream is still open");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next `message` event's JSON-RPC message.
    pub(crate) async fn message(&mut self) -> Value {
        let event = self.next().await;
        assert_eq!(event.event, "message", "{event:?}");
        assert!(!event.data.contains('\n'));
        serde_json::from_str(&event.data).unwrap()
    }
}

async fn open_stream(client: &reqwest::Client, url: &str) -> reqwest::Response {
    client
        .get(url)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap()
}

/// Opens a stream and returns it with the URL its `endpoint` event names.
async fn connect(client: &reqwest::Client, url: &str) -> (SseStream, String) {
    let res = open_stream(client, url).await;
    assert_eq!(res.status(), 200);
    let mut stream = SseStream {
        res,
        buffer: String::new(),
    };
    let endpoint = stream.next().await;
    assert_eq!(endpoint.event, "endpoint");
    let post_url = url::Url::parse(url)
        .unwrap()
        .join(&endpoint.data)
        .unwrap()
        .to_string();
    (stream, post_url)
}

pub(crate) async fn post(client: &reqwest::Client, url: &str, body: &Value) -> reqwest::Response {
    client.post(url).json(body).send().await.unwrap()
}

/// initialize (2024-11-05) + initialized, checking the handshake's answer on the stream.
pub(crate) async fn handshake(
    client: &reqwest::Client,
    url: &str,
    name: &str,
) -> (SseStream, String) {
    let (mut stream, post_url) = connect(client, url).await;
    let res = post(client, &post_url, &initialize(1, LEGACY, name)).await;
    assert_eq!(res.status(), 202);
    let init = stream.message().await;
    assert_eq!(init["id"], 1, "{init}");
    assert_eq!(init["result"]["protocolVersion"], LEGACY, "{init}");
    assert_eq!(init["result"]["serverInfo"]["name"], "assay", "{init}");
    let res = post(client, &post_url, &initialized()).await;
    assert_eq!(res.status(), 202);
    (stream, post_url)
}

#[tokio::test]
async fn a_legacy_sse_stream_needs_the_same_credentials_as_everything_else() {
    let app = TestApp::start().await;
    let url = mcp_url(&app);
    let post_challenge = app
        .anon
        .post(&url)
        .header("accept", "application/json, text/event-stream")
        .json(&initialize(1, PROTOCOL, "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(post_challenge.status(), 401);
    let challenge = post_challenge.headers()["www-authenticate"].clone();

    let res = open_stream(&app.anon, &url).await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], challenge);

    // A session id in the URL is no credential.
    let (_stream, post_url) = connect(&app.client, &url).await;
    let res = post(&app.anon, &post_url, &initialize(1, LEGACY, "x")).await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], challenge);
}

fn sse_headers(headers: &HeaderMap) -> (String, String, String) {
    let get = |name: &str| headers[name].to_str().unwrap().to_owned();
    (
        get("content-type"),
        get("cache-control"),
        get("x-accel-buffering"),
    )
}

#[tokio::test]
async fn a_legacy_sse_client_initializes_lists_and_runs_a_workflow() {
    let app = TestApp::start().await;
    let url = mcp_url(&app);

    let res = open_stream(&app.client, &url).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        sse_headers(res.headers()),
        ("text/event-stream".into(), "no-store".into(), "no".into())
    );
    let mut stream = SseStream {
        res,
        buffer: String::new(),
    };
    let endpoint = stream.next().await;
    assert_eq!(endpoint.event, "endpoint");
    // Relative to the stream's URL: `mcp?sessionId=<uuid>`.
    let session = endpoint
        .data
        .strip_prefix("mcp?sessionId=")
        .unwrap()
        .to_owned();
    assert_eq!(
        uuid::Uuid::parse_str(&session).unwrap().get_version_num(),
        4
    );
    let post_url = url::Url::parse(&url)
        .unwrap()
        .join(&endpoint.data)
        .unwrap()
        .to_string();
    assert_eq!(post_url, format!("{url}?sessionId={session}"));

    let res = post(
        &app.client,
        &post_url,
        &initialize(1, LEGACY, "legacy-client"),
    )
    .await;
    assert_eq!(res.status(), 202);
    let init = stream.message().await;
    assert_eq!(init["id"], 1, "{init}");
    assert_eq!(init["result"]["protocolVersion"], LEGACY, "{init}");
    assert_eq!(
        post(&app.client, &post_url, &initialized()).await.status(),
        202
    );

    let res = post(&app.client, &post_url, &request(2, "tools/list", json!({}))).await;
    assert_eq!(res.status(), 202);
    let list = stream.message().await;
    assert_eq!(list["id"], 2);
    assert_eq!(
        list["result"]["tools"].as_array().unwrap().len(),
        30,
        "{list}"
    );

    let call = |id: u64, name: &str, arguments: Value| {
        request(
            id,
            "tools/call",
            json!({"name": name, "arguments": arguments}),
        )
    };
    let res = post(
        &app.client,
        &post_url,
        &call(3, "create_workflow", json!({"yaml": PASSING})),
    )
    .await;
    assert_eq!(res.status(), 202);
    let created = stream.message().await;
    assert_eq!(created["id"], 3);
    assert_eq!(created["result"]["isError"], false, "{created}");
    let res = post(
        &app.client,
        &post_url,
        &call(
            4,
            "run_workflow",
            json!({"workflowName": "green", "wait": true, "timeoutSeconds": 60}),
        ),
    )
    .await;
    assert_eq!(res.status(), 202);
    let ran = stream.message().await;
    assert_eq!(ran["id"], 4, "{ran}");
    assert_eq!(ran["result"]["isError"], false, "{ran}");
    assert_eq!(
        ran["result"]["structuredContent"]["status"], "passed",
        "{ran}"
    );

    // Another principal cannot post into this session: told it does not exist.
    let b = member_client(&app, "intruder").await;
    let made_up = format!("{url}?sessionId={}", uuid::Uuid::new_v4());
    let ping = request(5, "ping", json!({}));
    let unknown = seen(post(&b, &made_up, &ping).await).await;
    assert_eq!(unknown.status, 404, "{unknown:?}");
    assert_eq!(seen(post(&b, &post_url, &ping).await).await, unknown);
    // The same principal at another environment's URL neither.
    let elsewhere = app.url(&format!(
        "/organizations/default/environments/staging/mcp?sessionId={session}"
    ));
    let unknown_elsewhere = app.url(&format!(
        "/organizations/default/environments/staging/mcp?sessionId={}",
        uuid::Uuid::new_v4()
    ));
    assert_eq!(
        seen(post(&app.client, &elsewhere, &ping).await).await,
        seen(post(&app.client, &unknown_elsewhere, &ping).await).await
    );

    // Bodies that are not one JSON-RPC message.
    let raw = |body: &'static str, content_type: &'static str| {
        app.client
            .post(&post_url)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let res = seen(raw("{not json", "application/json").await.unwrap()).await;
    assert_eq!(res.status, 400);
    assert_eq!(res.content_type.as_deref(), Some("application/json"));
    assert_eq!(res.body["error"]["code"], -32700, "{res:?}");
    let batch = r#"[{"jsonrpc":"2.0","id":6,"method":"ping"}]"#;
    let res = seen(raw(batch, "application/json").await.unwrap()).await;
    assert_eq!(res.status, 400);
    assert_eq!(res.body["error"]["code"], -32600, "{res:?}");
    assert!(
        res.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("batches are not supported"),
        "{res:?}"
    );
    let res = seen(
        raw(r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#, "text/plain")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(res.status, 415, "{res:?}");

    // The session still answers its owner.
    assert_eq!(
        post(&app.client, &post_url, &request(8, "ping", json!({})))
            .await
            .status(),
        202
    );
    assert_eq!(stream.message().await["id"], 8);

    // The run is on the record as token A's, with the client's name from `initialize`.
    let runs = audit(&app, "workflow.run").await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["actor"]["name"], "bootstrap", "{runs:?}");
    assert_eq!(
        runs[0]["client"]["mcp_client"], "legacy-client/1.0.0",
        "{runs:?}"
    );

    // The client goes away: the session ends with its stream.
    drop(stream);
    let mut status = 0;
    for _ in 0..200 {
        status = post(&app.client, &post_url, &request(9, "ping", json!({})))
            .await
            .status()
            .as_u16();
        if status == 404 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(status, 404, "the session outlived its stream");
    assert_eq!(
        seen(post(&app.client, &post_url, &ping).await).await,
        seen(post(&app.client, &made_up, &ping).await).await
    );
}

#[tokio::test]
async fn legacy_sse_works_with_sessions_on_too() {
    let app = TestApp::start_with(|c| c.mcp_sessions = true).await;
    let (mut stream, post_url) = handshake(&app.client, &mcp_url(&app), "legacy-client").await;
    let res = post(&app.client, &post_url, &request(2, "tools/list", json!({}))).await;
    assert_eq!(res.status(), 202);
    assert_eq!(
        stream.message().await["result"]["tools"]
            .as_array()
            .unwrap()
            .len(),
        30
    );
}

#[tokio::test]
async fn the_sse_stream_outlives_the_request_timeouts() {
    // Both limits apply until a response starts; an SSE stream has started.
    let app = TestApp::start_with(|c| {
        c.request_timeout = Duration::from_secs(1);
        c.mcp_request_timeout = Duration::from_secs(1);
    })
    .await;
    let (mut stream, post_url) = connect(&app.client, &mcp_url(&app)).await;
    // Not synchronisation: the stream must stay open past both limits.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let res = post(&app.client, &post_url, &initialize(1, LEGACY, "patient")).await;
    assert_eq!(res.status(), 202);
    assert_eq!(stream.message().await["result"]["protocolVersion"], LEGACY);
}

#[tokio::test]
async fn open_legacy_streams_are_capped_per_principal() {
    let app = TestApp::start().await;
    let url = mcp_url(&app);
    let mut streams = Vec::new();
    for _ in 0..16 {
        streams.push(connect(&app.client, &url).await);
    }
    let refused = seen(open_stream(&app.client, &url).await).await;
    assert_eq!(refused.status, 429, "{refused:?}");
    assert_eq!(refused.content_type.as_deref(), Some("application/json"));
    let message = refused.body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("too many open MCP SSE streams for this credential")
            && message.contains("\"type\": \"http\""),
        "{message}"
    );
    // Another principal still gets a stream.
    let b = member_client(&app, "other").await;
    let _other = connect(&b, &url).await;
    // Closing one makes room again, as soon as the server has noticed.
    streams.pop();
    let mut status = 0;
    for _ in 0..200 {
        let res = open_stream(&app.client, &url).await;
        status = res.status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(status, 200);
}

// ------------------------------------------------------------- stateless clients' names

#[tokio::test]
async fn a_stateless_client_is_audited_with_the_name_from_its_initialize() {
    let app = TestApp::start().await;
    app.create_workflow(PASSING).await;
    let url = mcp_url(&app);
    let post_as = |agent: &'static str, body: Value| {
        streamable(&app.client, reqwest::Method::POST, &url, None)
            .header("user-agent", agent)
            .json(&body)
            .send()
    };
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": PROTOCOL, "capabilities": {},
        "clientInfo": {"name": "stateless-client", "version": "4.5.6"}}});
    let res = post_as("stateless-client-ua/4.5.6", init).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("mcp-session-id").is_none());

    // Tool calls without `_meta`: the same credential and User-Agent is the same client;
    // another User-Agent is not.
    let run = |id: u64| {
        request(
            id,
            "tools/call",
            json!({"name": "run_workflow", "arguments": {"workflowName": "green"}}),
        )
    };
    for (agent, id) in [("stateless-client-ua/4.5.6", 2), ("someone-else/1", 3)] {
        let res = post_as(agent, run(id)).await.unwrap();
        assert_eq!(res.status(), 200);
        let ran = message_of(&res.text().await.unwrap());
        assert_eq!(ran["result"]["isError"], false, "{ran}");
    }
    let runs = audit(&app, "workflow.run").await;
    let mut names: Vec<Option<&str>> = runs
        .iter()
        .map(|e| e["client"]["mcp_client"].as_str())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![None, Some("stateless-client/4.5.6")],
        "{runs:?}"
    );
    let named = runs
        .iter()
        .find(|e| e["client"]["mcp_client"].is_string())
        .unwrap();
    assert_eq!(
        named["client"]["user_agent"], "stateless-client-ua/4.5.6",
        "{named}"
    );
}
