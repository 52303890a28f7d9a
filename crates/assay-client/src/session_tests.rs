//! `OAuthSession` against a fake server that is both the API (401 for unknown access
//! tokens) and the token endpoint (rotating refresh tokens with reuse detection, as the
//! real one does).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::{ClientConfig, Credential, OAuthSession, RemoteControlPlane, TokenSet, TokenStore};
use assay_core::Result;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;

#[derive(Default)]
struct Fake {
    /// Access tokens the API accepts.
    valid: HashSet<String>,
    /// Refresh token → already used.
    refresh: HashMap<String, bool>,
    /// Lifetime of issued access tokens.
    expires_in: u64,
    issued: usize,
    refresh_calls: usize,
    /// A used refresh token was presented again (the real server revokes the grant).
    reuse: bool,
    /// The API answers 401 to every token, fresh ones included.
    reject_all: bool,
    /// The `Authorization` header of every API request.
    api_calls: Vec<String>,
    /// The token endpoint answers 503 (down for maintenance, overloaded).
    token_unavailable: bool,
}

type Shared = Arc<Mutex<Fake>>;

async fn healthz(State(fake): State<Shared>, headers: HeaderMap) -> Response {
    let mut fake = fake.lock().unwrap();
    let auth = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    fake.api_calls.push(auth.clone());
    let token = auth.strip_prefix("Bearer ").unwrap_or_default();
    if !fake.reject_all && fake.valid.contains(token) {
        StatusCode::OK.into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [("content-type", "application/problem+json")],
            r#"{"type":"urn:assay:problem:unauthenticated","status":401,"detail":"the token is invalid or expired"}"#,
        )
            .into_response()
    }
}

async fn token(State(fake): State<Shared>, Form(form): Form<HashMap<String, String>>) -> Response {
    let mut fake = fake.lock().unwrap();
    fake.refresh_calls += 1;
    if fake.token_unavailable {
        return (StatusCode::SERVICE_UNAVAILABLE, "down for maintenance").into_response();
    }
    assert_eq!(form["grant_type"], "refresh_token");
    assert_eq!(form["client_id"], "assay-cli");
    let presented = &form["refresh_token"];
    match fake.refresh.get(presented).copied() {
        None => {
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({"error": "invalid_grant",
                                        "error_description": "the refresh token is invalid"})),
            )
                .into_response();
        }
        Some(true) => {
            fake.reuse = true;
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({"error": "invalid_grant",
                                        "error_description": "the refresh token was reused"})),
            )
                .into_response();
        }
        Some(false) => {}
    }
    fake.refresh.insert(presented.clone(), true);
    fake.issued += 1;
    let (access, refresh) = (format!("at-{}", fake.issued), format!("rt-{}", fake.issued));
    fake.valid.insert(access.clone());
    fake.refresh.insert(refresh.clone(), false);
    Json(serde_json::json!({
        "access_token": access, "token_type": "Bearer", "expires_in": fake.expires_in,
        "refresh_token": refresh, "scope": "mcp:write",
    }))
    .into_response()
}

/// A fake whose API accepts `valid` and whose token endpoint knows `rt-0` (unused).
async fn fake_server(valid: &[&str], expires_in: u64) -> (url::Url, Shared) {
    let fake = Arc::new(Mutex::new(Fake {
        valid: valid.iter().map(|s| (*s).to_owned()).collect(),
        refresh: HashMap::from([("rt-0".to_owned(), false)]),
        expires_in,
        ..Fake::default()
    }));
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/oauth/token", post(token))
        // A redirect keeping method and body (307): followed, it would hand the refresh
        // token to whatever `Location` names.
        .route(
            "/oauth/moved",
            post(|| async {
                (
                    StatusCode::TEMPORARY_REDIRECT,
                    [("location", "/oauth/token")],
                )
            }),
        )
        .with_state(Arc::clone(&fake));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}").parse().unwrap(), fake)
}

