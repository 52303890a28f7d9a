//! A faithful in-test identity provider: a real HTTP server on `127.0.0.1:0` that
//! speaks OpenID Connect (discovery, JWKS, authorization, token with real RS256/ES256
//! id_tokens) and GitHub's OAuth web flow (`/login/oauth/*`, `/user`, `/user/emails`).
//!
//! It checks what real providers check — client authentication by the method it
//! advertises, registered redirect URIs, single-use codes bound to the redirect URI,
//! PKCE S256 — so a client that passes against it has done the protocol, not just
//! parsed a canned answer. Knobs let tests make it misbehave the ways real providers
//! or attackers do (wrong issuer, tampered claims, rotated keys, huge bodies).
//!
//! Only for tests (`cfg(test)` or the `test-idp` feature); not production code, so
//! `expect` on its own setup is acceptable here, never on request input.

#![allow(clippy::expect_used)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey};
use rsa::Generate as _;
use rsa::traits::PublicKeyParts as _;
use serde_json::{Value, json};
use url::Url;

use crate::pkce;

/// Where the OIDC side lives under the server's root, so the issuer has a path (as
/// Keycloak's and Dex's do) and the discovery URL is built from it correctly.
pub const ISSUER_PATH: &str = "/realms/test";

/// The signed-in user the provider auto-approves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeUser {
    pub subject: String,
    pub email: String,
    pub email_verified: bool,
    pub name: String,
    pub github_id: u64,
    pub github_login: String,
}

impl Default for FakeUser {
    fn default() -> Self {
        Self {
            subject: "248289761001".into(),
            email: "ada@example.com".into(),
            email_verified: true,
            name: "Ada Lovelace".into(),
            github_id: 583231,
            github_login: "ada-l".into(),
        }
    }
}

/// How the token endpoint authenticates the client (advertised in discovery).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeClientAuth {
    Basic,
    Post,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeSigning {
    Rs256,
    Es256,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FakeEndpoint {
    Discovery,
    Jwks,
    Authorize,
    Token,
    GitHubAuthorize,
    GitHubToken,
    GitHubUser,
    GitHubEmails,
}

#[derive(Debug, Clone)]
pub struct FakeIdpConfig {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uris: Vec<String>,
    pub client_auth: FakeClientAuth,
    pub signing: FakeSigning,
    pub user: FakeUser,
    /// `/user/emails`; default: the user's address, primary and verified as
    /// `user.email_verified` says, plus a verified secondary address.
    pub github_emails: Option<Vec<Value>>,
}

impl Default for FakeIdpConfig {
    fn default() -> Self {
        Self {
            client_id: "assay-test-client".into(),
            client_secret: "fake-idp-client-secret".into(),
            redirect_uris: vec!["http://127.0.0.1:7357/oauth/upstream/test/callback".into()],
            client_auth: FakeClientAuth::Basic,
            signing: FakeSigning::Rs256,
            user: FakeUser::default(),
            github_emails: None,
        }
    }
}

/// A signing key and its public JWK.
#[derive(Clone)]
pub struct FakeKey {
    pub kid: String,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    pub jwk: Value,
    /// The public key as PKCS#1 / SEC1 DER — what an attacker would try as an HMAC
    /// secret.
    pub public_der: Vec<u8>,
}

/// RSA key generation is slow without optimizations, so each of the two keys (current
/// and "rotated") is made at most once per test process, on first use, and shared.
fn rsa_key_1() -> &'static FakeKey {
    static KEY: OnceLock<FakeKey> = OnceLock::new();
    KEY.get_or_init(|| rsa_key("rsa-1"))
}

fn rsa_key_2() -> &'static FakeKey {
    static KEY: OnceLock<FakeKey> = OnceLock::new();
    KEY.get_or_init(|| rsa_key("rsa-2"))
}

