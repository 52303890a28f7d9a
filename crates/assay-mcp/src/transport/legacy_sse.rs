//! Legacy HTTP+SSE (MCP 2024-11-05) on the Streamable HTTP endpoint's own URL, for clients
//! configured with `"type": "sse"`.
//!
//! - `GET` accepting `text/event-stream`, without `Mcp-Session-Id` and without
//!   `MCP-Protocol-Version` (headers only newer clients send), opens a stream. Its first
//!   event, `endpoint`, names where to POST: a relative reference, `<last path
//!   segment>?sessionId=<id>`, which resolves against the stream's URL to the same path, so
//!   it stays right behind a proxy that adds a path prefix. An rmcp server session runs for
//!   the stream over in-memory channels; what it sends goes out as `message` events.
//! - `POST ?sessionId=<id>` delivers one JSON-RPC message to that session and is answered
//!   `202 Accepted`; the reply arrives on the stream.
//!
//! Every request is authenticated by the layer outside (a revoked token fails on its next
//! POST); a POST must come from the principal, at the endpoint, that opened the stream —
//! anyone else is told the session does not exist. The session ends when the client goes
//! away (the stream's body is dropped), at server shutdown, or when rmcp ends it.

use super::McpHttpResponse;
use super::guard::HostGuard;
use super::responses::{
    INVALID_REQUEST, PARSE_ERROR, SERVER_ERROR, accepted, json_rpc_error, plain, session_not_found,
};
use super::step_up::Gate;
use crate::caller::OwnerKey;
use crate::config::McpHttpConfig;
use bytes::{Buf, Bytes, BytesMut};
use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use rmcp::ServiceExt;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use serde_json::Value;
use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Display;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// An SSE comment this often keeps proxies and clients from timing the stream out.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// A stream whose client never initializes is closed after this long (as rmcp's own
/// sessions are).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);
/// Messages buffered per direction per session; a full buffer makes the sender wait.
const CHANNEL: usize = 32;

/// What a request to the MCP URL is, as far as this transport is concerned.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Route {
    OpenStream,
    Message(String),
    NotLegacy,
}

pub(super) fn route<B>(req: &http::Request<B>) -> Route {
    let headers = req.headers();
    match *req.method() {
        // A Streamable HTTP client's GET stream names its session or its protocol version;
        // a 2024-11-05 client's names neither.
        Method::GET
            if !headers.contains_key("mcp-session-id")
                && !headers.contains_key("mcp-protocol-version")
                && accepts_event_stream(headers) =>
        {
            Route::OpenStream
        }
        Method::POST => match session_param(req.uri()) {
            Some(id) => Route::Message(id.to_owned()),
            None => Route::NotLegacy,
        },
        _ => Route::NotLegacy,
    }
}

fn accepts_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            range
                .split(';')
                .next()
                .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("text/event-stream"))
        })
}

fn session_param(uri: &http::Uri) -> Option<&str> {
    uri.query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("sessionId="))
}

/// The `endpoint` event's data: relative to the stream's URL, so it resolves to the same
/// path (RFC 3986 §5.2) whatever prefix a proxy put in front of it.
fn endpoint_reference(path: &str, session: &str) -> String {
    let last = path.rsplit('/').next().unwrap_or_default();
    // A first segment with a colon would read as a URI scheme.
    let dot = if last.contains(':') { "./" } else { "" };
    format!("{dot}{last}?sessionId={session}")
}

/// The legacy transport for one mounted endpoint. Cheap to clone.
pub(super) struct LegacySse<H> {
    shared: Arc<Shared<H>>,
}

impl<H> Clone for LegacySse<H> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

struct Shared<H> {
    handler: H,
    guard: HostGuard,
    gate: Gate,
    shutdown: CancellationToken,
    max_body: usize,
    registry: Arc<Registry>,
}

