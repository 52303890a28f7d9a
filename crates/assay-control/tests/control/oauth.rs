//! The OAuth 2.1 authorization server (`LocalControlPlane::oauth`) over the real SQLite
//! store: login, consent, codes, PKCE, tokens validated by the plane's own
//! authenticator, refresh rotation and reuse detection, the device grant, dynamic
//! registration, metadata documents fetched from a real loopback HTTP server,
//! revocation, and the audit trail of all of it.

use crate::harness::*;
use assay_auth::pkce::s256_challenge;
use assay_auth::scope::McpScope;
use assay_auth::secrets::SecretHash;
use assay_auth::ssrf::SsrfPolicy;
use assay_control::jwt_auth as jwt_reasons;
use assay_control::oauth::{
    AuthorizationServer, AuthorizeParams, AuthorizeRejection, AuthorizeRequest, BrowserSession,
    ConsentDecision, LoginError, OAuthConfig, OAuthError, RateLimit, RequestContext, TokenParams,
    TokenResponse,
};
use assay_control::passwords::hash_password;
use assay_control::{ControlPlaneConfig, LocalControlPlane};
use assay_core::actor::{AuthMethod, ClientInfo, Principal, PrincipalKind};
use assay_core::audit::{AuditEvent, Outcome};
use assay_core::identity::{MemberUpdate, Membership, OrgRole, User};
use assay_core::oauth::OAuthClientKind;
use assay_core::ports::{ControlPlane, Store};
use assay_core::{Actor, Error, Level};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use uuid::Uuid;

// Key sealing, rotation and reload; a child module, to share this file's OAuth helpers.
#[path = "signing_keys.rs"]
mod signing_keys;

const ISSUER: &str = "https://assay.test";
const PASSWORD: &str = "correct horse battery staple";
const CLI: &str = "assay-cli";
const CLI_REDIRECT: &str = "http://127.0.0.1:53682/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

fn dev_resource() -> String {
    format!("{ISSUER}/organizations/acme/environments/dev/mcp")
}

fn oauth_config(adjust: impl FnOnce(&mut OAuthConfig)) -> ControlPlaneConfig {
    let mut oauth = OAuthConfig {
        // Loopback metadata documents over plain http, for the test server below.
        cimd_policy: SsrfPolicy::strict()
            .allow_private_for_tests_and_airgapped()
            .allow_plain_http_to_loopback_for_tests(),
        ..OAuthConfig::default()
    };
    adjust(&mut oauth);
    ControlPlaneConfig {
        public_url: Some(url::Url::parse(&format!("{ISSUER}/")).unwrap()),
        oauth,
        ..config(1)
    }
}

struct OAuthApp {
    app: TestApp,
    server: Arc<AuthorizationServer>,
}

impl OAuthApp {
    async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    async fn start_with(adjust: impl FnOnce(&mut OAuthConfig)) -> Self {
        let app = TestApp::start_with(oauth_config(adjust)).await;
        let server = app.plane.oauth();
        Self { app, server }
    }

    fn plane(&self) -> &Arc<LocalControlPlane> {
        &self.app.plane
    }

    /// A user with a local password and a membership in acme.
    async fn user(&self, email: &str, role: OrgRole, grants: &[(Uuid, Level)]) -> User {
        let user = User {
            id: Uuid::now_v7(),
            email: email.into(),
            display_name: format!("User {email}"),
            password_hash: Some(hash_password(PASSWORD).unwrap()),
            disabled: false,
            created_at: time::OffsetDateTime::now_utc(),
        };
        self.app.store.insert_user(&user).await.unwrap();
        self.app
            .store
            .upsert_membership(&Membership {
                org_id: self.app.t.acme.id,
                user_id: user.id,
                role,
                grants: grants.iter().copied().collect::<BTreeMap<_, _>>(),
            })
            .await
            .unwrap();
        user
    }

    async fn login(&self, email: &str) -> BrowserSession {
        self.server
            .login_password(email, PASSWORD, &ctx())
            .await
            .unwrap()
    }

    async fn begin(&self, p: &AuthorizeParams) -> AuthorizeRequest {
        match self.server.begin_authorization(p, &ctx()).await {
            Ok(r) => r,
            Err(e) => panic!("authorization request refused: {e:?}"),
        }
    }

    async fn rejection(&self, p: &AuthorizeParams) -> AuthorizeRejection {
        self.server
            .begin_authorization(p, &ctx())
            .await
            .expect_err("the request should be refused")
    }

    /// Login → request → approve → the code from the redirect.
    async fn code(&self, s: &BrowserSession, p: &AuthorizeParams, scope: McpScope) -> String {
        let r = self.begin(p).await;
        let location = self
            .server
            .decide(s, &r, ConsentDecision::Approve { scope }, &ctx())
            .await
            .unwrap();
        let q = query(&location);
        assert_eq!(q.get("iss").map(String::as_str), Some(ISSUER));
        assert_eq!(q.get("state"), p.state.as_ref());
        q.get("code").cloned().expect("a code in the redirect")
    }

    async fn exchange(&self, client_id: &str, code: &str) -> Result<TokenResponse, OAuthError> {
        self.server
            .token(&code_exchange(client_id, code, VERIFIER), &ctx())
            .await
    }

    async fn refresh(
        &self,
        client_id: &str,
        refresh_token: &str,
        scope: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        let f = TokenParams {
            grant_type: Some("refresh_token".into()),
            client_id: Some(client_id.into()),
            refresh_token: Some(refresh_token.into()),
            scope: scope.map(Into::into),
            ..TokenParams::default()
        };
        self.server.token(&f, &ctx()).await
    }

    /// The principal an access token stands for at acme's dev MCP endpoint.
    async fn validate(&self, access_token: &str) -> Result<Principal, Error> {
        self.plane()
            .authenticator()
            .authenticate_for_resource(
                access_token,
                &ClientInfo::default(),
                Some("acme"),
                Some(&dev_resource()),
            )
            .await
    }

    async fn audit_all(&self) -> Vec<AuditEvent> {
        let mut events = self.app.audit(self.app.t.acme.id).await;
        events.extend(self.app.audit(Uuid::nil()).await);
        events
    }
}

fn ctx() -> RequestContext {
    ctx_from(Ipv4Addr::new(192, 0, 2, 10))
}

fn ctx_from(ip: Ipv4Addr) -> RequestContext {
    RequestContext {
        ip: Some(IpAddr::V4(ip)),
        user_agent: Some("oauth-test".into()),
        request_id: Some("req-1".into()),
    }
}

fn authorize(client_id: &str, redirect_uri: &str) -> AuthorizeParams {
    AuthorizeParams {
        response_type: Some("code".into()),
        client_id: Some(client_id.into()),
        redirect_uri: Some(redirect_uri.into()),
        scope: Some("mcp:run".into()),
        state: Some("xyz state".into()),
        code_challenge: Some(s256_challenge(VERIFIER)),
        code_challenge_method: Some("S256".into()),
        resource: Some(dev_resource()),
        repeated: Vec::new(),
    }
}

fn code_exchange(client_id: &str, code: &str, verifier: &str) -> TokenParams {
    TokenParams {
        grant_type: Some("authorization_code".into()),
        client_id: Some(client_id.into()),
        code: Some(code.into()),
        redirect_uri: Some(CLI_REDIRECT.into()),
        code_verifier: Some(verifier.into()),
        ..TokenParams::default()
    }
}

fn query(location: &str) -> BTreeMap<String, String> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn redirect_error(rejection: &AuthorizeRejection) -> BTreeMap<String, String> {
    match rejection {
        AuthorizeRejection::Redirect { location } => query(location),
        other => panic!("expected an error redirect, got {other:?}"),
    }
}

fn assert_grant_error(result: Result<TokenResponse, OAuthError>, error: &str) -> OAuthError {
    let e = result.expect_err("the token request should fail");
    assert_eq!(e.error, error, "{e:?}");
    e
}

fn refusal_reason(result: Result<Principal, Error>) -> String {
    match result {
        Err(Error::Unauthenticated(reason)) => reason,
        other => panic!("expected a refused token, got {other:?}"),
    }
}

/// No event anywhere holds any of `secrets`.
fn assert_no_secrets(events: &[AuditEvent], secrets: &[&str]) {
    for event in events {
        let text = serde_json::to_string(event).unwrap();
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "event {} contains a secret: {text}",
                event.action
            );
        }
    }
}

fn events_of<'a>(events: &'a [AuditEvent], action: &str) -> Vec<&'a AuditEvent> {
    events.iter().filter(|e| e.action == action).collect()
}