fn rsa_key(kid: &str) -> FakeKey {
    use rsa::pkcs1::{EncodeRsaPrivateKey as _, EncodeRsaPublicKey as _};
    let private = rsa::PrivateKey::try_generate().expect("OS RNG");
    let der = private.to_pkcs1_der().expect("PKCS#1 encoding");
    let public = private.to_public_key();
    FakeKey {
        kid: kid.to_owned(),
        alg: Algorithm::RS256,
        encoding: EncodingKey::from_rsa_der(der.as_bytes()),
        jwk: json!({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(public.n_bytes()),
            "e": URL_SAFE_NO_PAD.encode(public.e_bytes()),
        }),
        public_der: public.to_pkcs1_der().expect("PKCS#1 encoding").into_vec(),
    }
}

fn ec_key(kid: &str) -> FakeKey {
    use p256::pkcs8::EncodePrivateKey as _;
    let secret = p256::SecretKey::try_generate().expect("OS RNG");
    let der = secret.to_pkcs8_der().expect("PKCS#8 encoding");
    let point = secret.public_key().to_sec1_bytes();
    // Uncompressed SEC1: 0x04 || x || y.
    assert_eq!(point.len(), 65, "uncompressed P-256 point");
    FakeKey {
        kid: kid.to_owned(),
        alg: Algorithm::ES256,
        encoding: EncodingKey::from_ec_der(der.as_bytes()),
        jwk: json!({
            "kty": "EC", "use": "sig", "alg": "ES256", "kid": kid, "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        }),
        public_der: point.to_vec(),
    }
}

type Tweak = Box<dyn FnOnce(&mut Value, &mut Value) + Send>;

struct Issued {
    client_id: String,
    redirect_uri: String,
    challenge: Option<String>,
    nonce: Option<String>,
    github: bool,
}

struct Knobs {
    discovery_issuer: Option<String>,
    tweak: Option<Tweak>,
    padding: HashMap<FakeEndpoint, (usize, bool)>,
    signing: FakeKey,
    published: Vec<Value>,
}

struct Shared {
    config: FakeIdpConfig,
    issuer: String,
    base: Url,
    knobs: Mutex<Knobs>,
    codes: Mutex<HashMap<String, Issued>>,
    github_tokens: Mutex<Vec<String>>,
    hits: Mutex<HashMap<FakeEndpoint, usize>>,
}

impl Shared {
    fn knobs(&self) -> std::sync::MutexGuard<'_, Knobs> {
        self.knobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn hit(&self, endpoint: FakeEndpoint) {
        *self
            .hits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(endpoint)
            .or_default() += 1;
    }

    /// A JSON response, padded with whitespace (still valid JSON) when a test asked for
    /// an oversized body, streamed without Content-Length when asked for chunked.
    fn json(&self, endpoint: FakeEndpoint, status: StatusCode, value: &Value) -> Response {
        let mut body = value.to_string();
        let padding = self.knobs().padding.get(&endpoint).copied();
        let chunked = match padding {
            Some((bytes, chunked)) => {
                body.push_str(&" ".repeat(bytes));
                chunked
            }
            None => false,
        };
        let body = if chunked {
            let chunks: Vec<Result<Vec<u8>, Infallible>> = body
                .into_bytes()
                .chunks(4096)
                .map(|c| Ok(c.to_vec()))
                .collect();
            Body::from_stream(futures::stream::iter(chunks))
        } else {
            Body::from(body)
        };
        Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CACHE_CONTROL, "no-store")
            .body(body)
            .expect("static response parts")
    }
}

/// The running provider; stops when dropped.
pub struct FakeIdp {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeIdp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeIdp {
    pub async fn start(config: FakeIdpConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local address");
        let base = Url::parse(&format!("http://{addr}")).expect("base URL");
        let signing = match config.signing {
            FakeSigning::Rs256 => rsa_key_1().clone(),
            FakeSigning::Es256 => ec_key("ec-1"),
        };
        let published = vec![signing.jwk.clone()];
        let shared = Arc::new(Shared {
            issuer: format!("http://{addr}{ISSUER_PATH}"),
            base,
            config,
            knobs: Mutex::new(Knobs {
                discovery_issuer: None,
                tweak: None,
                padding: HashMap::new(),
                signing,
                published,
            }),
            codes: Mutex::new(HashMap::new()),
            github_tokens: Mutex::new(Vec::new()),
            hits: Mutex::new(HashMap::new()),
        });
        let oidc = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/protocol/openid-connect/certs", get(jwks))
            .route("/protocol/openid-connect/auth", get(authorize))
            .route("/protocol/openid-connect/token", post(token));
        let app = Router::new()
            .nest(ISSUER_PATH, oidc)
            .route("/login/oauth/authorize", get(github_authorize))
            .route("/login/oauth/access_token", post(github_token))
            .route("/user", get(github_user))
            .route("/user/emails", get(github_emails))
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { shared, task }
    }

    /// `http://127.0.0.1:<port>`: GitHub's web and API base.
    pub fn base_url(&self) -> &Url {
        &self.shared.base
    }

    pub fn issuer(&self) -> &str {
        &self.shared.issuer
    }

    pub fn config(&self) -> &FakeIdpConfig {
        &self.shared.config
    }

    /// The current signing key (to forge tokens in tests).
    pub fn signing_key(&self) -> FakeKey {
        self.shared.knobs().signing.clone()
    }

    /// Requests served per endpoint.
    pub fn hits(&self, endpoint: FakeEndpoint) -> usize {
        self.shared
            .hits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&endpoint)
            .copied()
            .unwrap_or(0)
    }

    /// Makes discovery claim another issuer.
    pub fn set_discovery_issuer(&self, issuer: &str) {
        self.shared.knobs().discovery_issuer = Some(issuer.to_owned());
    }

    /// Lets the next id_token's header and claims be changed before signing.
    pub fn tweak_next_id_token(&self, tweak: impl FnOnce(&mut Value, &mut Value) + Send + 'static) {
        self.shared.knobs().tweak = Some(Box::new(tweak));
    }

    /// Pads an endpoint's JSON with `bytes` of whitespace, optionally streamed without
    /// `Content-Length`.
    pub fn pad(&self, endpoint: FakeEndpoint, bytes: usize, chunked: bool) {
        self.shared
            .knobs()
            .padding
            .insert(endpoint, (bytes, chunked));
    }

    /// Switches to the second RSA key and publishes only it (a rotation without
    /// overlap, which forces clients to refetch the JWKS).
    pub fn rotate_key(&self) {
        let next = rsa_key_2().clone();
        let mut knobs = self.shared.knobs();
        knobs.published = vec![next.jwk.clone()];
        knobs.signing = next;
    }

    /// Signs `claims` under `header` (given as JSON, so tests can put anything in it)
    /// with the current key.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let key = self.signing_key();
        sign_with(&key, header, claims)
    }

    /// Standard claims for an id_token for `nonce`, issued now.
    pub fn claims(&self, nonce: &str) -> Value {
        standard_claims(&self.shared, nonce)
    }

    /// The header the provider puts on its tokens.
    pub fn header(&self) -> Value {
        let key = self.signing_key();
        json!({"alg": alg_name(key.alg), "typ": "JWT", "kid": key.kid})
    }

    /// What a browser does with the authorization URL when the user is already signed
    /// in at the provider: the provider redirects straight back; returns that
    /// `Location`.
    pub async fn follow_authorization(&self, url: &Url) -> Result<Url, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|e| e.to_string())?;
        let response = client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_redirection() {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            return Err(format!("authorization answered {status}: {body}"));
        }
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or("no Location")?;
        Url::parse(location).map_err(|e| e.to_string())
    }
}

fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::ES256 => "ES256",
        _ => "RS256",
    }
}

/// Compact JWS of arbitrary header and claims JSON, signed with `key`.
pub fn sign_with(key: &FakeKey, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature =
        jsonwebtoken::crypto::sign(input.as_bytes(), &key.encoding, key.alg).expect("signing");
    format!("{input}.{signature}")
}

fn standard_claims(shared: &Shared, nonce: &str) -> Value {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let user = &shared.config.user;
    json!({
        "iss": shared.issuer,
        "sub": user.subject,
        "aud": shared.config.client_id,
        "exp": now + 300,
        "iat": now,
        "auth_time": now,
        "nonce": nonce,
        "email": user.email,
        "email_verified": user.email_verified,
        "name": user.name,
    })
}

fn random() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

async fn discovery(State(s): State<Arc<Shared>>) -> Response {
    s.hit(FakeEndpoint::Discovery);
    let issuer = s
        .knobs()
        .discovery_issuer
        .clone()
        .unwrap_or_else(|| s.issuer.clone());
    let base = &s.issuer;
    let auth_methods = match s.config.client_auth {
        FakeClientAuth::Basic => json!(["client_secret_basic"]),
        FakeClientAuth::Post => json!(["client_secret_post"]),
    };
    let doc = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{base}/protocol/openid-connect/auth"),
        "token_endpoint": format!("{base}/protocol/openid-connect/token"),
        "jwks_uri": format!("{base}/protocol/openid-connect/certs"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "PS256"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "email", "profile"],
        "authorization_response_iss_parameter_supported": true,
    });
    s.json(FakeEndpoint::Discovery, StatusCode::OK, &doc)
}