impl<H> LegacySse<H>
where
    H: rmcp::ServerHandler + Clone + Send + Sync + 'static,
{
    pub(super) fn new(
        handler: H,
        config: &McpHttpConfig,
        guard: HostGuard,
        gate: Gate,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                handler,
                guard,
                gate,
                shutdown,
                max_body: config.max_request_body_bytes,
                registry: Arc::new(Registry::new(
                    config.max_sse_streams_per_owner,
                    config.max_sse_streams,
                )),
            }),
        }
    }

    /// `GET`: opens a stream and the session behind it.
    pub(super) fn open<B>(&self, req: &http::Request<B>, owner: OwnerKey) -> McpHttpResponse {
        let shared = &self.shared;
        if let Some(refused) = shared.guard.refusal(req) {
            return refused;
        }
        // UUID v4: 122 random bits from the OS CSPRNG.
        let id = uuid::Uuid::new_v4().to_string();
        let (to_server, from_posts) = mpsc::channel::<ClientJsonRpcMessage>(CHANNEL);
        let ct = shared.shutdown.child_token();
        if let Err(full) = shared
            .registry
            .try_insert(&id, owner, to_server, ct.clone())
        {
            return full.response();
        }
        // From here on, dropping the body (client gone) ends the session.
        let session = SessionGuard {
            registry: shared.registry.clone(),
            id: id.clone(),
            ct: ct.clone(),
        };
        let (to_client, from_server) = mpsc::channel::<ServerJsonRpcMessage>(CHANNEL);
        tokio::spawn(run_session(
            shared.handler.clone(),
            to_client,
            from_posts,
            ct.clone(),
        ));
        let (to_body, body) = tokio::sync::mpsc::channel::<Bytes>(CHANNEL);
        let endpoint = endpoint_reference(req.uri().path(), &id);
        tokio::spawn(pump(endpoint, from_server, to_body, ct));

        let mut res = http::Response::new(
            SseBody {
                frames: body,
                _session: session,
            }
            .boxed(),
        );
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert("x-accel-buffering", HeaderValue::from_static("no"));
        res
    }

    /// `POST ?sessionId=`: one message for the session, from its owner.
    pub(super) async fn post<B>(
        &self,
        req: http::Request<B>,
        owner: OwnerKey,
        session: &str,
    ) -> McpHttpResponse
    where
        B: Body + Send + 'static,
        B::Error: Display,
    {
        let shared = &self.shared;
        if let Some(refused) = shared.guard.refusal(&req) {
            return refused;
        }
        let Some((mut to_server, ended)) = shared.registry.sender_for(session, &owner) else {
            return session_not_found();
        };
        if !is_json(req.headers()) {
            return plain(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported Media Type: Content-Type must be application/json",
            );
        }
        let (mut parts, body) = req.into_parts();
        let bytes = match read_body(body, shared.max_body).await {
            Ok(bytes) => bytes,
            Err(refused) => return *refused,
        };
        let mut message = match parse(&bytes) {
            Ok(message) => message,
            Err(refused) => return *refused,
        };
        // Decided now or never: once answered 202, this POST's status cannot say 403.
        if let Some(forbidden) = shared.gate.check(&mut parts, &bytes).await {
            return forbidden;
        }
        // As rmcp's Streamable HTTP transport does: the handler finds this POST's own
        // request parts (and so its `McpCaller`), not the stream opener's.
        message.insert_extension(parts);
        // A full channel makes this wait, but never past the session's end.
        tokio::select! {
            sent = to_server.send(message) => match sent {
                Ok(()) => accepted(),
                Err(_) => session_not_found(),
            },
            () = ended.cancelled() => session_not_found(),
        }
    }
}