#[tokio::test]
async fn code_flow_refresh_rotation_and_reuse_detection() {
    let t = OAuthApp::start().await;
    let ada = t
        .user(
            "ada@acme.test",
            OrgRole::Member,
            &[(t.app.t.dev.id, Level::Write)],
        )
        .await;
    let session = t.login("ADA@acme.test ").await;
    assert_eq!(session.user_id, ada.id);
    assert_eq!(session.method, "password");

    let p = authorize(CLI, CLI_REDIRECT);
    let r = t.begin(&p).await;
    assert_eq!(r.client.kind, OAuthClientKind::FirstParty);
    assert_eq!(r.client.name, "Assay CLI");
    assert_eq!(r.client.redirect_host, "127.0.0.1");
    assert!(r.client.localhost_only);
    assert_eq!(r.scope, McpScope::Run);
    assert_eq!(r.resource, dev_resource());
    assert_eq!(r.redirect_uri, CLI_REDIRECT);
    // A loopback-only client never skips consent.
    assert!(!t.server.consent_remembered(&session, &r).await);

    let code = t.code(&session, &p, McpScope::Run).await;
    assert!(code.starts_with("assay_ac_"));
    let tokens = t.exchange(CLI, &code).await.unwrap();
    assert_eq!(tokens.token_type, "Bearer");
    assert_eq!(tokens.expires_in, 600);
    assert_eq!(tokens.scope, "mcp:read mcp:run");
    let refresh1 = tokens.refresh_token.clone().unwrap();
    assert!(refresh1.starts_with("assay_rt_"));

    let principal = t.validate(&tokens.access_token).await.unwrap();
    assert_eq!(principal.kind, PrincipalKind::User);
    assert_eq!(principal.id, ada.id);
    assert_eq!(principal.scope_cap, Some(Level::Run));
    assert_eq!(principal.credential_id.as_deref(), Some(CLI));
    // The first-party CLI logs in; below its top scope it is capped like any client.
    assert_eq!(principal.auth_method, AuthMethod::CliLogin);
    assert_eq!(
        principal.level_in(t.app.t.acme.id, t.app.t.dev.id),
        Some(Level::Run)
    );

    // Rotation: a new refresh token each time; the access token still validates.
    let rotated = t.refresh(CLI, &refresh1, None).await.unwrap();
    let refresh2 = rotated.refresh_token.clone().unwrap();
    assert_ne!(refresh2, refresh1);
    assert_eq!(rotated.scope, "mcp:read mcp:run");
    t.validate(&rotated.access_token).await.unwrap();

    // Reuse of the first refresh token: the whole grant ends.
    let e = assert_grant_error(t.refresh(CLI, &refresh1, None).await, "invalid_grant");
    assert_eq!(e.status, 400);
    assert_eq!(
        e.description,
        "the refresh token is invalid, expired, revoked or already used"
    );
    assert_grant_error(t.refresh(CLI, &refresh2, None).await, "invalid_grant");
    for access in [&tokens.access_token, &rotated.access_token] {
        assert_eq!(
            refusal_reason(t.validate(access).await),
            jwt_reasons::GRANT_REVOKED
        );
    }

    let events = t.audit_all().await;
    for action in [
        "oauth.login.succeeded",
        "oauth.consent.granted",
        "oauth.token.issued",
        "oauth.token.refreshed",
        "oauth.refresh.reuse_detected",
    ] {
        let found = events_of(&events, action);
        assert_eq!(found.len(), 1, "{action}: {found:?}");
        assert_eq!(found[0].org_id, t.app.t.acme.id, "{action}");
        assert_eq!(found[0].actor.id, ada.id, "{action}");
    }
    let reuse = events_of(&events, "oauth.refresh.reuse_detected")[0];
    assert_eq!(reuse.outcome, Outcome::Denied);
    assert_eq!(reuse.actor.credential_id.as_deref(), Some(CLI));
    let granted = events_of(&events, "oauth.consent.granted")[0];
    assert!(
        granted
            .resources
            .contains(&format!("resource:{}", dev_resource()))
    );
    assert_eq!(granted.client.ip.as_deref(), Some("192.0.2.10"));
    assert_eq!(granted.client.request_id.as_deref(), Some("req-1"));
    assert_no_secrets(
        &events,
        &[
            &code,
            &refresh1,
            &refresh2,
            &tokens.access_token,
            &rotated.access_token,
            PASSWORD,
            session.secret(),
            VERIFIER,
        ],
    );
}

#[tokio::test]
async fn a_replayed_code_revokes_its_grant() {
    let t = OAuthApp::start().await;
    t.user("bo@acme.test", OrgRole::Admin, &[]).await;
    let s = t.login("bo@acme.test").await;
    let mut p = authorize(CLI, CLI_REDIRECT);
    p.scope = Some("mcp:write".into());
    let code = t.code(&s, &p, McpScope::Write).await;
    let tokens = t.exchange(CLI, &code).await.unwrap();
    assert_eq!(tokens.scope, "mcp:read mcp:run mcp:write");
    t.validate(&tokens.access_token).await.unwrap();

    let e = assert_grant_error(t.exchange(CLI, &code).await, "invalid_grant");
    assert_eq!(
        e.description,
        "the authorization code is invalid, expired or already used"
    );
    assert_eq!(
        refusal_reason(t.validate(&tokens.access_token).await),
        jwt_reasons::GRANT_REVOKED
    );
    assert_grant_error(
        t.refresh(CLI, tokens.refresh_token.as_deref().unwrap(), None)
            .await,
        "invalid_grant",
    );
    let events = t.audit_all().await;
    let replayed = events_of(&events, "oauth.code.replayed");
    assert_eq!(replayed.len(), 1);
    assert_eq!(replayed[0].outcome, Outcome::Denied);
    assert_no_secrets(&events, &[&code]);

    // An expired code is refused and does not count as a replay.
    let code = t
        .code(&s, &authorize(CLI, CLI_REDIRECT), McpScope::Read)
        .await;
    t.app.clock.advance(Duration::from_secs(5 * 60 + 1));
    let e = assert_grant_error(t.exchange(CLI, &code).await, "invalid_grant");
    assert_eq!(e.description, "the authorization code has expired");
    assert_eq!(
        events_of(&t.audit_all().await, "oauth.code.replayed").len(),
        1
    );
}

#[tokio::test]
async fn pkce_is_required_and_checked() {
    let t = OAuthApp::start().await;
    t.user("cy@acme.test", OrgRole::Owner, &[]).await;
    let s = t.login("cy@acme.test").await;

    // At the authorization endpoint: plain, missing method, missing or bad challenge.
    for (challenge, method) in [
        (Some(VERIFIER.to_owned()), Some("plain")),
        (Some(s256_challenge(VERIFIER)), None),
        (None, Some("S256")),
        (Some("too-short".to_owned()), Some("S256")),
    ] {
        let mut p = authorize(CLI, CLI_REDIRECT);
        p.code_challenge = challenge;
        p.code_challenge_method = method.map(Into::into);
        let q = redirect_error(&t.rejection(&p).await);
        assert_eq!(q["error"], "invalid_request", "{method:?}");
        assert_eq!(q["state"], "xyz state");
        assert_eq!(q["iss"], ISSUER);
    }

    // At the token endpoint: a malformed or missing verifier does not spend the code.
    let code = t
        .code(&s, &authorize(CLI, CLI_REDIRECT), McpScope::Read)
        .await;
    let mut missing = code_exchange(CLI, &code, VERIFIER);
    missing.code_verifier = None;
    let e = assert_grant_error(t.server.token(&missing, &ctx()).await, "invalid_request");
    assert_eq!(e.description, "code_verifier is required (PKCE S256)");
    for bad in [
        "a".repeat(42),
        "a".repeat(129),
        format!("{}$", "a".repeat(42)),
    ] {
        let e = assert_grant_error(
            t.server
                .token(&code_exchange(CLI, &code, &bad), &ctx())
                .await,
            "invalid_request",
        );
        assert_eq!(
            e.description,
            "code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]"
        );
    }
    t.exchange(CLI, &code).await.unwrap();

    // A well-formed but wrong verifier: invalid_grant.
    let code = t
        .code(&s, &authorize(CLI, CLI_REDIRECT), McpScope::Read)
        .await;
    let e = assert_grant_error(
        t.server
            .token(&code_exchange(CLI, &code, &"b".repeat(43)), &ctx())
            .await,
        "invalid_grant",
    );
    assert_eq!(
        e.description,
        "code_verifier does not match the code_challenge"
    );
}