/// The store of one credential shared by "processes" (sessions); counts saves.
#[derive(Default)]
struct MemoryStore {
    tokens: Mutex<Option<TokenSet>>,
    saves: Mutex<usize>,
    /// This many saves fail before they work again.
    failing_saves: Mutex<usize>,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl TokenStore for MemoryStore {
    fn load(&self) -> Result<Option<TokenSet>> {
        Ok(self.tokens.lock().unwrap().clone())
    }
    fn save(&self, tokens: &TokenSet) -> Result<()> {
        let mut failing = self.failing_saves.lock().unwrap();
        if *failing > 0 {
            *failing -= 1;
            return Err(assay_core::Error::Internal("the keyring is locked".into()));
        }
        *self.tokens.lock().unwrap() = Some(tokens.clone());
        *self.saves.lock().unwrap() += 1;
        Ok(())
    }
    fn lock(&self) -> Result<Box<dyn std::any::Any + Send>> {
        Ok(Box::new(Arc::clone(&self.lock).blocking_lock_owned()))
    }
}

fn tokens(access: &str, expires_in_secs: i64) -> TokenSet {
    TokenSet {
        access_token: access.into(),
        refresh_token: Some("rt-0".into()),
        expires_at: Some(OffsetDateTime::now_utc() + time::Duration::seconds(expires_in_secs)),
        scope: Some("mcp:write".into()),
        // Unknown, as for tokens saved before it was recorded: the margin is the full 60 s.
        lifetime_secs: None,
    }
}

fn session(base: &url::Url, tokens: TokenSet, store: &Arc<MemoryStore>) -> Arc<OAuthSession> {
    session_at(base, "/oauth/token", tokens, store)
}

fn session_at(
    base: &url::Url,
    token_path: &str,
    tokens: TokenSet,
    store: &Arc<MemoryStore>,
) -> Arc<OAuthSession> {
    let store: Arc<dyn TokenStore> = Arc::clone(store) as _;
    let http = crate::oauth_http_client(
        "assay-test/1",
        &crate::TlsOptions::default(),
        Duration::from_secs(5),
    )
    .unwrap();
    Arc::new(OAuthSession::new(
        http,
        base.join(token_path).unwrap(),
        "assay-cli".into(),
        tokens,
        store,
    ))
}

fn client(base: &url::Url, session: &Arc<OAuthSession>) -> RemoteControlPlane {
    RemoteControlPlane::new(ClientConfig {
        base_url: base.clone(),
        credential: Credential::OAuth(Arc::clone(session)),
        tls: crate::TlsOptions::default(),
        org: "acme".into(),
        env: "dev".into(),
        user_agent: "assay-test/1".into(),
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

fn store_with(tokens: &TokenSet) -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::default());
    *store.tokens.lock().unwrap() = Some(tokens.clone());
    store
}

#[tokio::test]
async fn a_401_refreshes_once_and_resends_with_the_new_token() {
    let (base, fake) = fake_server(&[], 3600).await;
    let old = tokens("at-old", 3600);
    let store = store_with(&old);
    let s = session(&base, old, &store);
    client(&base, &s).healthz().await.unwrap();

    let fake = fake.lock().unwrap();
    assert_eq!(fake.api_calls, ["Bearer at-old", "Bearer at-1"]);
    assert_eq!(fake.refresh_calls, 1);
    let saved = store.load().unwrap().unwrap();
    assert_eq!(saved.access_token, "at-1");
    assert_eq!(saved.refresh_token.as_deref(), Some("rt-1"));
    assert_eq!(s.tokens(), saved);
}

#[tokio::test]
async fn a_second_401_is_the_answer_not_another_refresh() {
    let (base, fake) = fake_server(&[], 3600).await;
    fake.lock().unwrap().reject_all = true;
    let old = tokens("at-old", 3600);
    let store = store_with(&old);
    let s = session(&base, old, &store);
    let api = client(&base, &s);
    let err = api.healthz().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "unauthenticated: the token is invalid or expired"
    );
    let fake = fake.lock().unwrap();
    assert_eq!(fake.api_calls.len(), 2, "{:?}", fake.api_calls);
    assert_eq!(fake.refresh_calls, 1);
}

#[tokio::test]
async fn a_token_about_to_expire_is_refreshed_before_the_request() {
    let (base, fake) = fake_server(&["at-old"], 3600).await;
    // Within the 60 s margin.
    let old = tokens("at-old", 30);
    let store = store_with(&old);
    let s = session(&base, old, &store);
    client(&base, &s).healthz().await.unwrap();

    let fake = fake.lock().unwrap();
    assert_eq!(fake.api_calls, ["Bearer at-1"]);
    assert_eq!(fake.refresh_calls, 1);
    let expires_at = s.tokens().expires_at.unwrap();
    let left = expires_at - OffsetDateTime::now_utc();
    assert!(left > time::Duration::minutes(59), "{left}");
}

#[tokio::test]
async fn a_fresh_token_is_used_as_is() {
    let (base, fake) = fake_server(&["at-old"], 3600).await;
    let old = tokens("at-old", 3600);
    let store = store_with(&old);
    let s = session(&base, old, &store);
    client(&base, &s).healthz().await.unwrap();
    let fake = fake.lock().unwrap();
    assert_eq!(fake.api_calls, ["Bearer at-old"]);
    assert_eq!(fake.refresh_calls, 0);
    assert_eq!(*store.saves.lock().unwrap(), 0);
}

#[tokio::test]
async fn another_process_refreshed_so_its_tokens_are_adopted() {
    let (base, fake) = fake_server(&[], 3600).await;
    let old = tokens("at-old", 30);
    let store = store_with(&old);
    let first = session(&base, old.clone(), &store);
    let second = session(&base, old, &store);

    assert_eq!(first.access_token().await.unwrap(), "at-1");
    // The second holds the same old tokens; refreshing with rt-0 again would be reuse.
    assert_eq!(second.access_token().await.unwrap(), "at-1");
    let fake = fake.lock().unwrap();
    assert_eq!(fake.refresh_calls, 1);
    assert!(!fake.reuse);
    assert_eq!(second.tokens().refresh_token.as_deref(), Some("rt-1"));
}

#[tokio::test]
async fn another_process_refreshed_but_that_token_is_expiring_too_so_its_refresh_token_is_used() {
    let (base, fake) = fake_server(&[], 3600).await;
    // This session's refresh token was spent by the process that refreshed; that
    // process's access token is within the margin as well: adoption is not enough.
    fake.lock().unwrap().refresh.insert("rt-spent".into(), true);
    let mut ours = tokens("at-old", 30);
    ours.refresh_token = Some("rt-spent".into());
    let store = store_with(&tokens("at-other", 30));
    let s = session(&base, ours, &store);

    assert_eq!(s.access_token().await.unwrap(), "at-1");
    let fake = fake.lock().unwrap();
    assert_eq!(fake.refresh_calls, 1);
    assert!(!fake.reuse, "the session reused its spent refresh token");
    assert_eq!(
        store.load().unwrap().unwrap().refresh_token.as_deref(),
        Some("rt-1")
    );
}

#[tokio::test]
async fn concurrent_rejections_refresh_once() {
    let (base, fake) = fake_server(&[], 3600).await;
    let old = tokens("at-old", 3600);
    let store = store_with(&old);
    let s = session(&base, old, &store);
    let api = client(&base, &s);
    let (a, b) = tokio::join!(api.healthz(), api.healthz());
    a.unwrap();
    b.unwrap();
    let fake = fake.lock().unwrap();
    assert_eq!(fake.refresh_calls, 1);
    assert!(!fake.reuse);
}

#[tokio::test]
async fn a_refused_refresh_tells_the_user_to_log_in_again() {
    let (base, fake) = fake_server(&[], 3600).await;
    fake.lock().unwrap().refresh.clear();
    let old = tokens("at-old", 30);
    let store = store_with(&old);
    let s = session(&base, old, &store);
    let err = client(&base, &s).healthz().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "unauthenticated: your session has ended (the refresh token is invalid); \
         run `assay login` again"
    );
    // Nothing was sent to the API with a token known to be expiring and unrefreshable.
    assert!(fake.lock().unwrap().api_calls.is_empty());
}

