//! The login flows against a fake authorization server that answers like Assay's
//! (`/.well-known/*`, `/oauth/token`, `/oauth/device`, `/oauth/revoke`, RFC 6749 error
//! JSON). In the browser tests the test plays the browser and the authorization page: it
//! reads the authorization URL handed to `open` and calls the loopback redirect.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::login::{
    self, AuthServerMetadata, CLI_CLIENT_ID, CLI_SCOPE, DeviceCode, browser_login, discover, revoke,
};
use assay_core::Error;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use url::Url;

#[derive(Default)]
struct Fake {
    issuer: String,
    /// The code challenge of the pending authorization (set by the test "browser").
    challenge: Option<String>,
    redirect_uri: Option<String>,
    /// Every form posted to the token endpoint.
    token_forms: Vec<HashMap<String, String>>,
    /// Answers of the device-code grant, in order.
    device_answers: VecDeque<(StatusCode, serde_json::Value)>,
    device_forms: Vec<HashMap<String, String>>,
    revoke_forms: Vec<HashMap<String, String>>,
    /// Published instead of `{issuer}/oauth/token`.
    token_endpoint: Option<String>,
}

type Shared = Arc<Mutex<Fake>>;

fn oauth_error(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({"error": error, "error_description": description})),
    )
        .into_response()
}

fn issued() -> serde_json::Value {
    serde_json::json!({"access_token": "eyJ-access", "token_type": "Bearer", "expires_in": 900,
                       "refresh_token": "assay_rt_1", "scope": "mcp:write"})
}

async fn prm(State(fake): State<Shared>) -> Json<serde_json::Value> {
    let issuer = fake.lock().unwrap().issuer.clone();
    Json(serde_json::json!({
        "resource": issuer, "authorization_servers": [issuer],
        "scopes_supported": ["mcp:read", "mcp:run", "mcp:write"],
        "bearer_methods_supported": ["header"], "resource_name": "Assay",
    }))
}

async fn metadata(State(fake): State<Shared>) -> Json<serde_json::Value> {
    let (issuer, token_endpoint) = {
        let fake = fake.lock().unwrap();
        (fake.issuer.clone(), fake.token_endpoint.clone())
    };
    Json(serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth/authorize"),
        "token_endpoint": token_endpoint.unwrap_or_else(|| format!("{issuer}/oauth/token")),
        "registration_endpoint": format!("{issuer}/oauth/register"),
        "revocation_endpoint": format!("{issuer}/oauth/revoke"),
        "device_authorization_endpoint": format!("{issuer}/oauth/device"),
        "jwks_uri": format!("{issuer}/oauth/jwks.json"),
        "scopes_supported": ["mcp:read", "mcp:run", "mcp:write", "offline_access"],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
    }))
}

async fn token(State(fake): State<Shared>, Form(form): Form<HashMap<String, String>>) -> Response {
    let mut fake = fake.lock().unwrap();
    fake.token_forms.push(form.clone());
    match form["grant_type"].as_str() {
        "authorization_code" => {
            // Checked as the real server does: S256 of the verifier is the challenge.
            let challenge = fake.challenge.clone().unwrap();
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            if crate::login::code_challenge_of(&verifier) != challenge {
                return oauth_error(
                    "invalid_grant",
                    "code_verifier does not match the code_challenge",
                );
            }
            if form.get("code").map(String::as_str) != Some("assay_ac_1")
                || form.get("redirect_uri") != fake.redirect_uri.as_ref()
            {
                return oauth_error("invalid_grant", "wrong code or redirect_uri");
            }
            Json(issued()).into_response()
        }
        "urn:ietf:params:oauth:grant-type:device_code" => {
            assert_eq!(form["device_code"], "assay_dc_1");
            let (status, body) = fake.device_answers.pop_front().unwrap();
            (status, Json(body)).into_response()
        }
        other => oauth_error("unsupported_grant_type", other),
    }
}

async fn device(State(fake): State<Shared>, Form(form): Form<HashMap<String, String>>) -> Response {
    let mut fake = fake.lock().unwrap();
    fake.device_forms.push(form);
    let issuer = fake.issuer.clone();
    Json(serde_json::json!({
        "device_code": "assay_dc_1", "user_code": "BCDF-GHJK",
        "verification_uri": format!("{issuer}/oauth/device/verify"),
        "verification_uri_complete": format!("{issuer}/oauth/device/verify?user_code=BCDF-GHJK"),
        "expires_in": 600, "interval": 1,
    }))
    .into_response()
}