#[tokio::test]
async fn redirect_uris_match_exactly_and_bad_ones_never_redirect() {
    let t = OAuthApp::start().await;
    t.user("di@acme.test", OrgRole::Owner, &[]).await;
    let s = t.login("di@acme.test").await;
    let registered = t
        .server
        .register(
            &json!({"client_name": "Web", "redirect_uris": ["https://app.example/cb"]}),
            &ctx(),
        )
        .await
        .unwrap();
    let web = registered["client_id"].as_str().unwrap().to_owned();

    // Loopback: any port, same host and path.
    for ok in [
        "http://127.0.0.1:1/callback",
        "http://127.0.0.1:65535/callback",
        "http://localhost:8080/callback",
    ] {
        assert_eq!(t.begin(&authorize(CLI, ok)).await.redirect_uri, ok);
    }
    assert!(
        t.begin(&authorize(&web, "https://app.example/cb"))
            .await
            .redirect_uri
            == "https://app.example/cb"
    );

    let page = |r: AuthorizeRejection| match r {
        AuthorizeRejection::Page { error, description } => (error, description),
        other => panic!("expected an error page, got {other:?}"),
    };
    for bad in [
        "https://app.example/cb/",
        "https://app.example/cb?x=1",
        "https://APP.example/cb",
        "http://app.example/cb",
        "https://app.example/cb#f",
        "javascript:alert(1)",
    ] {
        let (error, _) = page(t.rejection(&authorize(&web, bad)).await);
        assert_eq!(error, "invalid_request", "{bad}");
    }
    for bad in [
        "http://127.0.0.1:5/other",
        "http://[::1]:5/callback",
        "http://127.0.0.2/callback",
    ] {
        let (error, _) = page(t.rejection(&authorize(CLI, bad)).await);
        assert_eq!(error, "invalid_request", "{bad}");
    }
    let (error, description) = page(
        t.rejection(&authorize("no-such-client", CLI_REDIRECT))
            .await,
    );
    assert_eq!(
        (error, description.as_str()),
        ("invalid_client", "unknown client_id")
    );
    let mut no_client = authorize(CLI, CLI_REDIRECT);
    no_client.client_id = None;
    assert_eq!(page(t.rejection(&no_client).await).0, "invalid_request");
    // Even an unsupported response type goes to the page when the redirect is bad.
    let mut both_bad = authorize(&web, "https://evil.example/cb");
    both_bad.response_type = Some("token".into());
    assert_eq!(page(t.rejection(&both_bad).await).0, "invalid_request");
    let mut wrong_type = authorize(&web, "https://app.example/cb");
    wrong_type.response_type = Some("token".into());
    let q = redirect_error(&t.rejection(&wrong_type).await);
    assert_eq!(q["error"], "unsupported_response_type");

    // The token request must repeat the redirect URI of the authorization request.
    let code = t
        .code(&s, &authorize(CLI, CLI_REDIRECT), McpScope::Read)
        .await;
    let mut other_port = code_exchange(CLI, &code, VERIFIER);
    other_port.redirect_uri = Some("http://127.0.0.1:9999/callback".into());
    assert_grant_error(t.server.token(&other_port, &ctx()).await, "invalid_grant");
    // The code is bound to its client too.
    let code = t
        .code(&s, &authorize(CLI, CLI_REDIRECT), McpScope::Read)
        .await;
    let mut other_client = code_exchange(&web, &code, VERIFIER);
    other_client.redirect_uri = None;
    let e = assert_grant_error(t.server.token(&other_client, &ctx()).await, "invalid_grant");
    assert_eq!(
        e.description,
        "the authorization code was issued to another client"
    );
    let e = assert_grant_error(
        t.server
            .token(&code_exchange("no-such-client", &code, VERIFIER), &ctx())
            .await,
        "invalid_client",
    );
    assert_eq!(
        (e.status, e.description.as_str()),
        (401, "unknown client_id")
    );
}

#[tokio::test]
async fn resources_are_ours_or_invalid_target() {
    let t = OAuthApp::start().await;
    let eve = t
        .user(
            "eve@acme.test",
            OrgRole::Member,
            &[(t.app.t.dev.id, Level::Read)],
        )
        .await;
    let s = t.login("eve@acme.test").await;

    let mut base = authorize(CLI, CLI_REDIRECT);
    base.resource = None;
    assert_eq!(t.begin(&base).await.resource, ISSUER);
    for bad in [
        "https://assay.test/organizations/acme/environments/nope/mcp",
        "https://assay.test/organizations/nope/environments/dev/mcp",
        "https://assay.test/organizations/acme/environments/dev/mcp/",
        "https://assay.test/organizations/acme/environments/dev",
        "https://assay.test/",
        "https://other.test/organizations/acme/environments/dev/mcp",
        "https://assay.test/organizations/ac%6De/environments/dev/mcp",
    ] {
        let mut p = authorize(CLI, CLI_REDIRECT);
        p.resource = Some(bad.into());
        let q = redirect_error(&t.rejection(&p).await);
        assert_eq!(q["error"], "invalid_target", "{bad}");
        assert_eq!(q["iss"], ISSUER);
    }
    let repeated = AuthorizeParams::from_pairs([
        ("response_type", "code"),
        ("client_id", CLI),
        ("redirect_uri", CLI_REDIRECT),
        ("code_challenge", &s256_challenge(VERIFIER)),
        ("code_challenge_method", "S256"),
        ("resource", &dev_resource()),
        ("resource", ISSUER),
    ]);
    assert_eq!(
        redirect_error(&t.rejection(&repeated).await)["error"],
        "invalid_target"
    );

    // A resource the user cannot reach (no grant on staging): access_denied.
    let mut staging = authorize(CLI, CLI_REDIRECT);
    staging.resource = Some(format!(
        "{ISSUER}/organizations/acme/environments/staging/mcp"
    ));
    let r = t.begin(&staging).await;
    let denied = t
        .server
        .decide(
            &s,
            &r,
            ConsentDecision::Approve {
                scope: McpScope::Read,
            },
            &ctx(),
        )
        .await
        .unwrap_err();
    let q = redirect_error(&denied);
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "xyz state");
    let events = t.audit_all().await;
    let refused = events_of(&events, "oauth.consent.denied");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].actor.id, eve.id);
    assert_eq!(refused[0].outcome, Outcome::Denied);

    // The base resource: the grant belongs to the user's organization, and its token
    // is accepted at that organization's endpoints.
    let code = t.code(&s, &base, McpScope::Run).await;
    let tokens = t.exchange(CLI, &code).await.unwrap();
    let p = t.validate(&tokens.access_token).await.unwrap();
    assert_eq!(p.org_id, t.app.t.acme.id);
    // The token endpoint holds the resource to the one authorized.
    let code = t
        .code(&s, &authorize(CLI, CLI_REDIRECT), McpScope::Read)
        .await;
    let mut other = code_exchange(CLI, &code, VERIFIER);
    other.resource = Some(ISSUER.into());
    assert_grant_error(t.server.token(&other, &ctx()).await, "invalid_target");
}

#[tokio::test]
async fn users_may_grant_less_and_a_refresh_never_widens() {
    let t = OAuthApp::start().await;
    t.user("fay@acme.test", OrgRole::Owner, &[]).await;
    let s = t.login("fay@acme.test").await;
    let mut p = authorize(CLI, CLI_REDIRECT);
    p.scope = Some("mcp:write offline_access".into());
    let r = t.begin(&p).await;
    assert_eq!(r.scope, McpScope::Write);
    assert!(r.offline_access);
    // The user grants run only; asking for more than requested gives the request's.
    let code = t.code(&s, &p, McpScope::Run).await;
    let tokens = t.exchange(CLI, &code).await.unwrap();
    assert_eq!(tokens.scope, "mcp:read mcp:run");
    assert_eq!(
        t.validate(&tokens.access_token).await.unwrap().scope_cap,
        Some(Level::Run)
    );

    let narrowed = t
        .refresh(
            CLI,
            tokens.refresh_token.as_deref().unwrap(),
            Some("mcp:read"),
        )
        .await
        .unwrap();
    assert_eq!(narrowed.scope, "mcp:read");
    assert_eq!(
        t.validate(&narrowed.access_token).await.unwrap().scope_cap,
        Some(Level::Read)
    );
    let e = assert_grant_error(
        t.refresh(
            CLI,
            narrowed.refresh_token.as_deref().unwrap(),
            Some("mcp:run"),
        )
        .await,
        "invalid_scope",
    );
    assert_eq!(
        e.description,
        "a refresh cannot widen the scope beyond mcp:read"
    );

    let mut read_only = authorize(CLI, CLI_REDIRECT);
    read_only.scope = None;
    let code = t.code(&s, &read_only, McpScope::Write).await;
    assert_eq!(t.exchange(CLI, &code).await.unwrap().scope, "mcp:read");
}