#[tokio::test]
async fn without_a_refresh_token_an_expiring_session_has_ended() {
    let (base, fake) = fake_server(&[], 3600).await;
    let mut old = tokens("at-old", 30);
    old.refresh_token = None;
    let store = store_with(&old);
    let s = session(&base, old, &store);
    let err = s.access_token().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "unauthenticated: your session has ended (the access token expired and there is no \
         refresh token); run `assay login` again"
    );
    assert_eq!(fake.lock().unwrap().refresh_calls, 0);
}

#[test]
fn token_sets_never_show_their_secrets_and_persist_expiry_as_rfc3339() {
    let t = TokenSet {
        access_token: "eyJ-secret".into(),
        refresh_token: Some("assay_rt_secret".into()),
        expires_at: Some(time::macros::datetime!(2030-01-02 03:04:05 UTC)),
        scope: Some("mcp:write".into()),
        lifetime_secs: None,
    };
    let shown = format!("{t:?}");
    assert!(!shown.contains("secret"), "{shown}");
    let json = serde_json::to_value(&t).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"access_token": "eyJ-secret", "refresh_token": "assay_rt_secret",
                           "expires_at": "2030-01-02T03:04:05Z", "scope": "mcp:write"})
    );
    assert_eq!(serde_json::from_value::<TokenSet>(json).unwrap(), t);
    let with_lifetime = TokenSet {
        lifetime_secs: Some(900),
        ..t.clone()
    };
    let json = serde_json::to_value(&with_lifetime).unwrap();
    assert_eq!(json["lifetime_secs"], 900);
    assert_eq!(
        serde_json::from_value::<TokenSet>(json).unwrap(),
        with_lifetime
    );

    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::default());
    crate::install_crypto_provider();
    let s = OAuthSession::new(
        reqwest::Client::new(),
        "http://127.0.0.1:1/oauth/token".parse().unwrap(),
        "assay-cli".into(),
        t,
        store,
    );
    let shown = format!("{:?}", Credential::OAuth(Arc::new(s)));
    assert!(!shown.contains("secret"), "{shown}");
    assert_eq!(
        format!("{:?}", Credential::Bearer("assay_x".into())),
        "Bearer(***)"
    );
}