async fn jwks(State(s): State<Arc<Shared>>) -> Response {
    s.hit(FakeEndpoint::Jwks);
    let keys = s.knobs().published.clone();
    s.json(FakeEndpoint::Jwks, StatusCode::OK, &json!({ "keys": keys }))
}

fn redirect(to: &str, params: &[(&str, &str)]) -> Response {
    let Ok(mut url) = Url::parse(to) else {
        return (StatusCode::BAD_REQUEST, "bad redirect_uri").into_response();
    };
    url.query_pairs_mut().extend_pairs(params);
    (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response()
}

/// The checks both authorization endpoints share. Errors before the redirect URI is
/// trusted are a 400 page, as a real provider shows.
fn check_authorization(
    s: &Shared,
    q: &HashMap<String, String>,
    github: bool,
) -> Result<(String, Option<String>), Box<Response>> {
    let field = |k: &str| q.get(k).map(String::as_str);
    if field("client_id") != Some(s.config.client_id.as_str()) {
        return Err(Box::new(
            (StatusCode::BAD_REQUEST, "unknown client_id").into_response(),
        ));
    }
    let redirect_uri = field("redirect_uri").unwrap_or_default().to_owned();
    if !s.config.redirect_uris.contains(&redirect_uri) {
        return Err(Box::new(
            (StatusCode::BAD_REQUEST, "unregistered redirect_uri").into_response(),
        ));
    }
    let state = field("state").unwrap_or_default();
    let fail = |error: &str| {
        Box::new(redirect(
            &redirect_uri,
            &[("error", error), ("state", state)],
        ))
    };
    if !github && field("response_type") != Some("code") {
        return Err(fail("unsupported_response_type"));
    }
    if !github
        && !field("scope")
            .unwrap_or_default()
            .split(' ')
            .any(|s| s == "openid")
    {
        return Err(fail("invalid_scope"));
    }
    let challenge = match (field("code_challenge"), field("code_challenge_method")) {
        (Some(c), Some("S256")) if pkce::validate_challenge(c).is_ok() => Some(c.to_owned()),
        // GitHub treats PKCE as optional; an OIDC provider of this kind requires it.
        (None, None) if github => None,
        _ => return Err(fail("invalid_request")),
    };
    Ok((redirect_uri, challenge))
}

async fn authorize(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    s.hit(FakeEndpoint::Authorize);
    issue_code(&s, &q, false)
}

/// Checks an authorization request and redirects back with a fresh code. An OIDC
/// provider binds the `nonce` to the code and names itself in `iss` (RFC 9207).
fn issue_code(s: &Shared, q: &HashMap<String, String>, github: bool) -> Response {
    let (redirect_uri, challenge) = match check_authorization(s, q, github) {
        Ok(ok) => ok,
        Err(response) => return *response,
    };
    let code = random();
    s.codes.lock().unwrap_or_else(|e| e.into_inner()).insert(
        code.clone(),
        Issued {
            client_id: s.config.client_id.clone(),
            redirect_uri: redirect_uri.clone(),
            challenge,
            nonce: if github {
                None
            } else {
                q.get("nonce").cloned()
            },
            github,
        },
    );
    let state = q.get("state").map(String::as_str).unwrap_or_default();
    if github {
        redirect(&redirect_uri, &[("code", &code), ("state", state)])
    } else {
        redirect(
            &redirect_uri,
            &[("code", &code), ("state", state), ("iss", &s.issuer)],
        )
    }
}

fn oauth_error(s: &Shared, endpoint: FakeEndpoint, status: StatusCode, error: &str) -> Response {
    s.json(
        endpoint,
        status,
        &json!({"error": error, "error_description": format!("fake IdP: {error}")}),
    )
}

/// The client's credentials by the advertised method only (RFC 6749 §2.3: one method
/// per request).
fn authenticate_client(s: &Shared, headers: &HeaderMap, form: &HashMap<String, String>) -> bool {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| STANDARD.decode(v).ok())
        .and_then(|v| String::from_utf8(v).ok());
    match (s.config.client_auth, basic) {
        (FakeClientAuth::Basic, Some(pair)) if !form.contains_key("client_secret") => {
            let decode = |p: &str| {
                url::form_urlencoded::parse(format!("x={p}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
            };
            let Some((id, secret)) = pair.split_once(':') else {
                return false;
            };
            decode(id).as_deref() == Some(s.config.client_id.as_str())
                && decode(secret).as_deref() == Some(s.config.client_secret.as_str())
        }
        (FakeClientAuth::Post, None) => {
            form.get("client_id") == Some(&s.config.client_id)
                && form.get("client_secret") == Some(&s.config.client_secret)
        }
        _ => false,
    }
}

/// Takes the code (single use) and checks it against the request.
fn redeem(
    s: &Shared,
    form: &HashMap<String, String>,
    github: bool,
) -> Result<Issued, &'static str> {
    let code = form.get("code").ok_or("invalid_request")?;
    let issued = s
        .codes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(code)
        .ok_or(if github {
            "bad_verification_code"
        } else {
            "invalid_grant"
        })?;
    let wrong = if github {
        "redirect_uri_mismatch"
    } else {
        "invalid_grant"
    };
    if issued.github != github || issued.client_id != s.config.client_id {
        return Err(if github {
            "bad_verification_code"
        } else {
            "invalid_grant"
        });
    }
    if form.get("redirect_uri") != Some(&issued.redirect_uri) {
        return Err(wrong);
    }
    match (&issued.challenge, form.get("code_verifier")) {
        (Some(challenge), Some(verifier)) if pkce::verify(challenge, verifier).is_ok() => {}
        (None, None) => {}
        _ => {
            return Err(if github {
                "bad_verification_code"
            } else {
                "invalid_grant"
            });
        }
    }
    Ok(issued)
}

async fn token(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    s.hit(FakeEndpoint::Token);
    let endpoint = FakeEndpoint::Token;
    if !authenticate_client(&s, &headers, &form) {
        return oauth_error(&s, endpoint, StatusCode::UNAUTHORIZED, "invalid_client");
    }
    if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return oauth_error(
            &s,
            endpoint,
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        );
    }
    let issued = match redeem(&s, &form, false) {
        Ok(issued) => issued,
        Err(error) => return oauth_error(&s, endpoint, StatusCode::BAD_REQUEST, error),
    };
    let (key, tweak) = {
        let mut knobs = s.knobs();
        (knobs.signing.clone(), knobs.tweak.take())
    };
    let mut header = json!({"alg": alg_name(key.alg), "typ": "JWT", "kid": key.kid});
    let mut claims = standard_claims(&s, issued.nonce.as_deref().unwrap_or_default());
    if issued.nonce.is_none()
        && let Some(c) = claims.as_object_mut()
    {
        c.remove("nonce");
    }
    if let Some(tweak) = tweak {
        tweak(&mut header, &mut claims);
    }
    let id_token = sign_with(&key, &header, &claims);
    s.json(
        endpoint,
        StatusCode::OK,
        &json!({
            "access_token": random(),
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "openid email profile",
            "id_token": id_token,
        }),
    )
}