#[tokio::test]
async fn consent_is_remembered_per_client_resource_and_scope() {
    let t = OAuthApp::start().await;
    t.user("gil@acme.test", OrgRole::Owner, &[]).await;
    let s = t.login("gil@acme.test").await;
    let registered = t
        .server
        .register(
            &json!({"redirect_uris": ["https://app.example/cb"]}),
            &ctx(),
        )
        .await
        .unwrap();
    let web = registered["client_id"].as_str().unwrap().to_owned();
    let mut p = authorize(&web, "https://app.example/cb");
    let r = t.begin(&p).await;
    assert!(!t.server.consent_remembered(&s, &r).await);
    let location = t
        .server
        .decide(
            &s,
            &r,
            ConsentDecision::Approve {
                scope: McpScope::Run,
            },
            &ctx(),
        )
        .await
        .unwrap();
    assert!(location.starts_with("https://app.example/cb?code=assay_ac_"));
    assert!(t.server.consent_remembered(&s, &r).await);
    p.scope = Some("mcp:read".into());
    assert!(t.server.consent_remembered(&s, &t.begin(&p).await).await);
    p.scope = Some("mcp:write".into());
    assert!(!t.server.consent_remembered(&s, &t.begin(&p).await).await);
    p.scope = None;
    p.resource = None;
    assert!(!t.server.consent_remembered(&s, &t.begin(&p).await).await);

    // Denying: access_denied back to the client, with state and iss.
    let location = t
        .server
        .decide(&s, &r, ConsentDecision::Deny, &ctx())
        .await
        .unwrap_err();
    let q = redirect_error(&location);
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "xyz state");
    assert_eq!(q["iss"], ISSUER);
}

#[tokio::test]
async fn device_flow_pending_slow_down_approve_deny_expire() {
    let t = OAuthApp::start().await;
    let hal = t.user("hal@acme.test", OrgRole::Owner, &[]).await;
    let s = t.login("hal@acme.test").await;
    let start = |scope: &'static str| {
        let server = t.server.clone();
        async move {
            server
                .device_authorization(Some(CLI), Some(scope), Some(&dev_resource()), &ctx())
                .await
                .unwrap()
        }
    };
    let poll = |device_code: String| {
        let server = t.server.clone();
        async move {
            let f = TokenParams {
                grant_type: Some(DEVICE_GRANT.into()),
                client_id: Some(CLI.into()),
                device_code: Some(device_code),
                ..TokenParams::default()
            };
            server.token(&f, &ctx()).await
        }
    };

    let d = start("mcp:run").await;
    assert!(d.device_code.starts_with("assay_dc_"));
    assert_eq!(d.user_code.len(), 9);
    assert_eq!(&d.user_code[4..5], "-");
    assert_eq!(d.verification_uri, format!("{ISSUER}/oauth/device/verify"));
    assert_eq!(
        d.verification_uri_complete,
        format!("{ISSUER}/oauth/device/verify?user_code={}", d.user_code)
    );
    assert_eq!((d.expires_in, d.interval), (600, 5));

    assert_grant_error(poll(d.device_code.clone()).await, "authorization_pending");
    let e = assert_grant_error(poll(d.device_code.clone()).await, "slow_down");
    assert_eq!(
        e.description,
        "polling too fast: wait at least 10 seconds between requests"
    );
    t.app.clock.advance(Duration::from_secs(6));
    // The interval grew to 10 s and stays so.
    assert_grant_error(poll(d.device_code.clone()).await, "slow_down");

    let view = t
        .server
        .device_request(&d.user_code.to_lowercase().replace('-', " "))
        .await
        .unwrap();
    assert_eq!(view.client_id, CLI);
    assert_eq!(view.client_name, "Assay CLI");
    assert_eq!(view.scope, McpScope::Run);
    assert_eq!(view.resource, dev_resource());
    assert!(t.server.device_request("BCDF-GHJK").await.is_none());
    assert!(t.server.device_request("not a code").await.is_none());

    t.server
        .device_decide(
            &s,
            &d.user_code,
            ConsentDecision::Approve {
                scope: McpScope::Run,
            },
            &ctx(),
        )
        .await
        .unwrap();
    assert!(t.server.device_request(&d.user_code).await.is_none());
    t.app.clock.advance(Duration::from_secs(20));
    let tokens = poll(d.device_code.clone()).await.unwrap();
    assert_eq!(tokens.scope, "mcp:read mcp:run");
    let p = t.validate(&tokens.access_token).await.unwrap();
    assert_eq!((p.id, p.scope_cap), (hal.id, Some(Level::Run)));
    // The device code gives tokens once.
    assert_grant_error(poll(d.device_code.clone()).await, "invalid_grant");

    let denied = start("mcp:read").await;
    t.server
        .device_decide(&s, &denied.user_code, ConsentDecision::Deny, &ctx())
        .await
        .unwrap();
    assert_grant_error(poll(denied.device_code.clone()).await, "access_denied");

    let expired = start("mcp:read").await;
    t.app.clock.advance(Duration::from_secs(10 * 60 + 1));
    assert_grant_error(poll(expired.device_code.clone()).await, "expired_token");
    let e = t
        .server
        .device_decide(
            &s,
            &expired.user_code,
            ConsentDecision::Approve {
                scope: McpScope::Read,
            },
            &ctx(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.error, "invalid_grant");

    // Only the first-party client may use the device grant.
    let registered = t
        .server
        .register(
            &json!({"redirect_uris": ["https://app.example/cb"]}),
            &ctx(),
        )
        .await
        .unwrap();
    let e = t
        .server
        .device_authorization(registered["client_id"].as_str(), None, None, &ctx())
        .await
        .unwrap_err();
    assert_eq!((e.error, e.status), ("unauthorized_client", 400));

    let events = t.audit_all().await;
    assert_eq!(events_of(&events, "oauth.device.approved").len(), 1);
    assert_eq!(events_of(&events, "oauth.device.denied").len(), 1);
    assert_no_secrets(&events, &[&d.device_code, &tokens.access_token]);
}