#[tokio::test]
async fn signed_out_on_this_machine_ends_the_session_without_asking_the_server() {
    let ended = "unauthenticated: your session has ended (signed out on this machine); \
                 run `assay login` again";
    // `assay logout` (or `context delete`, or an API token in its place) emptied the
    // store while this session ran. Its refresh token is spent or revoked: presenting it
    // would look like theft to the server.
    let (base, fake) = fake_server(&[], 3600).await;
    let empty = Arc::new(MemoryStore::default());
    let expiring = session(&base, tokens("at-old", 30), &empty);
    assert_eq!(
        expiring.access_token().await.unwrap_err().to_string(),
        ended
    );
    // The same after the server rejected the access token (logout revoked it).
    let rejected = session(&base, tokens("at-old", 3600), &empty);
    let err = client(&base, &rejected).healthz().await.unwrap_err();
    assert_eq!(err.to_string(), ended);

    let fake = fake.lock().unwrap();
    assert_eq!(fake.refresh_calls, 0, "the token endpoint was asked");
    assert_eq!(fake.api_calls, ["Bearer at-old"]);
}

#[tokio::test]
async fn a_save_that_fails_once_is_retried() {
    let (base, fake) = fake_server(&["at-old"], 3600).await;
    let old = tokens("at-old", 30);
    let store = store_with(&old);
    *store.failing_saves.lock().unwrap() = 1;
    let s = session(&base, old, &store);
    assert_eq!(s.access_token().await.unwrap(), "at-1");
    assert_eq!(store.load().unwrap().unwrap(), s.tokens());
    assert_eq!(*store.saves.lock().unwrap(), 1);
    assert_eq!(fake.lock().unwrap().refresh_calls, 1);
}