async fn github_authorize(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    s.hit(FakeEndpoint::GitHubAuthorize);
    issue_code(&s, &q, true)
}

/// GitHub answers errors here with 200, and form-encodes unless asked for JSON.
async fn github_token(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    s.hit(FakeEndpoint::GitHubToken);
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let result = if form.get("client_id") != Some(&s.config.client_id)
        || form.get("client_secret") != Some(&s.config.client_secret)
    {
        Err("incorrect_client_credentials")
    } else {
        redeem(&s, &form, true)
    };
    let pairs: Vec<(&str, String)> = match result {
        Ok(_) => {
            let token = format!("gho_{}", random());
            s.github_tokens
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(token.clone());
            vec![
                ("access_token", token),
                ("token_type", "bearer".into()),
                ("scope", "read:user,user:email".into()),
            ]
        }
        Err(error) => vec![
            ("error", error.into()),
            ("error_description", format!("fake GitHub: {error}")),
        ],
    };
    if wants_json {
        let object: serde_json::Map<String, Value> = pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::String(v)))
            .collect();
        s.json(
            FakeEndpoint::GitHubToken,
            StatusCode::OK,
            &Value::Object(object),
        )
    } else {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        (
            [(header::CONTENT_TYPE, "application/x-www-form-urlencoded")],
            body,
        )
            .into_response()
    }
}