async fn revoke_endpoint(
    State(fake): State<Shared>,
    Form(form): Form<HashMap<String, String>>,
) -> StatusCode {
    fake.lock().unwrap().revoke_forms.push(form);
    StatusCode::OK
}

async fn fake_server() -> (Url, Shared) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let fake = Arc::new(Mutex::new(Fake {
        issuer: issuer.clone(),
        ..Fake::default()
    }));
    let app = Router::new()
        .route("/.well-known/oauth-protected-resource", get(prm))
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route("/oauth/token", post(token))
        .route("/oauth/device", post(device))
        .route("/oauth/revoke", post(revoke_endpoint))
        .with_state(Arc::clone(&fake));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    // As typed by a user: with the trailing slash the issuer does not have.
    (format!("{issuer}/").parse().unwrap(), fake)
}

fn http() -> reqwest::Client {
    crate::oauth_http_client(
        "assay-test/1",
        &crate::TlsOptions::default(),
        Duration::from_secs(5),
    )
    .unwrap()
}

async fn setup() -> (reqwest::Client, AuthServerMetadata, Shared) {
    let (base, fake) = fake_server().await;
    let http = http();
    let meta = discover(&http, &base).await.unwrap();
    (http, meta, fake)
}

#[tokio::test]
async fn discovery_reads_both_documents() {
    let (base, fake) = fake_server().await;
    let meta = discover(&http(), &base).await.unwrap();
    let issuer = fake.lock().unwrap().issuer.clone();
    assert_eq!(meta.issuer, issuer);
    assert_eq!(meta.resource, issuer);
    assert_eq!(
        meta.token_endpoint.as_str(),
        format!("{issuer}/oauth/token")
    );
    assert_eq!(
        meta.device_authorization_endpoint.unwrap().as_str(),
        format!("{issuer}/oauth/device")
    );
    assert!(meta.authorization_response_iss_parameter_supported);
}

#[tokio::test]
async fn a_server_with_another_public_url_is_refused() {
    let (base, fake) = fake_server().await;
    let real = fake.lock().unwrap().issuer.clone();
    // Same server, reached under a name it does not call itself.
    let other: Url = base
        .as_str()
        .replace("127.0.0.1", "localhost")
        .parse()
        .unwrap();
    let err = discover(&http(), &other).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "invalid input: url: the server at {} calls itself {real}; log in with that URL \
             (its configured public URL)",
            other.as_str().trim_end_matches('/')
        )
    );
}

#[tokio::test]
async fn discovery_refuses_a_token_endpoint_outside_the_issuers_origin() {
    let (base, fake) = fake_server().await;
    let issuer = fake.lock().unwrap().issuer.clone();
    let port = base.port().unwrap();
    let elsewhere = [
        // Another scheme (the https issuer's endpoint on plain http is the same check).
        format!("https://127.0.0.1:{port}/oauth/token"),
        // Another host, another port.
        format!("http://localhost:{port}/oauth/token"),
        format!("http://127.0.0.1:{}/oauth/token", port.wrapping_add(1)),
    ];
    for endpoint in elsewhere {
        fake.lock().unwrap().token_endpoint = Some(format!("{endpoint}?x=1"));
        let err = discover(&http(), &base).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "invalid input: url: the server's metadata puts its token_endpoint at \
                 {endpoint}, outside {issuer}; refusing to send credentials there (the \
                 server's public URL is misconfigured, or this is not the server it claims \
                 to be)"
            )
        );
    }
}

#[test]
fn an_http_endpoint_under_an_https_issuer_is_refused() {
    let base: Url = "https://assay.example.com/".parse().unwrap();
    let err = login::endpoint_of(
        &base,
        "token_endpoint",
        "http://assay.example.com/oauth/token",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid input: url: the server's metadata puts its token_endpoint at \
         http://assay.example.com/oauth/token, outside https://assay.example.com; refusing \
         to send credentials there (the server's public URL is misconfigured, or this is \
         not the server it claims to be)"
    );
    // Same origin, default port spelled out: accepted.
    let ok = login::endpoint_of(
        &base,
        "token_endpoint",
        "https://assay.example.com:443/oauth/token",
    )
    .unwrap();
    assert_eq!(ok.as_str(), "https://assay.example.com/oauth/token");
}