#[tokio::test]
async fn refreshed_tokens_that_cannot_be_saved_fail_with_what_to_do_and_stay_in_memory() {
    let (base, fake) = fake_server(&["at-old"], 3600).await;
    let old = tokens("at-old", 30);
    let store = store_with(&old);
    *store.failing_saves.lock().unwrap() = 2;
    let s = session(&base, old.clone(), &store);
    let api = client(&base, &s);
    let err = api.healthz().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "internal error: the access token was refreshed but the new tokens could not be \
         saved (internal error: the keyring is locked). This process keeps using them, but \
         other `assay` commands for this login would present the spent refresh token and \
         end the login: fix the credential store (the OS keyring or the credentials file), \
         then run `assay login` again"
    );
    assert_eq!(store.load().unwrap().unwrap(), old, "nothing was saved");
    assert_eq!(s.tokens().refresh_token.as_deref(), Some("rt-1"));

    // This process goes on with the new tokens.
    api.healthz().await.unwrap();
    // The next refresh (the server rejects at-1) must not take the spent rt-0 the store
    // still holds for the latest.
    fake.lock().unwrap().valid.remove("at-1");
    api.healthz().await.unwrap();
    let fake = fake.lock().unwrap();
    assert!(!fake.reuse, "the spent refresh token was presented again");
    assert_eq!(fake.refresh_calls, 2);
    assert_eq!(
        fake.api_calls,
        ["Bearer at-1", "Bearer at-1", "Bearer at-2"]
    );
    let saved = store.load().unwrap().unwrap();
    assert_eq!(saved.refresh_token.as_deref(), Some("rt-2"));
}

#[tokio::test]
async fn an_unavailable_token_endpoint_does_not_fail_requests_while_the_token_is_valid() {
    let (base, fake) = fake_server(&["at-old"], 3600).await;
    fake.lock().unwrap().token_unavailable = true;
    // Within the margin, but still valid for 30 s.
    let old = tokens("at-old", 30);
    let store = store_with(&old);
    let s = session(&base, old, &store);
    let api = client(&base, &s);
    api.healthz().await.unwrap();
    // The next request does not wait on the endpoint again right away.
    api.healthz().await.unwrap();
    {
        let fake = fake.lock().unwrap();
        assert_eq!(fake.api_calls, ["Bearer at-old", "Bearer at-old"]);
        assert_eq!(fake.refresh_calls, 1);
    }

    // An expired token is no use: the endpoint's failure is the answer.
    let expired = tokens("at-old", -5);
    let s = session(&base, expired.clone(), &store_with(&expired));
    let err = s.access_token().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "unavailable: {} answered 503; try again later",
            base.join("/oauth/token").unwrap()
        )
    );
}

#[tokio::test]
async fn short_lived_tokens_are_not_refreshed_on_every_request() {
    // The server issues 30 s tokens, below the 60 s margin: the margin becomes 15 s.
    let (base, fake) = fake_server(&[], 30).await;
    let old = tokens("at-old", 10);
    let store = store_with(&old);
    let s = session(&base, old, &store);
    let api = client(&base, &s);
    for _ in 0..3 {
        api.healthz().await.unwrap();
    }
    let fake = fake.lock().unwrap();
    assert_eq!(fake.refresh_calls, 1);
    assert_eq!(
        fake.api_calls,
        ["Bearer at-1", "Bearer at-1", "Bearer at-1"]
    );
    assert_eq!(s.tokens().lifetime_secs, Some(30));
    assert_eq!(store.load().unwrap().unwrap().lifetime_secs, Some(30));
}

#[tokio::test]
async fn a_redirect_from_the_token_endpoint_is_not_followed() {
    let (base, fake) = fake_server(&[], 3600).await;
    let old = tokens("at-old", 30);
    let store = store_with(&old);
    let s = session_at(&base, "/oauth/moved", old, &store);
    let err = s.access_token().await.unwrap_err();
    let origin = base.as_str().trim_end_matches('/');
    assert_eq!(
        err.to_string(),
        format!(
            "invalid input: url: {origin}/oauth/moved answered 307, \
             redirecting to {origin}/oauth/token; OAuth requests carry credentials and are \
             not redirected: use the server's public URL"
        )
    );
    assert_eq!(
        fake.lock().unwrap().refresh_calls,
        0,
        "the refresh token was posted to the redirect's target"
    );
}
