//! Streamable HTTP sessions (legacy session mode) bound to the principal that opened them.
//!
//! rmcp creates the sessions (random UUIDs) and keeps them; it does not know who owns one,
//! so possession of an id would be enough to use it. Here every request that presents an
//! `Mcp-Session-Id` must come from the session's owner (`OwnerKey`: principal and
//! endpoint); anyone else gets exactly rmcp's "unknown session" answer. Authentication still
//! happens on every request (outside this crate); the binding only stops a valid principal
//! from riding someone else's session.

use super::McpHttpResponse;
use super::responses::{SERVER_ERROR, json_rpc_error, session_not_found};
use crate::caller::OwnerKey;
use http::{Method, StatusCode};
use http_body::Body;
use rmcp::transport::StreamableHttpService;
use rmcp::transport::streamable_http_server::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use std::collections::HashMap;
use std::fmt::Display;
use std::sync::{Arc, Mutex, MutexGuard};

const SESSION_HEADER: &str = "mcp-session-id";

/// Session id → owner, for the sessions rmcp still holds.
///
/// Bounded: an entry is forgotten when its session is deleted, and every new session first
/// prunes the entries whose rmcp session is gone (rmcp ends idle sessions after its
/// keep-alive), so the map never holds more than the live sessions plus the newest one.
pub(super) struct SessionBindings {
    manager: Arc<LocalSessionManager>,
    per_owner: usize,
    owners: Mutex<HashMap<Arc<str>, OwnerKey>>,
}

impl SessionBindings {
    pub(super) fn new(manager: Arc<LocalSessionManager>, per_owner: usize) -> Self {
        Self {
            manager,
            per_owner: per_owner.max(1),
            owners: Mutex::new(HashMap::new()),
        }
    }

    /// Serves `req` through rmcp if it may use the session it names.
    pub(super) async fn serve<H, B>(
        &self,
        service: &StreamableHttpService<H, LocalSessionManager>,
        req: http::Request<B>,
        owner: OwnerKey,
    ) -> McpHttpResponse
    where
        H: rmcp::ServerHandler + Send + 'static,
        B: Body + Send + 'static,
        B::Error: Display,
    {
        let Some(presented) = req.headers().get(SESSION_HEADER) else {
            let res = service.handle(req).await;
            return self.bind_new_session(res, owner).await;
        };
        // rmcp's ids are visible ASCII; anything else is nobody's session.
        let Some(id) = presented.to_str().ok().map(Arc::<str>::from) else {
            return session_not_found();
        };
        if self.owner_of(&id).as_ref() != Some(&owner) {
            return session_not_found();
        }
        let deleting = req.method() == Method::DELETE;
        let res = service.handle(req).await;
        if (deleting && res.status().is_success()) || res.status() == StatusCode::NOT_FOUND {
            self.lock().remove(&id);
        }
        res
    }

    /// Whether `req` names a session `owner` opened.
    pub(super) fn in_own_session<B>(&self, req: &http::Request<B>, owner: &OwnerKey) -> bool {
        req.headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(Arc::<str>::from)
            .is_some_and(|id| self.owner_of(&id).as_ref() == Some(owner))
    }

    /// Remembers who opened the session `res` announces (an `initialize` answer), or ends
    /// it at once when its owner already holds as many as allowed.
    async fn bind_new_session(&self, res: McpHttpResponse, owner: OwnerKey) -> McpHttpResponse {
        let Some(id) = res
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(Arc::<str>::from)
        else {
            return res;
        };
        let within_limit = {
            let live = self.manager.sessions.read().await;
            let mut owners = self.lock();
            owners.retain(|id, _| live.contains_key(id));
            let held = owners.values().filter(|o| **o == owner).count();
            if held < self.per_owner {
                owners.insert(id.clone(), owner);
                true
            } else {
                false
            }
        };
        if within_limit {
            return res;
        }
        drop(res);
        if let Err(e) = self.manager.close_session(&id).await {
            tracing::warn!(error = %e, "could not close an MCP session over its owner's limit");
        }
        json_rpc_error(
            StatusCode::TOO_MANY_REQUESTS,
            None,
            SERVER_ERROR,
            &format!(
                "too many open MCP sessions for this credential at this endpoint (limit {}): \
                 end sessions you no longer use (HTTP DELETE with their Mcp-Session-Id), or \
                 wait a few minutes for idle ones to expire, then initialize again",
                self.per_owner
            ),
        )
    }