/// The callbacks the test "browser" makes, in order, given the authorization request's
/// parameters: the query of each.
type Answer = fn(&HashMap<String, String>) -> Vec<Vec<(&'static str, String)>>;

/// Runs `browser_login`, playing the authorization page with `answer`. Returns the login
/// result, the authorization URL's parameters and the pages the browser was shown.
async fn login_with(
    answer: Answer,
) -> (
    Result<crate::TokenSet, Error>,
    HashMap<String, String>,
    Vec<String>,
    Shared,
) {
    let (http, meta, fake) = setup().await;
    let seen = Arc::new(Mutex::new(None));
    let (page_tx, page_rx) = tokio::sync::oneshot::channel();
    let issuer = meta.issuer.clone();
    let result = browser_login(
        &http,
        &meta,
        CLI_CLIENT_ID,
        CLI_SCOPE,
        &meta.resource,
        |url| {
            let params: HashMap<String, String> = url.query_pairs().into_owned().collect();
            assert!(
                url.as_str()
                    .starts_with(&format!("{issuer}/oauth/authorize?"))
            );
            {
                let mut fake = fake.lock().unwrap();
                fake.challenge = params.get("code_challenge").cloned();
                fake.redirect_uri = params.get("redirect_uri").cloned();
            }
            *seen.lock().unwrap() = Some(params.clone());
            let redirect: Url = params["redirect_uri"].parse().unwrap();
            let callbacks: Vec<Url> = answer(&params)
                .into_iter()
                .map(|query| {
                    let mut url = redirect.clone();
                    url.query_pairs_mut().extend_pairs(query);
                    url
                })
                .collect();
            tokio::spawn(async move {
                let addr = format!(
                    "{}:{}",
                    redirect.host_str().unwrap(),
                    redirect.port().unwrap()
                );
                // A browser's spare connection that never sends a request must not
                // hold up the login.
                let idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
                let browser = reqwest::Client::new();
                let favicon = browser
                    .get(redirect.join("/favicon.ico").unwrap())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(favicon.status(), 404);
                let mut pages = Vec::new();
                for callback in callbacks {
                    let page = browser.get(callback).send().await.unwrap();
                    assert_eq!(page.status(), 200);
                    pages.push(page.text().await.unwrap());
                }
                let _ = page_tx.send(pages);
                drop(idle);
            });
        },
        Duration::from_secs(30),
    )
    .await;
    let page = page_rx.await.unwrap();
    let params = seen.lock().unwrap().take().unwrap();
    (result, params, page, fake)
}

fn good_answer(params: &HashMap<String, String>) -> Vec<(&'static str, String)> {
    vec![
        ("code", "assay_ac_1".into()),
        ("state", params["state"].clone()),
        ("iss", params["resource"].clone()),
    ]
}

fn good(params: &HashMap<String, String>) -> Vec<Vec<(&'static str, String)>> {
    vec![good_answer(params)]
}

#[tokio::test]
async fn browser_login_exchanges_the_code_with_the_pkce_verifier() {
    let (result, params, pages, fake) = login_with(good).await;
    let tokens = result.unwrap();
    let page = &pages[0];
    assert_eq!(tokens.access_token, "eyJ-access");
    assert_eq!(tokens.refresh_token.as_deref(), Some("assay_rt_1"));
    assert_eq!(tokens.scope.as_deref(), Some("mcp:write"));
    assert!(tokens.expires_at.is_some());
    assert!(page.contains("You are signed in to Assay"), "{page}");

    let issuer = fake.lock().unwrap().issuer.clone();
    assert_eq!(params["response_type"], "code");
    assert_eq!(params["client_id"], "assay-cli");
    assert_eq!(params["scope"], "mcp:write");
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["resource"], issuer);
    let redirect: Url = params["redirect_uri"].parse().unwrap();
    assert_eq!(redirect.host_str(), Some("127.0.0.1"));
    assert_eq!(redirect.path(), "/callback");
    assert_ne!(redirect.port(), None);
    assert_eq!(params["state"].len(), 43);

    let fake = fake.lock().unwrap();
    let form = &fake.token_forms[0];
    assert_eq!(form["client_id"], "assay-cli");
    assert_eq!(form["resource"], issuer);
    assert_eq!(form["code_verifier"].len(), 43);
    assert_ne!(form["code_verifier"], params["state"]);
}

#[tokio::test]
async fn browser_login_refuses_an_answer_with_another_state_and_waits_for_its_own() {
    let (result, _, pages, fake) = login_with(|p| {
        vec![
            vec![
                ("code", "assay_ac_forged".into()),
                ("state", "forged".into()),
                ("iss", p["resource"].clone()),
            ],
            // No state at all: refused the same way.
            vec![
                ("error", "access_denied".into()),
                ("iss", p["resource"].clone()),
            ],
            good_answer(p),
        ]
    })
    .await;
    assert_eq!(result.unwrap().access_token, "eyJ-access");
    for refused in &pages[..2] {
        assert!(
            refused.contains("does not belong to the sign-in the terminal is waiting for"),
            "{refused}"
        );
    }
    assert!(pages[2].contains("You are signed in"), "{}", pages[2]);
    // Only the genuine code was exchanged.
    let fake = fake.lock().unwrap();
    assert_eq!(fake.token_forms.len(), 1);
    assert_eq!(fake.token_forms[0]["code"], "assay_ac_1");
}