/// Whether the request's body is JSON (`Content-Type: application/json`, any parameters).
pub(super) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// The whole body, at most `max` bytes (the same limit and answer as rmcp's).
pub(super) async fn read_body<B>(body: B, max: usize) -> Result<Bytes, Box<McpHttpResponse>>
where
    B: Body + Send + 'static,
    B::Error: Display,
{
    let mut body = std::pin::pin!(body);
    let mut collected = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => {
                tracing::debug!(error = %e, "could not read a legacy SSE POST body");
                return Err(Box::new(plain(
                    StatusCode::BAD_REQUEST,
                    "Bad Request: the request body could not be read",
                )));
            }
        };
        let Ok(mut data) = frame.into_data() else {
            continue;
        };
        if data.remaining() > max.saturating_sub(collected.len()) {
            return Err(Box::new(plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Payload Too Large: request body exceeds {max} bytes"),
            )));
        }
        while data.has_remaining() {
            let chunk = data.chunk();
            collected.extend_from_slice(chunk);
            let n = chunk.len();
            data.advance(n);
        }
    }
    Ok(collected.freeze())
}

/// One JSON-RPC message, or the 400 that says what is wrong with the body.
fn parse(bytes: &[u8]) -> Result<ClientJsonRpcMessage, Box<McpHttpResponse>> {
    let bad = |id, code, message: &str| {
        Box::new(json_rpc_error(StatusCode::BAD_REQUEST, id, code, message))
    };
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        bad(
            None,
            PARSE_ERROR,
            &format!("Parse error: the body is not JSON ({e})"),
        )
    })?;
    if value.is_array() {
        return Err(bad(
            None,
            INVALID_REQUEST,
            "Invalid Request: batches are not supported; send one JSON-RPC message per POST",
        ));
    }
    let id = value.get("id").cloned();
    serde_json::from_value(value).map_err(|e| {
        bad(
            id,
            INVALID_REQUEST,
            &format!("Invalid Request: not an MCP JSON-RPC message ({e})"),
        )
    })
}

/// The rmcp server session behind one stream.
async fn run_session<H>(
    handler: H,
    to_client: mpsc::Sender<ServerJsonRpcMessage>,
    from_posts: mpsc::Receiver<ClientJsonRpcMessage>,
    ct: CancellationToken,
) where
    H: rmcp::ServerHandler + Send + 'static,
{
    // `serve` returns once the client's `initialize` (which arrives by POST) is answered.
    let serving = handler.serve_with_ct((to_client, from_posts), ct);
    let running = match tokio::time::timeout(HANDSHAKE_TIMEOUT, serving).await {
        Ok(Ok(running)) => running,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "legacy SSE session did not start");
            return;
        }
        Err(_) => {
            tracing::debug!("legacy SSE client did not initialize in time");
            return;
        }
    };
    if let Err(e) = running.waiting().await {
        tracing::debug!(error = %e, "legacy SSE session ended abnormally");
    }
}

/// Writes the stream: the `endpoint` event, then every server message, with keep-alive
/// comments in between; ends at shutdown, when the session ends, or when the client is
/// gone.
async fn pump(
    endpoint: String,
    mut from_server: mpsc::Receiver<ServerJsonRpcMessage>,
    to_body: tokio::sync::mpsc::Sender<Bytes>,
    ct: CancellationToken,
) {
    let mut frame = Some(Bytes::from(format!(
        "event: endpoint\ndata: {endpoint}\n\n"
    )));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if let Some(bytes) = frame.take() {
            tokio::select! {
                biased;
                () = ct.cancelled() => return,
                sent = to_body.send(bytes) => if sent.is_err() { return },
            }
        }
        frame = tokio::select! {
            biased;
            () = ct.cancelled() => return,
            message = from_server.next() => match message {
                Some(message) => message_event(&message),
                // The session ended (e.g. a failed handshake, after its error was sent).
                None => return,
            },
            _ = ticker.tick() => Some(Bytes::from_static(b": keep-alive\n\n")),
        };
    }
}

fn message_event(message: &ServerJsonRpcMessage) -> Option<Bytes> {
    match serde_json::to_string(message) {
        // serde_json escapes control characters: the JSON is one line, one `data:` field.
        Ok(json) => Some(Bytes::from(format!("event: message\ndata: {json}\n\n"))),
        Err(e) => {
            tracing::warn!(error = %e, "could not serialize an MCP message for a legacy SSE stream");
            None
        }
    }
}