#[tokio::test]
async fn dynamic_registration_is_public_only_rate_limited_and_expires_unused() {
    let t = OAuthApp::start_with(|c| {
        c.registrations_per_ip = RateLimit::new(3, Duration::from_secs(3600));
    })
    .await;
    let body = t
        .server
        .register(
            &json!({
                "client_name": "Claude Code",
                "redirect_uris": ["http://127.0.0.1/callback", "https://app.example/cb"],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "none",
            }),
            &ctx(),
        )
        .await
        .unwrap();
    let id = body["client_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("assay_client_"), "{id}");
    assert!(!id.starts_with("https://"));
    assert_eq!(body["token_endpoint_auth_method"], "none");
    assert_eq!(body["client_name"], "Claude Code");
    assert_eq!(body["response_types"], json!(["code"]));
    assert_eq!(
        body["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert!(body.get("client_secret").is_none());
    let stored = t.app.store.get_oauth_client(&id).await.unwrap().unwrap();
    assert_eq!(stored.kind, OAuthClientKind::Registered);

    let e = t
        .server
        .register(
            &json!({"redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": "client_secret_basic"}),
            &ctx(),
        )
        .await
        .unwrap_err();
    assert_eq!((e.error, e.status), ("invalid_client_metadata", 400));
    let e = t
        .server
        .register(&json!({"redirect_uris": ["javascript:alert(1)"]}), &ctx())
        .await
        .unwrap_err();
    assert_eq!(e.error, "invalid_redirect_uri");
    // The limit counts attempts: the fourth from this address is refused.
    let e = t
        .server
        .register(
            &json!({"redirect_uris": ["https://app.example/cb"]}),
            &ctx(),
        )
        .await
        .unwrap_err();
    assert_eq!((e.error, e.status), ("temporarily_unavailable", 429));
    assert!(
        e.retry_after_secs.is_some_and(|s| s > 3500 && s <= 3600),
        "{e:?}"
    );
    // Another address still may.
    let used = t
        .server
        .register(
            &json!({"redirect_uris": ["https://app.example/cb"]}),
            &ctx_from(Ipv4Addr::new(192, 0, 2, 99)),
        )
        .await
        .unwrap();
    let used = used["client_id"].as_str().unwrap().to_owned();

    // A registration that was used (consent given) survives the sweep; an unused one
    // is gone after 24 hours.
    t.user("ivy@acme.test", OrgRole::Owner, &[]).await;
    let s = t.login("ivy@acme.test").await;
    t.code(
        &s,
        &authorize(&used, "https://app.example/cb"),
        McpScope::Read,
    )
    .await;
    t.app.clock.advance(Duration::from_secs(24 * 3600 + 1));
    let page = t.rejection(&authorize(&id, "https://app.example/cb")).await;
    assert!(matches!(
        page,
        AuthorizeRejection::Page {
            error: "invalid_client",
            ..
        }
    ));
    assert!(t.plane().purge_oauth().await >= 1);
    assert!(t.app.store.get_oauth_client(&id).await.unwrap().is_none());
    assert!(t.app.store.get_oauth_client(&used).await.unwrap().is_some());
    assert!(t.app.store.get_oauth_client(CLI).await.unwrap().is_some());

    let events = t.app.audit(Uuid::nil()).await;
    let registered = events_of(&events, "oauth.client.registered");
    assert_eq!(registered.len(), 2);
    assert_eq!(
        registered[0].actor.credential_id.as_deref(),
        Some(id.as_str())
    );
}

/// A one-route HTTP/1.1 server on 127.0.0.1 serving JSON documents by path.
async fn document_server(
    documents: impl Fn(u16, &str) -> Option<Value> + Send + Sync + 'static,
) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let documents = Arc::new(documents);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let documents = documents.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request);
                let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let response = match documents(port, &path) {
                    Some(doc) => {
                        let body = doc.to_string();
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    }
                    None => {
                        "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            .into()
                    }
                };
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    port
}

#[tokio::test]
async fn metadata_document_clients_are_fetched_checked_and_audited() {
    let t = OAuthApp::start().await;
    let port = document_server(|port, path| match path {
        "/client.json" => Some(json!({
            "client_id": format!("http://127.0.0.1:{port}/client.json"),
            "client_name": "Doc Client",
            "redirect_uris": ["http://127.0.0.1/cb", "https://doc.example/cb"],
            "token_endpoint_auth_method": "none",
        })),
        "/mismatch.json" => Some(json!({
            "client_id": "https://elsewhere.example/client.json",
            "client_name": "Impostor",
            "redirect_uris": ["https://doc.example/cb"],
        })),
        _ => None,
    })
    .await;
    let client_id = format!("http://127.0.0.1:{port}/client.json");
    t.user("jo@acme.test", OrgRole::Owner, &[]).await;
    let s = t.login("jo@acme.test").await;

    let mut p = authorize(&client_id, "https://doc.example/cb");
    let r = t.begin(&p).await;
    assert_eq!(r.client.kind, OAuthClientKind::MetadataDocument);
    assert_eq!(r.client.name, "Doc Client");
    assert_eq!(r.client.client_id_host.as_deref(), Some("127.0.0.1"));
    assert_eq!(r.client.redirect_host, "doc.example");
    assert!(!r.client.localhost_only);
    p.redirect_uri = Some("https://doc.example/other".into());
    assert!(matches!(
        t.rejection(&p).await,
        AuthorizeRejection::Page {
            error: "invalid_request",
            ..
        }
    ));

    // The whole flow with the document client; its row exists for the grant.
    let p = authorize(&client_id, "http://127.0.0.1:4000/cb");
    let code = t.code(&s, &p, McpScope::Read).await;
    let mut exchange = code_exchange(&client_id, &code, VERIFIER);
    exchange.redirect_uri = Some("http://127.0.0.1:4000/cb".into());
    let tokens = t.server.token(&exchange, &ctx()).await.unwrap();
    assert_eq!(
        t.validate(&tokens.access_token)
            .await
            .unwrap()
            .credential_id,
        Some(client_id.clone())
    );
    let row = t
        .app
        .store
        .get_oauth_client(&client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.kind, OAuthClientKind::MetadataDocument);

    // A document whose client_id is not its URL is refused.
    let mismatch = format!("http://127.0.0.1:{port}/mismatch.json");
    match t
        .rejection(&authorize(&mismatch, "https://doc.example/cb"))
        .await
    {
        AuthorizeRejection::Page { error, description } => {
            assert_eq!(error, "invalid_client");
            assert!(
                description.contains("is not the URL it was fetched from"),
                "{description}"
            );
        }
        other => panic!("expected a page, got {other:?}"),
    }
    let missing = format!("http://127.0.0.1:{port}/missing.json");
    assert!(matches!(
        t.rejection(&authorize(&missing, "https://doc.example/cb"))
            .await,
        AuthorizeRejection::Page {
            error: "invalid_client",
            ..
        }
    ));

    // Link-local (cloud metadata) stays refused even with the relaxed policy: audited.
    let ssrf = "https://169.254.169.254/latest/meta-data.json";
    assert!(matches!(
        t.rejection(&authorize(ssrf, "https://doc.example/cb"))
            .await,
        AuthorizeRejection::Page {
            error: "invalid_client",
            ..
        }
    ));
    let events = t.app.audit(Uuid::nil()).await;
    let refused = events_of(&events, "oauth.cimd.refused");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].outcome, Outcome::Denied);
    assert_eq!(refused[0].actor.credential_id.as_deref(), Some(ssrf));
    assert!(
        refused[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("169.254.169.254")
    );
}

#[tokio::test]
async fn strict_policy_refuses_loopback_documents() {
    let t = OAuthApp::start_with(|c| c.cimd_policy = SsrfPolicy::strict()).await;
    // Plain http is not a metadata document URL at all under the strict policy.
    let page = t
        .rejection(&authorize(
            "http://127.0.0.1:9/client.json",
            "https://doc.example/cb",
        ))
        .await;
    assert_eq!(
        page,
        AuthorizeRejection::Page {
            error: "invalid_client",
            description: "unknown client_id".into()
        }
    );
    // https to loopback is a refused fetch, on the record.
    let client_id = "https://127.0.0.1/client.json";
    let page = t
        .rejection(&authorize(client_id, "https://doc.example/cb"))
        .await;
    assert!(matches!(
        page,
        AuthorizeRejection::Page {
            error: "invalid_client",
            ..
        }
    ));
    let events = t.app.audit(Uuid::nil()).await;
    assert_eq!(events_of(&events, "oauth.cimd.refused").len(), 1);
}

/// A dynamically registered (third-party) client redirecting to [`CLI_REDIRECT`].
async fn third_party_client(t: &OAuthApp) -> String {
    let body = t
        .server
        .register(&json!({"redirect_uris": [CLI_REDIRECT]}), &ctx())
        .await
        .unwrap();
    body["client_id"].as_str().unwrap().to_owned()
}

/// The claims of a JWT, read without verification (the plane verified it already).
fn jwt_claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn revocation_ends_grants_and_denies_access_tokens() {
    let t = OAuthApp::start().await;
    t.user("kim@acme.test", OrgRole::Owner, &[]).await;
    let s = t.login("kim@acme.test").await;
    // A third-party client: revoking a refresh token ends the whole grant (the CLI's
    // per-login sessions are in `cli_logins_end_one_session_at_a_time`).
    let client = third_party_client(&t).await;
    let client = client.as_str();
    let code = t
        .code(&s, &authorize(client, CLI_REDIRECT), McpScope::Run)
        .await;
    let tokens = t.exchange(client, &code).await.unwrap();

    // An access token: denied until it expires; the grant lives on.
    t.server
        .revoke(
            &tokens.access_token,
            Some("access_token"),
            Some(client),
            &ctx(),
        )
        .await
        .unwrap();
    assert_eq!(
        refusal_reason(t.validate(&tokens.access_token).await),
        jwt_reasons::REVOKED
    );
    let refreshed = t
        .refresh(client, tokens.refresh_token.as_deref().unwrap(), None)
        .await
        .unwrap();
    t.validate(&refreshed.access_token).await.unwrap();

    // A refresh token: the grant ends, with every token of it.
    let refresh = refreshed.refresh_token.clone().unwrap();
    t.server
        .revoke(&refresh, Some("refresh_token"), Some(client), &ctx())
        .await
        .unwrap();
    assert_eq!(
        refusal_reason(t.validate(&refreshed.access_token).await),
        jwt_reasons::GRANT_REVOKED
    );
    assert_grant_error(t.refresh(client, &refresh, None).await, "invalid_grant");

    // Unknown and malformed tokens: fine, nothing to say.
    for unknown in [
        "assay_rt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "a.b.c",
        "whatever",
    ] {
        t.server.revoke(unknown, None, None, &ctx()).await.unwrap();
    }
    assert_eq!(
        t.server
            .revoke("", None, None, &ctx())
            .await
            .unwrap_err()
            .error,
        "invalid_request"
    );
    let events = t.audit_all().await;
    let revoked = events_of(&events, "oauth.token.revoked");
    assert_eq!(revoked.len(), 2);
    assert!(revoked.iter().all(|e| e.org_id == t.app.t.acme.id));
    assert_no_secrets(&events, &[&tokens.access_token, &refresh]);

    // The denylist entry goes once the token could no longer be used anyway.
    t.app.clock.advance(Duration::from_secs(15 * 60));
    assert!(t.plane().purge_oauth().await >= 1);
}