#[tokio::test]
async fn browser_login_refuses_an_answer_from_another_issuer() {
    let (result, _, _, fake) = login_with(|p| {
        vec![vec![
            ("code", "assay_ac_1".into()),
            ("state", p["state"].clone()),
            ("iss", "https://evil.example".into()),
        ]]
    })
    .await;
    let issuer = fake.lock().unwrap().issuer.clone();
    assert_eq!(
        result.unwrap_err().to_string(),
        format!(
            "unauthenticated: the login answer came from https://evil.example, not from \
             {issuer}; run `assay login` again"
        )
    );
    assert!(fake.lock().unwrap().token_forms.is_empty());
}

#[tokio::test]
async fn browser_login_refuses_an_answer_without_the_promised_issuer() {
    let (result, _, _, fake) = login_with(|p| {
        vec![vec![
            ("code", "assay_ac_1".into()),
            ("state", p["state"].clone()),
        ]]
    })
    .await;
    let err = result.unwrap_err();
    assert!(
        matches!(&err, Error::Unauthenticated(m) if m.starts_with("the login answer does not name its issuer")),
        "{err:?}"
    );
    assert!(fake.lock().unwrap().token_forms.is_empty());
}

#[tokio::test]
async fn browser_login_reports_a_denial() {
    let (result, _, pages, _) = login_with(|p| {
        vec![vec![
            ("error", "access_denied".into()),
            ("error_description", "the user said <no>".into()),
            ("state", p["state"].clone()),
            ("iss", p["resource"].clone()),
        ]]
    })
    .await;
    let page = &pages[0];
    assert_eq!(
        result.unwrap_err().to_string(),
        "unauthenticated: the login was denied in the browser"
    );
    assert!(
        page.contains("the login was denied in the browser"),
        "{page}"
    );
}

#[tokio::test]
async fn browser_login_escapes_the_servers_error_text_in_the_page() {
    let (result, _, pages, _) = login_with(|p| {
        vec![vec![
            ("error", "invalid_scope".into()),
            ("error_description", "<script>x</script>".into()),
            ("state", p["state"].clone()),
            ("iss", p["resource"].clone()),
        ]]
    })
    .await;
    let page = &pages[0];
    assert_eq!(
        result.unwrap_err().to_string(),
        "unauthenticated: the login failed (invalid_scope: <script>x</script>)"
    );
    assert!(!page.contains("<script>"), "{page}");
    assert!(page.contains("&lt;script&gt;"), "{page}");
}