/// The stream's body. Dropping it (the client disconnected, or the response finished)
/// ends the session.
struct SseBody {
    frames: tokio::sync::mpsc::Receiver<Bytes>,
    _session: SessionGuard,
}

impl Body for SseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.get_mut()
            .frames
            .poll_recv(cx)
            .map(|bytes| bytes.map(|b| Ok(Frame::data(b))))
    }
}

struct SessionGuard {
    registry: Arc<Registry>,
    id: String,
    ct: CancellationToken,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.ct.cancel();
        self.registry.remove(&self.id);
    }
}

/// The open streams: session id → owner and the way into its rmcp session.
struct Registry {
    per_owner: usize,
    total: usize,
    sessions: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    owner: OwnerKey,
    to_server: mpsc::Sender<ClientJsonRpcMessage>,
    /// Cancelled when the session ends.
    ended: CancellationToken,
}

#[derive(Debug, PartialEq, Eq)]
enum Full {
    PerOwner(usize),
    Total(usize),
}

impl Full {
    fn response(&self) -> McpHttpResponse {
        let message = match self {
            Self::PerOwner(limit) => format!(
                "too many open MCP SSE streams for this credential at this endpoint (limit \
                 {limit}): close this credential's other SSE connections to this server, or \
                 configure the client with \"type\": \"http\" (Streamable HTTP), which keeps \
                 no stream open"
            ),
            Self::Total(limit) => format!(
                "this server has too many open MCP SSE streams (limit {limit}): try again \
                 later, or configure the client with \"type\": \"http\" (Streamable HTTP), \
                 which keeps no stream open"
            ),
        };
        json_rpc_error(StatusCode::TOO_MANY_REQUESTS, None, SERVER_ERROR, &message)
    }
}