/// Every `assay login` of a user shares one grant (one per user, client and resource),
/// but each is its own session (refresh-token family, claim `sid`): logging one out
/// leaves the others signed in, and a stale token of the signed-out login presented again
/// is refused without being taken for theft. Reuse within a live session and leaked
/// tokens still end the grant.
#[tokio::test]
async fn cli_logins_end_one_session_at_a_time() {
    let t = OAuthApp::start().await;
    let lee = t.user("lee@acme.test", OrgRole::Owner, &[]).await;
    let s = t.login("lee@acme.test").await;
    // Login A (a laptop): the browser flow. Login B (a desktop): the device flow.
    let code = t
        .code(&s, &authorize(CLI, CLI_REDIRECT), McpScope::Run)
        .await;
    let a = t.exchange(CLI, &code).await.unwrap();
    let d = t
        .server
        .device_authorization(Some(CLI), Some("mcp:run"), Some(&dev_resource()), &ctx())
        .await
        .unwrap();
    t.server
        .device_decide(
            &s,
            &d.user_code,
            ConsentDecision::Approve {
                scope: McpScope::Run,
            },
            &ctx(),
        )
        .await
        .unwrap();
    let device_poll = TokenParams {
        grant_type: Some(DEVICE_GRANT.into()),
        client_id: Some(CLI.into()),
        device_code: Some(d.device_code.clone()),
        ..TokenParams::default()
    };
    let b = t.server.token(&device_poll, &ctx()).await.unwrap();

    let (claims_a, claims_b) = (jwt_claims(&a.access_token), jwt_claims(&b.access_token));
    assert_eq!(
        claims_a["gid"], claims_b["gid"],
        "one grant for both logins"
    );
    let gid = Uuid::parse_str(claims_a["gid"].as_str().unwrap()).unwrap();
    let sid_a = Uuid::parse_str(claims_a["sid"].as_str().unwrap()).unwrap();
    let sid_b = Uuid::parse_str(claims_b["sid"].as_str().unwrap()).unwrap();
    assert_ne!(sid_a, sid_b, "one session per login");
    // A rotation stays in its login's session.
    let a2 = t
        .refresh(CLI, a.refresh_token.as_deref().unwrap(), None)
        .await
        .unwrap();
    assert_eq!(jwt_claims(&a2.access_token)["sid"], sid_a.to_string());
    for token in [&a.access_token, &a2.access_token, &b.access_token] {
        t.validate(token).await.unwrap();
    }

    // `assay logout` on A revokes A's refresh token: A's session ends, on this replica
    // at once (no wait for the liveness cache).
    let a2_refresh = a2.refresh_token.clone().unwrap();
    t.server
        .revoke(&a2_refresh, Some("refresh_token"), Some(CLI), &ctx())
        .await
        .unwrap();
    for token in [&a.access_token, &a2.access_token] {
        assert_eq!(
            refusal_reason(t.validate(token).await),
            jwt_reasons::SESSION_ENDED
        );
    }
    // The revoked token presented again is refused, and is not taken for reuse.
    let e = assert_grant_error(t.refresh(CLI, &a2_refresh, None).await, "invalid_grant");
    assert_eq!(
        e.description,
        "the refresh token is invalid, expired, revoked or already used"
    );
    // B is still signed in, and still refreshes in its own session; the grant is live.
    t.validate(&b.access_token).await.unwrap();
    let b2 = t
        .refresh(CLI, b.refresh_token.as_deref().unwrap(), None)
        .await
        .unwrap();
    assert_eq!(jwt_claims(&b2.access_token)["sid"], sid_b.to_string());
    t.validate(&b2.access_token).await.unwrap();
    let grant = t.app.store.get_oauth_grant(gid).await.unwrap().unwrap();
    assert_eq!(grant.revoked_at, None);
    // Logging out twice ends nothing more and records nothing more.
    t.server
        .revoke(&a2_refresh, None, None, &ctx())
        .await
        .unwrap();

    let events = t.audit_all().await;
    let revoked = events_of(&events, "oauth.token.revoked");
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    let ended = revoked[0];
    assert_eq!(ended.org_id, t.app.t.acme.id);
    assert_eq!(ended.outcome, Outcome::Success);
    assert_eq!(ended.actor.id, lee.id);
    assert_eq!(ended.actor.credential_id.as_deref(), Some(CLI));
    assert_eq!(
        ended.resources,
        [format!("grant:{gid}"), format!("refresh-family:{sid_a}")]
    );
    assert_eq!(
        ended.reason.as_deref(),
        Some(
            "refresh token: the login session ended with its refresh and access tokens; \
             the grant and the user's other sessions are kept"
        )
    );
    assert!(events_of(&events, "oauth.refresh.reuse_detected").is_empty());
    assert_no_secrets(
        &events,
        &[&a2_refresh, &a2.access_token, &b2.access_token, &code],
    );

    // A token A rotated away before logging out, presented again (a stale copy, say an
    // `assay mcp serve` still running): A's session has already ended, so it is refused
    // like a revoked token and is not theft. B stays signed in and the grant stays live.
    let a1_refresh = a.refresh_token.clone().unwrap();
    for _ in 0..2 {
        let e = assert_grant_error(t.refresh(CLI, &a1_refresh, None).await, "invalid_grant");
        assert_eq!(e.status, 400);
        assert_eq!(
            e.description,
            "the refresh token is invalid, expired, revoked or already used"
        );
    }
    t.validate(&b2.access_token).await.unwrap();
    let grant = t.app.store.get_oauth_grant(gid).await.unwrap().unwrap();
    assert_eq!(grant.revoked_at, None);
    let events = t.audit_all().await;
    assert!(events_of(&events, "oauth.refresh.reuse_detected").is_empty());
    assert_eq!(events_of(&events, "oauth.token.revoked").len(), 1);
    let b3 = t
        .refresh(CLI, b2.refresh_token.as_deref().unwrap(), None)
        .await
        .unwrap();
    t.validate(&b3.access_token).await.unwrap();

    // A token B rotated away, presented again while B's session lives, is reuse: the
    // whole grant ends, B too.
    assert_grant_error(
        t.refresh(CLI, b.refresh_token.as_deref().unwrap(), None)
            .await,
        "invalid_grant",
    );
    for token in [&b2.access_token, &b3.access_token] {
        assert_eq!(
            refusal_reason(t.validate(token).await),
            jwt_reasons::GRANT_REVOKED
        );
    }
    assert_grant_error(
        t.refresh(CLI, b3.refresh_token.as_deref().unwrap(), None)
            .await,
        "invalid_grant",
    );
    let events = t.audit_all().await;
    let reuse = events_of(&events, "oauth.refresh.reuse_detected");
    assert_eq!(reuse.len(), 1, "{reuse:?}");
    assert_eq!(
        reuse[0].resources,
        [format!("grant:{gid}"), format!("refresh-family:{sid_b}")]
    );

    // A CLI refresh token presented by another client has leaked: its grant ends.
    let code = t
        .code(&s, &authorize(CLI, CLI_REDIRECT), McpScope::Run)
        .await;
    let c = t.exchange(CLI, &code).await.unwrap();
    let c_refresh = c.refresh_token.clone().unwrap();
    t.server
        .revoke(&c_refresh, None, Some("someone-else"), &ctx())
        .await
        .unwrap();
    assert_eq!(
        refusal_reason(t.validate(&c.access_token).await),
        jwt_reasons::GRANT_REVOKED
    );
    let events = t.audit_all().await;
    let leaked = events_of(&events, "oauth.token.revoked");
    assert_eq!(leaked.len(), 2);
    assert!(leaked.iter().any(|e| e.reason.as_deref()
        == Some(
            "refresh token presented by another client_id: the grant and all its tokens are revoked"
        )));
}