#[tokio::test]
async fn a_wrong_verifier_is_caught_by_the_fake() {
    // The fake's PKCE check can fail: a challenge that is not the verifier's is refused.
    assert_ne!(
        crate::login::code_challenge_of("a-verifier-of-forty-three-characters-xxxxxx"),
        crate::login::code_challenge_of("another-verifier-of-forty-three-characters-")
    );
    // RFC 7636 appendix B.
    assert_eq!(
        crate::login::code_challenge_of("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
}

#[tokio::test]
async fn browser_login_gives_up_after_the_timeout() {
    let (http, meta, _) = setup().await;
    let err = browser_login(
        &http,
        &meta,
        CLI_CLIENT_ID,
        CLI_SCOPE,
        &meta.resource,
        |_| {},
        Duration::from_millis(50),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Error::Unauthenticated(m) if m.starts_with("the login was not completed within")),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_callback_port_answers_once_and_closes() {
    // After the login the listener is gone: a second answer cannot be delivered.
    let (result, params, _, _) = login_with(good).await;
    result.unwrap();
    let redirect: Url = params["redirect_uri"].parse().unwrap();
    let addr = format!("127.0.0.1:{}", redirect.port().unwrap());
    let late = tokio::net::TcpStream::connect(&addr).await;
    if let Ok(mut s) = late {
        // A connection may still be accepted by the OS backlog; it must get no page.
        let _ = s.write_all(b"GET /callback HTTP/1.1\r\n\r\n").await;
        let mut buf = Vec::new();
        let n = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::io::AsyncReadExt::read_to_end(&mut s, &mut buf),
        )
        .await;
        assert!(matches!(n, Ok(Ok(0)) | Ok(Err(_))), "{n:?} {buf:?}");
    }
}

async fn device_run(
    answers: Vec<(StatusCode, serde_json::Value)>,
) -> (
    Result<crate::TokenSet, Error>,
    Vec<Duration>,
    Option<DeviceCode>,
    Shared,
) {
    let (http, meta, fake) = setup().await;
    fake.lock().unwrap().device_answers = answers.into();
    let waits = Arc::new(Mutex::new(Vec::new()));
    let mut shown = None;
    let w = Arc::clone(&waits);
    let result = login::device_login_with(
        &http,
        &meta,
        CLI_CLIENT_ID,
        CLI_SCOPE,
        &meta.resource,
        |code| shown = Some(code.clone()),
        move |d| {
            w.lock().unwrap().push(d);
            std::future::ready(())
        },
    )
    .await;
    let waits = waits.lock().unwrap().clone();
    (result, waits, shown, fake)
}

fn pending() -> (StatusCode, serde_json::Value) {
    (
        StatusCode::BAD_REQUEST,
        serde_json::json!({"error": "authorization_pending",
                           "error_description": "the user has not yet approved or denied the request"}),
    )
}

#[tokio::test]
async fn device_login_polls_through_pending_and_slow_down() {
    let (result, waits, shown, fake) = device_run(vec![
        pending(),
        (
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error": "slow_down",
                               "error_description": "polling too fast: wait at least 6 seconds between requests"}),
        ),
        (StatusCode::OK, issued()),
    ])
    .await;
    let tokens = result.unwrap();
    assert_eq!(tokens.access_token, "eyJ-access");
    assert_eq!(
        waits,
        [1, 1, 6].map(Duration::from_secs),
        "slow_down adds 5 s to the interval"
    );
    let shown = shown.unwrap();
    assert_eq!(shown.user_code, "BCDF-GHJK");
    assert!(shown.verification_uri.ends_with("/oauth/device/verify"));
    assert_eq!(shown.expires_in, 600);

    let fake = fake.lock().unwrap();
    let issuer = fake.issuer.clone();
    assert_eq!(
        fake.device_forms[0],
        HashMap::from([
            ("client_id".to_owned(), "assay-cli".to_owned()),
            ("scope".to_owned(), "mcp:write".to_owned()),
            ("resource".to_owned(), issuer),
        ])
    );
    assert_eq!(fake.token_forms.len(), 3);
    assert_eq!(fake.token_forms[2]["client_id"], "assay-cli");
}

#[tokio::test]
async fn device_login_stops_when_the_code_expires() {
    let (result, _, _, _) = device_run(vec![
        pending(),
        (
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error": "expired_token",
                               "error_description": "the device code has expired; start again"}),
        ),
    ])
    .await;
    assert_eq!(
        result.unwrap_err().to_string(),
        "unauthenticated: the device code expired before the login was approved; \
         run `assay login --device` again"
    );
}

#[tokio::test]
async fn device_login_reports_a_denial() {
    let (result, waits, _, _) = device_run(vec![(
        StatusCode::BAD_REQUEST,
        serde_json::json!({"error": "access_denied", "error_description": "the user denied the request"}),
    )])
    .await;
    assert_eq!(
        result.unwrap_err().to_string(),
        "unauthenticated: the device login was denied"
    );
    assert_eq!(waits.len(), 1);
}

#[tokio::test]
async fn device_login_gives_up_once_the_code_lifetime_has_passed() {
    // 600 s at 1 s per poll: the 601st wait is never made.
    let answers = std::iter::repeat_with(pending).take(600).collect();
    let (result, waits, _, _) = device_run(answers).await;
    assert!(
        matches!(result, Err(Error::Unauthenticated(ref m)) if m.starts_with("the device code expired")),
        "{result:?}"
    );
    assert_eq!(waits.len(), 600);
}

#[tokio::test]
async fn revoke_posts_the_token_with_its_hint() {
    let (http, meta, fake) = setup().await;
    revoke(&http, &meta, CLI_CLIENT_ID, "assay_rt_1", "refresh_token")
        .await
        .unwrap();
    assert_eq!(
        fake.lock().unwrap().revoke_forms,
        [HashMap::from([
            ("token".to_owned(), "assay_rt_1".to_owned()),
            ("token_type_hint".to_owned(), "refresh_token".to_owned()),
            ("client_id".to_owned(), "assay-cli".to_owned()),
        ])]
    );
}