impl Registry {
    fn new(per_owner: usize, total: usize) -> Self {
        Self {
            per_owner: per_owner.max(1),
            total: total.max(1),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    fn try_insert(
        &self,
        id: &str,
        owner: OwnerKey,
        to_server: mpsc::Sender<ClientJsonRpcMessage>,
        ended: CancellationToken,
    ) -> Result<(), Full> {
        let mut sessions = self.lock();
        if sessions.len() >= self.total {
            return Err(Full::Total(self.total));
        }
        if sessions.values().filter(|e| e.owner == owner).count() >= self.per_owner {
            return Err(Full::PerOwner(self.per_owner));
        }
        sessions.insert(
            id.to_owned(),
            Entry {
                owner,
                to_server,
                ended,
            },
        );
        Ok(())
    }

    /// The way into `id`'s session and the token of its end, if `owner` opened it.
    fn sender_for(
        &self,
        id: &str,
        owner: &OwnerKey,
    ) -> Option<(mpsc::Sender<ClientJsonRpcMessage>, CancellationToken)> {
        self.lock()
            .get(id)
            .filter(|e| e.owner == *owner)
            .map(|e| (e.to_server.clone(), e.ended.clone()))
    }

    fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // Each operation is a single insert/remove/lookup: a poisoned map is consistent.
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn get(headers: &[(&str, &str)]) -> http::Request<()> {
        let mut b = http::Request::builder().method("GET").uri("/o/e/mcp");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn only_an_old_clients_get_opens_a_stream() {
        assert_eq!(
            route(&get(&[("accept", "text/event-stream")])),
            Route::OpenStream
        );
        assert_eq!(
            route(&get(&[(
                "accept",
                "application/json, Text/Event-Stream;q=0.9"
            )])),
            Route::OpenStream
        );
        assert_eq!(route(&get(&[])), Route::NotLegacy);
        assert_eq!(
            route(&get(&[("accept", "application/json")])),
            Route::NotLegacy
        );
        // Streamable HTTP clients' GET streams.
        assert_eq!(
            route(&get(&[
                ("accept", "text/event-stream"),
                ("mcp-session-id", "x")
            ])),
            Route::NotLegacy
        );
        assert_eq!(
            route(&get(&[
                ("accept", "text/event-stream"),
                ("mcp-protocol-version", "2025-11-25")
            ])),
            Route::NotLegacy
        );
        let post = |uri: &str| {
            http::Request::builder()
                .method("POST")
                .uri(uri)
                .body(())
                .unwrap()
        };
        assert_eq!(
            route(&post("/o/e/mcp?sessionId=abc")),
            Route::Message("abc".into())
        );
        assert_eq!(
            route(&post("/o/e/mcp?x=1&sessionId=abc")),
            Route::Message("abc".into())
        );
        assert_eq!(route(&post("/o/e/mcp")), Route::NotLegacy);
        assert_eq!(route(&post("/o/e/mcp?session=abc")), Route::NotLegacy);
    }

    #[test]
    fn the_endpoint_is_relative_to_the_stream_url() {
        assert_eq!(
            endpoint_reference("/organizations/acme/environments/dev/mcp", "id1"),
            "mcp?sessionId=id1"
        );
        assert_eq!(endpoint_reference("/mcp/", "id1"), "?sessionId=id1");
        assert_eq!(endpoint_reference("/x/a:b", "id1"), "./a:b?sessionId=id1");
    }

    #[test]
    fn bodies_parse_to_one_message_or_say_what_is_wrong() {
        let code = |bytes: &[u8]| {
            let res = parse(bytes).unwrap_err();
            assert_eq!(res.status(), 400);
            res
        };
        assert!(parse(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).is_ok());
        assert!(parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).is_ok());
        for (bytes, expected) in [
            (&b"{not json"[..], PARSE_ERROR),
            (
                &br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#[..],
                INVALID_REQUEST,
            ),
            (&br#"{"id":1,"hello":true}"#[..], INVALID_REQUEST),
        ] {
            let res = code(bytes);
            assert_eq!(res.headers()["content-type"], "application/json");
            let body = futures::executor::block_on(res.into_body().collect())
                .unwrap()
                .to_bytes();
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["error"]["code"], expected, "{v}");
        }
    }

    #[test]
    fn streams_are_capped_per_owner_and_in_total() {
        let reg = Registry::new(2, 3);
        let a = OwnerKey::of(None);
        let b = {
            use crate::caller::McpCaller;
            use assay_core::actor::{Access, AuthMethod};
            use assay_core::{Actor, ClientInfo, EnvRef, Principal, PrincipalKind};
            OwnerKey::of(Some(&McpCaller {
                actor: Actor::new(
                    Principal {
                        kind: PrincipalKind::User,
                        id: uuid::Uuid::new_v4(),
                        display_name: "u".into(),
                        org_id: uuid::Uuid::nil(),
                        access: Access::OrgAdmin,
                        scope_cap: None,
                        auth_method: AuthMethod::ApiToken,
                        credential_id: None,
                    },
                    ClientInfo::default(),
                ),
                env: EnvRef::new("o", "e"),
            }))
        };
        let tx = || mpsc::channel::<ClientJsonRpcMessage>(1).0;
        let ct = CancellationToken::new;
        reg.try_insert("1", a.clone(), tx(), ct()).unwrap();
        reg.try_insert("2", a.clone(), tx(), ct()).unwrap();
        assert_eq!(
            reg.try_insert("3", a.clone(), tx(), ct()),
            Err(Full::PerOwner(2))
        );
        reg.try_insert("3", b.clone(), tx(), ct()).unwrap();
        assert_eq!(
            reg.try_insert("4", b.clone(), tx(), ct()),
            Err(Full::Total(3))
        );
        assert!(reg.sender_for("1", &a).is_some());
        assert!(reg.sender_for("1", &b).is_none());
        assert!(reg.sender_for("9", &a).is_none());
        reg.remove("1");
        assert!(reg.sender_for("1", &a).is_none());
        reg.try_insert("4", a, tx(), ct()).unwrap();
        assert_eq!(Full::Total(3).response().status(), 429);
    }
}