    fn owner_of(&self, id: &Arc<str>) -> Option<OwnerKey> {
        self.lock().get(id).cloned()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, OwnerKey>> {
        // A panic while holding the lock cannot leave the map inconsistent (each
        // operation is one insert/remove/retain), so a poisoned lock is still usable.
        self.owners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::super::{McpHttpService, Streamable, streamable_http_service_for};
    use super::*;
    use crate::caller::McpCaller;
    use crate::config::McpHttpConfig;
    use assay_core::actor::{Access, AuthMethod};
    use assay_core::{Actor, ClientInfo, EnvRef, Principal, PrincipalKind};
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use rmcp::ServerHandler;
    use serde_json::{Value, json};
    use tokio_util::sync::CancellationToken;
    use tower_service::Service;
    use uuid::Uuid;

    #[derive(Clone)]
    struct Bare;
    impl ServerHandler for Bare {}

    fn caller(id: Uuid, env: &str) -> McpCaller {
        McpCaller {
            actor: Actor::new(
                Principal {
                    kind: PrincipalKind::ApiToken,
                    id,
                    display_name: "t".into(),
                    org_id: Uuid::nil(),
                    access: Access::OrgAdmin,
                    scope_cap: None,
                    auth_method: AuthMethod::ApiToken,
                    credential_id: None,
                },
                ClientInfo::default(),
            ),
            env: EnvRef::new("acme", env),
        }
    }

    fn service(per_owner: usize) -> McpHttpService<Bare> {
        let config = McpHttpConfig {
            sessions: true,
            max_sessions_per_owner: per_owner,
            ..McpHttpConfig::default()
        };
        streamable_http_service_for(Bare, &config, CancellationToken::new())
    }

    fn bindings(svc: &McpHttpService<Bare>) -> Arc<SessionBindings> {
        match &svc.streamable {
            Streamable::Sessions { bindings, .. } => bindings.clone(),
            Streamable::Stateless(_) => unreachable!("sessions are on"),
        }
    }

    fn request(
        method: &str,
        body: Option<Value>,
        session: Option<&str>,
        caller: Option<&McpCaller>,
    ) -> http::Request<Full<Bytes>> {
        let mut b = http::Request::builder()
            .method(method)
            .uri("/mcp")
            .header("host", "localhost")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        if let Some(s) = session {
            b = b.header(SESSION_HEADER, s);
        }
        let body = body.map_or(Bytes::new(), |v| Bytes::from(v.to_string()));
        let mut req = b.body(Full::new(body)).unwrap();
        if let Some(c) = caller {
            req.extensions_mut().insert(c.clone());
        }
        req
    }

    fn initialize() -> Value {
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}})
    }

    fn list() -> Value {
        json!({"jsonrpc": "2.0", "id": 2, "method": "ping"})
    }

    async fn answer(res: McpHttpResponse) -> (StatusCode, http::HeaderMap, Bytes) {
        let status = res.status();
        let headers = res.headers().clone();
        // Session streams stay open; the first frame carries what is asserted on.
        let mut body = res.into_body();
        let bytes = match body.frame().await {
            Some(Ok(f)) => f.into_data().unwrap_or_default(),
            _ => Bytes::new(),
        };
        (status, headers, bytes)
    }

    async fn open(svc: &mut McpHttpService<Bare>, who: Option<&McpCaller>) -> McpHttpResponse {
        svc.call(request("POST", Some(initialize()), None, who))
            .await
            .unwrap()
    }

    fn session_id(res: &McpHttpResponse) -> String {
        res.headers()[SESSION_HEADER].to_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn only_the_owner_uses_a_session_others_get_rmcps_unknown_session_answer() {
        let mut svc = service(64);
        let (a, b) = (caller(Uuid::new_v4(), "dev"), caller(Uuid::new_v4(), "dev"));
        let res = open(&mut svc, Some(&a)).await;
        assert_eq!(res.status(), 200);
        let id = session_id(&res);

        // rmcp's own answer to an id it never issued, straight from rmcp.
        let Streamable::Sessions { service: raw, .. } = &svc.streamable else {
            unreachable!()
        };
        let made_up = Uuid::new_v4().to_string();
        let rmcp_unknown = answer(
            raw.handle(request("POST", Some(list()), Some(&made_up), Some(&a)))
                .await,
        )
        .await;
        assert_eq!(rmcp_unknown.0, 404);

        let same_endpoint_other_principal = Some(&b);
        let same_principal_other_env = caller(a.actor.principal.id, "prod");
        for who in [
            same_endpoint_other_principal,
            Some(&same_principal_other_env),
            None,
        ] {
            for method in ["POST", "GET", "DELETE"] {
                let res = svc
                    .call(request(method, Some(list()), Some(&id), who))
                    .await
                    .unwrap();
                assert_eq!(answer(res).await, rmcp_unknown, "{method} {who:?}");
            }
        }
        // An unknown id through the wrapper: the same.
        let res = svc
            .call(request("DELETE", None, Some(&made_up), Some(&a)))
            .await
            .unwrap();
        assert_eq!(answer(res).await, rmcp_unknown);

        // The owner's session survived all of that.
        let res = svc
            .call(request("POST", Some(list()), Some(&id), Some(&a)))
            .await
            .unwrap();
        let (status, _, body) = answer(res).await;
        assert_eq!(status, 200, "{body:?}");
        // The owner ends it; then it is unknown to the owner too.
        let res = svc
            .call(request("DELETE", None, Some(&id), Some(&a)))
            .await
            .unwrap();
        assert!(res.status().is_success(), "{}", res.status());
        assert_eq!(bindings(&svc).len(), 0);
        let res = svc
            .call(request("POST", Some(list()), Some(&id), Some(&a)))
            .await
            .unwrap();
        assert_eq!(answer(res).await, rmcp_unknown);
    }

    #[tokio::test]
    async fn an_owner_holds_at_most_the_limit_of_live_sessions() {
        let mut svc = service(2);
        let (a, b) = (caller(Uuid::new_v4(), "dev"), caller(Uuid::new_v4(), "dev"));
        let first = session_id(&open(&mut svc, Some(&a)).await);
        let _second = session_id(&open(&mut svc, Some(&a)).await);
        let refused = open(&mut svc, Some(&a)).await;
        assert_eq!(refused.status(), 429);
        assert!(refused.headers().get(SESSION_HEADER).is_none());
        let (_, headers, body) = answer(refused).await;
        assert_eq!(headers["content-type"], "application/json");
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("too many open MCP sessions for this credential"),
            "{body}"
        );
        // The refused session was closed in rmcp, not left behind.
        assert_eq!(bindings(&svc).manager.sessions.read().await.len(), 2);
        assert_eq!(bindings(&svc).len(), 2);
        // Another principal is not affected.
        assert_eq!(open(&mut svc, Some(&b)).await.status(), 200);

        // A session rmcp ended (as its idle timeout does) no longer counts.
        bindings(&svc)
            .manager
            .close_session(&Arc::from(first.as_str()))
            .await
            .unwrap();
        assert_eq!(open(&mut svc, Some(&a)).await.status(), 200);
        assert_eq!(bindings(&svc).len(), 3);
    }
}