fn github_authorized(s: &Shared, headers: &HeaderMap) -> bool {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("token "))
        });
    presented.is_some_and(|t| {
        s.github_tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|known| known == t)
    })
}

fn bad_credentials(s: &Shared, endpoint: FakeEndpoint) -> Response {
    s.json(
        endpoint,
        StatusCode::UNAUTHORIZED,
        &json!({"message": "Bad credentials", "status": "401"}),
    )
}

async fn github_user(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    s.hit(FakeEndpoint::GitHubUser);
    if !github_authorized(&s, &headers) {
        return bad_credentials(&s, FakeEndpoint::GitHubUser);
    }
    let user = &s.config.user;
    let body = json!({
        "login": user.github_login,
        "id": user.github_id,
        "type": "User",
        "name": user.name,
        "email": Value::Null,
    });
    s.json(FakeEndpoint::GitHubUser, StatusCode::OK, &body)
}

async fn github_emails(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    s.hit(FakeEndpoint::GitHubEmails);
    if !github_authorized(&s, &headers) {
        return bad_credentials(&s, FakeEndpoint::GitHubEmails);
    }
    let user = &s.config.user;
    let emails = s.config.github_emails.clone().unwrap_or_else(|| {
        vec![
            json!({"email": "ada-l@users.noreply.github.com", "primary": false, "verified": true, "visibility": Value::Null}),
            json!({"email": user.email, "primary": true, "verified": user.email_verified, "visibility": "private"}),
        ]
    });
    s.json(
        FakeEndpoint::GitHubEmails,
        StatusCode::OK,
        &Value::Array(emails),
    )
}