/// An access token acts only within an organization: where the request addresses none
/// (a route whose `{org}` could not be read) it is refused and audited into the unscoped
/// chain; only `authenticate_orgless` (`GET /v1/me`) takes it as its user in no
/// organization, reaching nothing organization-scoped.
#[tokio::test]
async fn an_access_token_needs_an_organization_except_for_the_callers_own_route() {
    let t = OAuthApp::start().await;
    let lee = t.user("lee@acme.test", OrgRole::Owner, &[]).await;
    let s = t.login("lee@acme.test").await;
    let mut p = authorize(CLI, CLI_REDIRECT);
    p.resource = Some(ISSUER.into());
    let code = t.code(&s, &p, McpScope::Run).await;
    let tokens = t.exchange(CLI, &code).await.unwrap();
    let auth = t.plane().authenticator();
    let client = ClientInfo::default();
    let (acme, dev) = (t.app.t.acme.id, t.app.t.dev.id);

    assert_eq!(
        refusal_reason(auth.authenticate(&tokens.access_token, &client, None).await),
        jwt_reasons::NO_ORGANIZATION
    );
    assert_eq!(
        jwt_reasons::NO_ORGANIZATION,
        "an OAuth access token is valid only at an organization's endpoints"
    );
    let within = auth
        .authenticate(&tokens.access_token, &client, Some("acme"))
        .await
        .unwrap();
    assert_eq!(within.org_id, acme);
    assert_eq!(within.level_in(acme, dev), Some(Level::Run));
    let orgless = auth
        .authenticate_orgless(&tokens.access_token, &client)
        .await
        .unwrap();
    assert_eq!(orgless.id, lee.id);
    assert_eq!(orgless.org_id, Uuid::nil());
    assert_eq!(orgless.auth_method, AuthMethod::CliLogin);
    assert_eq!(orgless.scope_cap, Some(Level::Run));
    assert_eq!(orgless.level_in(acme, dev), None);

    let failed = events_of(&t.app.audit(Uuid::nil()).await, "auth.failed")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].outcome, Outcome::Denied);
    assert_eq!(
        failed[0].reason.as_deref(),
        Some(jwt_reasons::NO_ORGANIZATION)
    );
    assert_eq!(failed[0].actor.auth_method, AuthMethod::CliLogin);
    assert_eq!(failed[0].actor.credential_id.as_deref(), Some(CLI));
    assert!(events_of(&t.app.audit(acme).await, "auth.failed").is_empty());
}

#[tokio::test]
async fn logins_fail_generically_and_are_rate_limited() {
    let t = OAuthApp::start_with(|c| {
        c.login_failures_per_email = RateLimit::new(2, Duration::from_secs(900));
        c.login_failures_per_ip = RateLimit::new(4, Duration::from_secs(900));
    })
    .await;
    let lee = t.user("lee@acme.test", OrgRole::Owner, &[]).await;
    let mo = t.user("mo@acme.test", OrgRole::Member, &[]).await;
    let login = |email: &'static str, password: &'static str, ip: u8| {
        let server = t.server.clone();
        async move {
            server
                .login_password(email, password, &ctx_from(Ipv4Addr::new(192, 0, 2, ip)))
                .await
        }
    };
    assert_eq!(
        login("lee@acme.test", "wrong password!", 1)
            .await
            .unwrap_err(),
        LoginError::InvalidCredentials
    );
    assert_eq!(
        login("nobody@acme.test", PASSWORD, 1).await.unwrap_err(),
        LoginError::InvalidCredentials
    );
    assert_eq!(
        login("lee@acme.test", "", 1).await.unwrap_err(),
        LoginError::InvalidCredentials
    );
    // Two failures for lee: even the right password is refused now, before checking.
    match login("lee@acme.test", PASSWORD, 2).await.unwrap_err() {
        LoginError::RateLimited { retry_after_secs } => {
            assert!((1..=900).contains(&retry_after_secs))
        }
        other => panic!("expected a rate limit, got {other:?}"),
    }
    // Four failures from .1: mo's right password from there is refused too.
    assert_eq!(
        login("mo@acme.test", "nope nope nope", 1)
            .await
            .unwrap_err(),
        LoginError::InvalidCredentials
    );
    assert!(matches!(
        login("mo@acme.test", PASSWORD, 1).await.unwrap_err(),
        LoginError::RateLimited { .. }
    ));
    // From elsewhere, mo is fine; the success does not reset .1.
    let s = login("mo@acme.test", PASSWORD, 3).await.unwrap();
    assert_eq!(s.user_id, mo.id);
    assert!(matches!(
        login("mo@acme.test", PASSWORD, 1).await.unwrap_err(),
        LoginError::RateLimited { .. }
    ));
    // After the window, lee logs in again.
    t.app.clock.advance(Duration::from_secs(901));
    assert_eq!(
        login("lee@acme.test", PASSWORD, 1).await.unwrap().user_id,
        lee.id
    );
    assert_eq!(LoginError::GENERIC_MESSAGE, "Incorrect email or password.");

    // A disabled account: the same generic failure with the right password.
    let mut disabled = mo.clone();
    disabled.disabled = true;
    t.app.store.update_user(&disabled).await.unwrap();
    assert_eq!(
        login("mo@acme.test", PASSWORD, 5).await.unwrap_err(),
        LoginError::InvalidCredentials
    );

    let events = t.audit_all().await;
    let failed = events_of(&events, "oauth.login.failed");
    assert_eq!(failed.len(), 8, "{failed:?}");
    assert!(failed.iter().all(|e| e.outcome == Outcome::Denied));
    let reasons: Vec<&str> = failed.iter().filter_map(|e| e.reason.as_deref()).collect();
    for reason in [
        "wrong password",
        "no account has this email",
        "too many failed logins",
        "the account is disabled",
    ] {
        assert!(reasons.contains(&reason), "{reasons:?}");
    }
    // The unknown account's attempt is in the unscoped chain, without its email.
    let unscoped = t.app.audit(Uuid::nil()).await;
    let unknown = events_of(&unscoped, "oauth.login.failed");
    assert_eq!(unknown.len(), 1);
    assert_no_secrets(
        &events,
        &[
            PASSWORD,
            "wrong password!",
            "nope nope nope",
            "nobody@acme.test",
        ],
    );
    assert_eq!(events_of(&events, "oauth.login.succeeded").len(), 2);
}

#[tokio::test]
async fn browser_sessions_are_stored_hashed_and_end() {
    let t = OAuthApp::start().await;
    let ned = t.user("ned@acme.test", OrgRole::Owner, &[]).await;
    let s = t.login("ned@acme.test").await;
    let secret = t.server.session_secret(&s).to_owned();
    assert!(secret.starts_with("assay_bs_"));
    assert!(!format!("{s:?}").contains(&secret));
    let found = t.server.session(&secret).await.unwrap();
    assert_eq!(
        (found.user_id, found.email.as_str()),
        (ned.id, "ned@acme.test")
    );
    assert_eq!(found.display_name, "User ned@acme.test");
    // Only the hash is stored.
    let now = time::OffsetDateTime::now_utc();
    assert!(
        t.app
            .store
            .find_browser_session(&secret, now)
            .await
            .unwrap()
            .is_none()
    );
    let hash = SecretHash::of(&secret).to_hex();
    assert!(
        t.app
            .store
            .find_browser_session(&hash, now)
            .await
            .unwrap()
            .is_some()
    );
    assert!(t.server.session("assay_bs_nope").await.is_none());

    // A restart (another plane on the same database) still knows the session.
    let mut app = t.app;
    app.reopen().await;
    let server = app.plane.oauth();
    assert!(server.session(&secret).await.is_some());
    server.end_session(&secret).await;
    assert!(server.session(&secret).await.is_none());

    let s2 = server
        .login_password("ned@acme.test", PASSWORD, &ctx())
        .await
        .unwrap();
    app.clock.advance(Duration::from_secs(8 * 3600 + 1));
    assert!(server.session(s2.secret()).await.is_none());
    assert!(app.plane.purge_oauth().await >= 1);
}

#[tokio::test]
async fn disabling_or_removing_a_member_ends_their_grants() {
    let t = OAuthApp::start().await;
    let dev = t.app.t.dev.id;
    let oz = t
        .user("oz@acme.test", OrgRole::Member, &[(dev, Level::Run)])
        .await;
    let pat = t
        .user("pat@acme.test", OrgRole::Member, &[(dev, Level::Run)])
        .await;
    let mut tokens = Vec::new();
    let mut sessions = Vec::new();
    for email in ["oz@acme.test", "pat@acme.test"] {
        let s = t.login(email).await;
        let code = t
            .code(&s, &authorize(CLI, CLI_REDIRECT), McpScope::Run)
            .await;
        let issued = t.exchange(CLI, &code).await.unwrap();
        t.validate(&issued.access_token).await.unwrap();
        tokens.push(issued);
        sessions.push(s);
    }

    let admin = t.app.admin();
    t.plane()
        .update_member(
            &admin,
            "acme",
            &oz.id.to_string(),
            &MemberUpdate {
                disabled: Some(true),
                ..MemberUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        refusal_reason(t.validate(&tokens[0].access_token).await),
        jwt_reasons::GRANT_REVOKED
    );
    assert_grant_error(
        t.refresh(CLI, tokens[0].refresh_token.as_deref().unwrap(), None)
            .await,
        "invalid_grant",
    );
    assert!(t.server.session(sessions[0].secret()).await.is_none());
    // Pat is untouched.
    t.validate(&tokens[1].access_token).await.unwrap();

    t.plane()
        .remove_member(&admin, "acme", &pat.id.to_string())
        .await
        .unwrap();
    assert_eq!(
        refusal_reason(t.validate(&tokens[1].access_token).await),
        jwt_reasons::GRANT_REVOKED
    );
    assert!(
        t.app
            .store
            .list_oauth_grants(pat.id)
            .await
            .unwrap()
            .is_empty()
    );

    let events = t.app.audit(t.app.t.acme.id).await;
    let disabled = events_of(&events, "member.disabled");
    assert_eq!(disabled.len(), 1);
    assert!(
        disabled[0]
            .resources
            .contains(&"oauth-grants-revoked:1".to_string())
    );
    let removed = events_of(&events, "member.removed");
    assert_eq!(removed.len(), 1);
    assert_eq!(
        removed[0].resources,
        [
            format!("user:{}", pat.id),
            "oauth-grants-revoked:1".to_string()
        ]
    );
}

/// A CLI login of `email` (scope `mcp:run`), its first access token validated once so
/// that its principal is cached.
async fn cached_cli_login(t: &OAuthApp, email: &str) -> TokenResponse {
    let s = t.login(email).await;
    let code = t
        .code(&s, &authorize(CLI, CLI_REDIRECT), McpScope::Run)
        .await;
    let tokens = t.exchange(CLI, &code).await.unwrap();
    t.validate(&tokens.access_token).await.unwrap();
    tokens
}

/// The principal of an accepted access token is cached (an hour here, so that only an
/// immediate forget can explain a change), and everything that can change it through
/// this plane takes effect on the very next request; a refusal is never cached.
#[tokio::test]
async fn cached_access_token_principals_follow_every_change_at_once() {
    let t = OAuthApp::start_with(|o| o.grant_check_ttl = Duration::from_secs(3600)).await;
    let (acme, dev) = (t.app.t.acme.id, t.app.t.dev.id);
    let admin = t.app.admin();
    let member = |role| (role, vec![(dev, Level::Run)]);
    let grant_of = |tokens: &TokenResponse| {
        Uuid::parse_str(jwt_claims(&tokens.access_token)["gid"].as_str().unwrap()).unwrap()
    };

    // The access token denied.
    let (role, grants) = member(OrgRole::Member);
    t.user("a@acme.test", role, &grants).await;
    let a = cached_cli_login(&t, "a@acme.test").await;
    t.server
        .revoke(&a.access_token, Some("access_token"), Some(CLI), &ctx())
        .await
        .unwrap();
    assert_eq!(
        refusal_reason(t.validate(&a.access_token).await),
        jwt_reasons::REVOKED
    );

    // The grant revoked by its user (`DELETE /v1/organizations/{org}/me/grants/{id}`).
    t.user("b@acme.test", role, &grants).await;
    let b = cached_cli_login(&t, "b@acme.test").await;
    let as_b = Actor::new(
        t.validate(&b.access_token).await.unwrap(),
        ClientInfo::default(),
    );
    t.plane()
        .revoke_my_grant(&as_b, "acme", grant_of(&b))
        .await
        .unwrap();
    assert_eq!(
        refusal_reason(t.validate(&b.access_token).await),
        jwt_reasons::GRANT_REVOKED
    );

    // The sign-in session ended (`assay logout` revokes its refresh token).
    t.user("c@acme.test", role, &grants).await;
    let c = cached_cli_login(&t, "c@acme.test").await;
    t.server
        .revoke(
            c.refresh_token.as_deref().unwrap(),
            Some("refresh_token"),
            Some(CLI),
            &ctx(),
        )
        .await
        .unwrap();
    assert_eq!(
        refusal_reason(t.validate(&c.access_token).await),
        jwt_reasons::SESSION_ENDED
    );

    // The user disabled.
    let d_user = t.user("d@acme.test", role, &grants).await;
    let d = cached_cli_login(&t, "d@acme.test").await;
    let disable = MemberUpdate {
        disabled: Some(true),
        ..MemberUpdate::default()
    };
    t.plane()
        .update_member(&admin, "acme", &d_user.id.to_string(), &disable)
        .await
        .unwrap();
    assert_eq!(
        refusal_reason(t.validate(&d.access_token).await),
        jwt_reasons::GRANT_REVOKED
    );

    // The membership removed.
    let e_user = t.user("e@acme.test", role, &grants).await;
    let e = cached_cli_login(&t, "e@acme.test").await;
    t.plane()
        .remove_member(&admin, "acme", &e_user.id.to_string())
        .await
        .unwrap();
    assert_eq!(
        refusal_reason(t.validate(&e.access_token).await),
        jwt_reasons::GRANT_REVOKED
    );

    // The member's environment grant and role changed: the level follows at once.
    let f_user = t.user("f@acme.test", role, &grants).await;
    let f = cached_cli_login(&t, "f@acme.test").await;
    let level = |p: Principal| p.level_in(acme, dev);
    assert_eq!(
        level(t.validate(&f.access_token).await.unwrap()),
        Some(Level::Run)
    );
    let f_ref = f_user.id.to_string();
    for (update, expected) in [
        (
            MemberUpdate {
                grants: Some(BTreeMap::from([("dev".to_string(), Level::Read)])),
                ..MemberUpdate::default()
            },
            Some(Level::Read),
        ),
        (
            MemberUpdate {
                grants: Some(BTreeMap::new()),
                ..MemberUpdate::default()
            },
            None,
        ),
        (
            MemberUpdate {
                role: Some(OrgRole::Admin),
                ..MemberUpdate::default()
            },
            // Admin on every environment, capped by the token's scope.
            Some(Level::Run),
        ),
    ] {
        t.plane()
            .update_member(&admin, "acme", &f_ref, &update)
            .await
            .unwrap();
        assert_eq!(level(t.validate(&f.access_token).await.unwrap()), expected);
    }

    // What changes in the store behind this plane's back (another replica, say) is seen
    // within the TTL, not before: the principal is served from the cache.
    let mut f_changed = t.app.store.find_user(f_user.id).await.unwrap().unwrap();
    f_changed.display_name = "Renamed elsewhere".into();
    t.app.store.update_user(&f_changed).await.unwrap();
    let cached = t.validate(&f.access_token).await.unwrap();
    assert_eq!(cached.display_name, "User f@acme.test");
    assert_eq!(level(cached), Some(Level::Run));

    // A refusal is never cached: the same token is accepted once the store says so.
    let mut g_user = t.user("g@acme.test", role, &grants).await;
    let s = t.login("g@acme.test").await;
    let code = t
        .code(&s, &authorize(CLI, CLI_REDIRECT), McpScope::Run)
        .await;
    let g = t.exchange(CLI, &code).await.unwrap();
    g_user.disabled = true;
    t.app.store.update_user(&g_user).await.unwrap();
    assert_eq!(
        refusal_reason(t.validate(&g.access_token).await),
        jwt_reasons::DISABLED_USER
    );
    g_user.disabled = false;
    t.app.store.update_user(&g_user).await.unwrap();
    assert_eq!(
        level(t.validate(&g.access_token).await.unwrap()),
        Some(Level::Run)
    );
}

#[tokio::test]
async fn token_requests_are_checked_before_any_grant() {
    let t = OAuthApp::start_with(|c| {
        c.token_requests_per_ip = RateLimit::new(5, Duration::from_secs(60));
    })
    .await;
    let cases: [(TokenParams, &str); 4] = [
        (TokenParams::default(), "invalid_request"),
        (
            TokenParams {
                grant_type: Some("password".into()),
                ..TokenParams::default()
            },
            "unsupported_grant_type",
        ),
        (
            TokenParams {
                grant_type: Some("authorization_code".into()),
                ..TokenParams::default()
            },
            "invalid_request",
        ),
        (
            TokenParams::from_pairs([
                ("grant_type", "authorization_code"),
                ("client_id", CLI),
                ("code", "a"),
                ("code", "b"),
            ]),
            "invalid_request",
        ),
    ];
    for (params, error) in cases {
        let e = t.server.token(&params, &ctx()).await.unwrap_err();
        assert_eq!((e.error, e.status), (error, 400), "{params:?}");
    }
    let garbage = TokenParams {
        grant_type: Some("authorization_code".into()),
        client_id: Some(CLI.into()),
        code: Some("assay_ac_garbage".into()),
        code_verifier: Some(VERIFIER.into()),
        ..TokenParams::default()
    };
    assert_grant_error(t.server.token(&garbage, &ctx()).await, "invalid_grant");
    let e = t.server.token(&garbage, &ctx()).await.unwrap_err();
    assert_eq!((e.error, e.status), ("temporarily_unavailable", 429));
    assert!(e.retry_after_secs.is_some_and(|s| (1..=60).contains(&s)));
}
