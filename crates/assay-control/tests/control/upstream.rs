//! Upstream sign-in (`LocalControlPlane::upstream_logins`) against the in-test identity
//! provider (`assay_auth::upstream::fake_idp`: a real HTTP server issuing real signed
//! id_tokens, and GitHub's web flow) over the real SQLite store: consent before leaving,
//! just-in-time provisioning and invite-only, verified emails only, single-use and
//! browser-bound pending logins, and the code that comes out at the end redeemed for a
//! token of the right user and scope.

use crate::harness::*;
use assay_auth::pkce::s256_challenge;
use assay_auth::scope::McpScope;
use assay_auth::upstream::fake_idp::{FakeIdp, FakeIdpConfig, FakeUser};
use assay_auth::upstream::{
    CallbackParams, UpstreamConfig, UpstreamError, UpstreamOptions, UpstreamProvider,
};
use assay_control::ControlPlaneConfig;
use assay_control::oauth::{
    AuthorizeParams, AuthorizeRejection, AuthorizeRequest, ConsentDecision, OAuthConfig,
    RequestContext, TokenParams,
};
use assay_control::upstream_login::{UpstreamLoginError, UpstreamLogins};
use assay_core::Level;
use assay_core::actor::ClientInfo;
use assay_core::audit::{AuditEvent, Outcome};
use assay_core::identity::{Membership, OrgRole, User};
use assay_core::ports::Store;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

const ISSUER: &str = "https://assay.test";
const CLI: &str = "assay-cli";
const CLI_REDIRECT: &str = "http://127.0.0.1:53682/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// The value only the user's browser holds (the pages' CSRF cookie in the server).
const BROWSER: &str = "the-browser-csrf-token-0123456789abcdefghij";
const SECRET_VAR: &str = "UPSTREAM_TEST_SECRET";

fn dev_resource() -> String {
    format!("{ISSUER}/organizations/acme/environments/dev/mcp")
}

fn callback(id: &str) -> String {
    format!("{ISSUER}/oauth/upstream/{id}/callback")
}

fn ctx() -> RequestContext {
    RequestContext {
        ip: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 20))),
        user_agent: Some("upstream-test".into()),
        request_id: Some("req-up".into()),
    }
}

/// A provider entry of the server configuration, pointing at `fake`.
fn oidc(fake: &FakeIdp, id: &str, provisioning: Value) -> Value {
    json!({
        "id": id, "kind": "oidc", "display_name": format!("SSO {id}"),
        "issuer": fake.issuer(), "client_id": fake.config().client_id,
        "client_secret_env": SECRET_VAR, "provisioning": provisioning,
    })
}

fn github(fake: &FakeIdp, id: &str, provisioning: Value) -> Value {
    json!({
        "id": id, "kind": "github", "display_name": "GitHub",
        "github_url": fake.base_url().as_str(), "github_api_url": fake.base_url().as_str(),
        "client_id": fake.config().client_id,
        "client_secret_env": SECRET_VAR, "provisioning": provisioning,
    })
}

fn jit() -> Value {
    json!({"mode": "jit", "organization": "acme", "environment_levels": {"dev": "run"}})
}

fn invite_only() -> Value {
    json!({"mode": "invite_only"})
}

async fn fake_idp(user: FakeUser) -> FakeIdp {
    FakeIdp::start(FakeIdpConfig {
        redirect_uris: ["corp", "corp2", "gh"].map(callback).to_vec(),
        user,
        ..FakeIdpConfig::default()
    })
    .await
}

struct Sso {
    app: TestApp,
    fake: FakeIdp,
    logins: Arc<UpstreamLogins>,
}

impl Sso {
    async fn start(user: FakeUser, providers: impl FnOnce(&FakeIdp) -> Vec<Value>) -> Self {
        let fake = fake_idp(user).await;
        let app = TestApp::start_with(ControlPlaneConfig {
            public_url: Some(url::Url::parse(&format!("{ISSUER}/")).unwrap()),
            oauth: OAuthConfig::default(),
            ..config(1)
        })
        .await;
        let logins = app
            .plane
            .upstream_logins(providers_from(&fake, providers(&fake)))
            .await
            .unwrap();
        Self { app, fake, logins }
    }

    async fn request(&self, scope: &str) -> AuthorizeRequest {
        let p = AuthorizeParams {
            response_type: Some("code".into()),
            client_id: Some(CLI.into()),
            redirect_uri: Some(CLI_REDIRECT.into()),
            scope: Some(scope.into()),
            state: Some("client state".into()),
            code_challenge: Some(s256_challenge(VERIFIER)),
            code_challenge_method: Some("S256".into()),
            resource: Some(dev_resource()),
            repeated: Vec::new(),
        };
        self.app
            .plane
            .oauth()
            .begin_authorization(&p, &ctx())
            .await
            .unwrap()
    }

    /// Consent on Assay's page (`approve`), then off to the provider, which signs the
    /// user in and redirects back: the callback's parameters.
    async fn to_provider_and_back(
        &self,
        provider: &str,
        request: &AuthorizeRequest,
        approve: McpScope,
    ) -> CallbackParams {
        let url = self
            .logins
            .begin(
                provider,
                request,
                ConsentDecision::Approve { scope: approve },
                BROWSER,
            )
            .await
            .unwrap();
        let back = self.fake.follow_authorization(&url).await.unwrap();
        let expected = callback(provider);
        assert_eq!(back.as_str().split('?').next(), Some(expected.as_str()));
        let q: BTreeMap<String, String> = back.query_pairs().into_owned().collect();
        CallbackParams {
            code: q.get("code").cloned(),
            state: q.get("state").cloned(),
            error: q.get("error").cloned(),
            error_description: q.get("error_description").cloned(),
            iss: q.get("iss").cloned(),
        }
    }

    async fn redeem(&self, location: &str) -> assay_control::oauth::TokenResponse {
        let q = query(location);
        assert_eq!(q.get("iss").map(String::as_str), Some(ISSUER));
        assert_eq!(q.get("state").map(String::as_str), Some("client state"));
        let code = q.get("code").expect("a code in the redirect");
        let f = TokenParams {
            grant_type: Some("authorization_code".into()),
            client_id: Some(CLI.into()),
            code: Some(code.clone()),
            redirect_uri: Some(CLI_REDIRECT.into()),
            code_verifier: Some(VERIFIER.into()),
            ..TokenParams::default()
        };
        self.app.plane.oauth().token(&f, &ctx()).await.unwrap()
    }

    async fn events(&self, action: &str) -> Vec<AuditEvent> {
        let mut events = self.app.audit(self.app.t.acme.id).await;
        events.extend(self.app.audit(Uuid::nil()).await);
        events.retain(|e| e.action == action);
        events
    }

    async fn user(&self, email: &str) -> Option<User> {
        self.app.store.find_user_by_email(email).await.unwrap()
    }

    async fn existing(&self, email: &str, disabled: bool) -> User {
        let user = User {
            id: Uuid::now_v7(),
            email: email.into(),
            display_name: "Existing Ada".into(),
            password_hash: None,
            disabled,
            created_at: time::OffsetDateTime::now_utc(),
        };
        self.app.store.insert_user(&user).await.unwrap();
        self.app
            .store
            .upsert_membership(&Membership {
                org_id: self.app.t.acme.id,
                user_id: user.id,
                role: OrgRole::Member,
                grants: [(self.app.t.dev.id, Level::Write)].into(),
            })
            .await
            .unwrap();
        user
    }
}

fn providers_from(fake: &FakeIdp, entries: Vec<Value>) -> Vec<UpstreamProvider> {
    let config: UpstreamConfig = serde_json::from_value(Value::Array(entries)).unwrap();
    let secret = fake.config().client_secret.clone();
    let settings = config
        .resolve(&|name| (name == SECRET_VAR).then(|| secret.clone()))
        .unwrap();
    UpstreamProvider::all(settings, &UpstreamOptions::default()).unwrap()
}

fn query(location: &str) -> BTreeMap<String, String> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

fn unverified() -> FakeUser {
    FakeUser {
        email_verified: false,
        ..FakeUser::default()
    }
}

#[tokio::test]
async fn jit_provisioning_creates_the_account_and_the_code_carries_the_consent() {
    let t = Sso::start(FakeUser::default(), |f| vec![oidc(f, "corp", jit())]).await;
    assert!(t.user("ada@example.com").await.is_none());
    assert_eq!(
        t.logins.callback_url("corp").as_deref(),
        Some("https://assay.test/oauth/upstream/corp/callback")
    );
    // Where the consent page may send the browser (its form-action).
    assert_eq!(
        t.logins.authorization_origin("corp").await.unwrap(),
        t.fake.base_url().origin().ascii_serialization()
    );

    // The client asks for mcp:run; the user grants only mcp:read before leaving.
    let request = t.request("mcp:run").await;
    let cb = t
        .to_provider_and_back("corp", &request, McpScope::Read)
        .await;
    let done = t
        .logins
        .finish("corp", &cb, Some(BROWSER), &ctx())
        .await
        .unwrap();

    let ada = t.user("ada@example.com").await.expect("provisioned");
    assert_eq!(ada.display_name, "Ada Lovelace");
    assert_eq!(ada.password_hash, None);
    assert!(!ada.disabled);
    assert_eq!(done.session.user_id, ada.id);
    assert_eq!(done.session.method, "oidc:corp");
    let membership = t
        .app
        .store
        .find_membership(t.app.t.acme.id, ada.id)
        .await
        .unwrap()
        .expect("a membership in the configured organization");
    assert_eq!(membership.role, OrgRole::Member);
    assert_eq!(
        membership.grants,
        BTreeMap::from([(t.app.t.dev.id, Level::Run)])
    );
    assert_eq!(
        t.app
            .store
            .find_membership(t.app.t.other.id, ada.id)
            .await
            .unwrap(),
        None
    );
    // The session is a real one: the pages find it by its secret.
    let again = t
        .app
        .plane
        .oauth()
        .session(done.session.secret())
        .await
        .unwrap();
    assert_eq!(again.user_id, ada.id);

    let tokens = t.redeem(&done.location).await;
    assert_eq!(
        tokens.scope, "mcp:read",
        "what was approved, not what was asked"
    );
    let principal = t
        .app
        .plane
        .authenticator()
        .authenticate_for_resource(
            &tokens.access_token,
            &ClientInfo::default(),
            Some("acme"),
            Some(&dev_resource()),
        )
        .await
        .unwrap();
    assert_eq!(principal.id, ada.id);
    assert_eq!(principal.scope_cap, Some(Level::Read));

    let added = t.events("member.added").await;
    assert_eq!(added.len(), 1);
    assert_eq!(added[0].org_id, t.app.t.acme.id);
    assert_eq!(
        added[0].resources,
        vec![
            format!("user:{}", ada.id),
            "role:member".to_owned(),
            format!("grant:{}=run", t.app.t.dev.id)
        ]
    );
    assert_eq!(
        added[0].reason.as_deref(),
        Some("just-in-time provisioning through oidc:corp")
    );
    let logins = t.events("oauth.login.succeeded").await;
    assert_eq!(logins.len(), 1);
    assert_eq!(logins[0].actor.id, ada.id);
    assert_eq!(logins[0].org_id, t.app.t.acme.id);
    assert_eq!(logins[0].reason.as_deref(), Some("method oidc:corp"));
    assert_eq!(logins[0].client.ip.as_deref(), Some("192.0.2.20"));
    let granted = t.events("oauth.consent.granted").await;
    assert_eq!(granted.len(), 1);
    assert_eq!(granted[0].reason.as_deref(), Some("scope mcp:read"));
    // No secret of the login anywhere in the trail.
    let all: Vec<AuditEvent> = [
        t.app.audit(t.app.t.acme.id).await,
        t.app.audit(Uuid::nil()).await,
    ]
    .concat();
    let text = serde_json::to_string(&all).unwrap();
    for secret in [
        cb.code.as_deref().unwrap(),
        cb.state.as_deref().unwrap(),
        done.session.secret(),
        &t.fake.config().client_secret,
        BROWSER,
    ] {
        assert!(!text.contains(secret), "a secret in the audit trail");
    }

    // A second sign-in reuses the account: no second membership event.
    let request = t.request("mcp:run").await;
    let cb = t
        .to_provider_and_back("corp", &request, McpScope::Run)
        .await;
    let second = t
        .logins
        .finish("corp", &cb, Some(BROWSER), &ctx())
        .await
        .unwrap();
    assert_eq!(second.session.user_id, ada.id);
    assert_eq!(t.redeem(&second.location).await.scope, "mcp:read mcp:run");
    assert_eq!(t.events("member.added").await.len(), 1);
}

#[tokio::test]
async fn the_upstream_state_is_single_use_bound_to_the_browser_and_expires() {
    let t = Sso::start(FakeUser::default(), |f| vec![oidc(f, "corp", jit())]).await;
    let request = t.request("mcp:read").await;

    let cb = t
        .to_provider_and_back("corp", &request, McpScope::Read)
        .await;
    t.logins
        .finish("corp", &cb, Some(BROWSER), &ctx())
        .await
        .unwrap();
    // The same callback again (a replayed URL): nothing is pending under that state.
    let replay = t.logins.finish("corp", &cb, Some(BROWSER), &ctx()).await;
    assert!(
        matches!(replay, Err(UpstreamLoginError::UnknownLogin)),
        "{replay:?}"
    );

    // Another browser following the callback URL (login CSRF) is refused, and the
    // attempt spends the state: the right browser cannot use it afterwards either.
    let cb = t
        .to_provider_and_back("corp", &request, McpScope::Read)
        .await;
    let other = t
        .logins
        .finish("corp", &cb, Some("another-browser"), &ctx())
        .await;
    assert!(
        matches!(other, Err(UpstreamLoginError::OtherBrowser)),
        "{other:?}"
    );
    let none = t.logins.finish("corp", &cb, None, &ctx()).await;
    assert!(matches!(none, Err(UpstreamLoginError::UnknownLogin)));

    // No cookie at all.
    let cb = t
        .to_provider_and_back("corp", &request, McpScope::Read)
        .await;
    let none = t.logins.finish("corp", &cb, None, &ctx()).await;
    assert!(matches!(none, Err(UpstreamLoginError::OtherBrowser)));

    // A forged state.
    let mut forged = t
        .to_provider_and_back("corp", &request, McpScope::Read)
        .await;
    forged.state = Some("guessed".into());
    let result = t
        .logins
        .finish("corp", &forged, Some(BROWSER), &ctx())
        .await;
    assert!(matches!(result, Err(UpstreamLoginError::UnknownLogin)));

    // Ten minutes at the provider is the limit.
    let cb = t
        .to_provider_and_back("corp", &request, McpScope::Read)
        .await;
    t.app.clock.advance(Duration::from_secs(10 * 60 + 1));
    let late = t.logins.finish("corp", &cb, Some(BROWSER), &ctx()).await;
    assert!(matches!(late, Err(UpstreamLoginError::UnknownLogin)));

    let failed = t.events("oauth.login.failed").await;
    assert_eq!(failed.len(), 6);
    for event in &failed {
        assert_eq!(event.outcome, Outcome::Denied);
        assert_eq!(event.org_id, Uuid::nil());
        assert!(
            event
                .reason
                .as_deref()
                .unwrap()
                .starts_with("method oidc:corp: "),
            "{:?}",
            event.reason
        );
    }
    assert_eq!(
        failed[0].reason.as_deref(),
        Some(
            "method oidc:corp: this sign-in has expired or was already used; start again from the application"
        )
    );
    assert_eq!(t.events("oauth.login.succeeded").await.len(), 1);
}

#[tokio::test]
async fn a_callback_for_another_provider_is_refused() {
    let t = Sso::start(FakeUser::default(), |f| {
        vec![oidc(f, "corp", jit()), oidc(f, "corp2", jit())]
    })
    .await;
    let request = t.request("mcp:read").await;
    let cb = t
        .to_provider_and_back("corp", &request, McpScope::Read)
        .await;
    let result = t.logins.finish("corp2", &cb, Some(BROWSER), &ctx()).await;
    assert!(
        matches!(result, Err(UpstreamLoginError::WrongProvider)),
        "{result:?}"
    );
    // Spent: the right path no longer works either.
    let result = t.logins.finish("corp", &cb, Some(BROWSER), &ctx()).await;
    assert!(matches!(result, Err(UpstreamLoginError::UnknownLogin)));
    let result = t.logins.finish("nope", &cb, Some(BROWSER), &ctx()).await;
    assert!(matches!(result, Err(UpstreamLoginError::UnknownProvider)));
    assert!(t.user("ada@example.com").await.is_none());
    let failed = t.events("oauth.login.failed").await;
    assert_eq!(
        failed
            .iter()
            .map(|e| e.reason.clone().unwrap())
            .collect::<Vec<_>>(),
        [
            "method oidc:corp2: this sign-in was started with another provider; start again from the application",
            "method oidc:corp: this sign-in has expired or was already used; start again from the application",
            "method upstream:nope: no sign-in provider is configured under this name",
        ]
    );
}

#[tokio::test]
async fn invite_only_refuses_unknown_emails_and_admits_existing_accounts() {
    let t = Sso::start(FakeUser::default(), |f| {
        vec![oidc(f, "corp", invite_only())]
    })
    .await;
    let request = t.request("mcp:run").await;
    let cb = t
        .to_provider_and_back("corp", &request, McpScope::Run)
        .await;
    let result = t.logins.finish("corp", &cb, Some(BROWSER), &ctx()).await;
    assert!(
        matches!(result, Err(UpstreamLoginError::NoAccount)),
        "{result:?}"
    );
    assert!(
        t.user("ada@example.com").await.is_none(),
        "nobody was created"
    );
    assert!(t.events("member.added").await.is_empty());

    // Invited (an account with this email exists): signed in as that account, its
    // membership untouched.
    let ada = t.existing("ada@example.com", false).await;
    let cb = t
        .to_provider_and_back("corp", &request, McpScope::Run)
        .await;
    let done = t
        .logins
        .finish("corp", &cb, Some(BROWSER), &ctx())
        .await
        .unwrap();
    assert_eq!(done.session.user_id, ada.id);
    assert_eq!(done.session.method, "oidc:corp");
    assert_eq!(t.redeem(&done.location).await.scope, "mcp:read mcp:run");
    let membership = t
        .app
        .store
        .find_membership(t.app.t.acme.id, ada.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(membership.grants[&t.app.t.dev.id], Level::Write);
}

#[tokio::test]
async fn unverified_emails_and_disabled_accounts_are_refused() {
    let t = Sso::start(unverified(), |f| vec![oidc(f, "corp", jit())]).await;
    let request = t.request("mcp:read").await;
    let cb = t
        .to_provider_and_back("corp", &request, McpScope::Read)
        .await;
    let result = t.logins.finish("corp", &cb, Some(BROWSER), &ctx()).await;
    assert!(
        matches!(
            result,
            Err(UpstreamLoginError::EmailNotAdmitted(
                UpstreamError::EmailUnverified
            ))
        ),
        "{result:?}"
    );
    assert!(t.user("ada@example.com").await.is_none());
    // Not even an existing account with that address is signed in by an unverified claim.
    let ada = t.existing("ada@example.com", false).await;
    let cb = t
        .to_provider_and_back("corp", &request, McpScope::Read)
        .await;
    let result = t.logins.finish("corp", &cb, Some(BROWSER), &ctx()).await;
    assert!(
        matches!(
            result,
            Err(UpstreamLoginError::EmailNotAdmitted(
                UpstreamError::EmailUnverified
            ))
        ),
        "{result:?}"
    );
    let failed = t.events("oauth.login.failed").await;
    assert_eq!(failed.len(), 2);
    assert_eq!(
        failed[1].reason.as_deref(),
        Some(
            "method oidc:corp: the sign-in provider gave no verified email address that may sign in here: the provider has not verified this email address"
        )
    );
    assert!(t.events("oauth.login.succeeded").await.is_empty());
    drop(ada);

    let t = Sso::start(FakeUser::default(), |f| vec![oidc(f, "corp", jit())]).await;
    let ada = t.existing("ada@example.com", true).await;
    let request = t.request("mcp:read").await;
    let cb = t
        .to_provider_and_back("corp", &request, McpScope::Read)
        .await;
    let result = t.logins.finish("corp", &cb, Some(BROWSER), &ctx()).await;
    assert!(matches!(result, Err(UpstreamLoginError::AccountDisabled)));
    let failed = t.events("oauth.login.failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(
        failed[0].actor.id, ada.id,
        "the account is named when known"
    );
}

#[tokio::test]
async fn github_logins_and_a_consent_that_cannot_become_a_code() {
    // JIT into acme without environment levels: the new member reaches no environment,
    // so the consent for acme/dev becomes an access_denied redirect, and no session is
    // handed out.
    let t = Sso::start(FakeUser::default(), |f| {
        vec![github(
            f,
            "gh",
            json!({"mode": "jit", "organization": "acme"}),
        )]
    })
    .await;
    let request = t.request("mcp:read").await;
    let cb = t.to_provider_and_back("gh", &request, McpScope::Read).await;
    let result = t.logins.finish("gh", &cb, Some(BROWSER), &ctx()).await;
    let Err(UpstreamLoginError::Rejected(AuthorizeRejection::Redirect { location })) = result
    else {
        panic!("expected an error redirect to the client, got {result:?}");
    };
    let q = query(&location);
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "client state");
    assert_eq!(q["iss"], ISSUER);
    let ada = t.user("ada@example.com").await.unwrap();
    let logins = t.events("oauth.login.succeeded").await;
    assert_eq!(logins.len(), 1);
    assert_eq!(logins[0].reason.as_deref(), Some("method github:gh"));
    assert_eq!(t.events("oauth.login.failed").await.len(), 0);
    assert_eq!(t.events("oauth.consent.denied").await.len(), 1);

    // Once an admin grants dev, the same GitHub login completes.
    t.app
        .store
        .upsert_membership(&Membership {
            org_id: t.app.t.acme.id,
            user_id: ada.id,
            role: OrgRole::Member,
            grants: [(t.app.t.dev.id, Level::Read)].into(),
        })
        .await
        .unwrap();
    let cb = t.to_provider_and_back("gh", &request, McpScope::Read).await;
    let done = t
        .logins
        .finish("gh", &cb, Some(BROWSER), &ctx())
        .await
        .unwrap();
    assert_eq!(done.session.method, "github:gh");
    assert_eq!(t.redeem(&done.location).await.scope, "mcp:read");
}

#[tokio::test]
async fn begin_needs_an_approval_and_a_known_provider_and_jit_targets_must_exist() {
    let t = Sso::start(FakeUser::default(), |f| vec![oidc(f, "corp", jit())]).await;
    let request = t.request("mcp:read").await;
    let denied = t
        .logins
        .begin("corp", &request, ConsentDecision::Deny, BROWSER)
        .await;
    assert!(matches!(denied, Err(UpstreamLoginError::NotApproved)));
    let unknown = t
        .logins
        .begin(
            "nope",
            &request,
            ConsentDecision::Approve {
                scope: McpScope::Read,
            },
            BROWSER,
        )
        .await;
    assert!(matches!(unknown, Err(UpstreamLoginError::UnknownProvider)));
    // Approving more than was requested grants only what was requested.
    let cb = t
        .to_provider_and_back("corp", &request, McpScope::Write)
        .await;
    let done = t
        .logins
        .finish("corp", &cb, Some(BROWSER), &ctx())
        .await
        .unwrap();
    assert_eq!(t.redeem(&done.location).await.scope, "mcp:read");
    assert_eq!(
        t.logins
            .providers()
            .iter()
            .map(|p| (p.id.as_str(), p.display_name.as_str()))
            .collect::<Vec<_>>(),
        [("corp", "SSO corp")]
    );

    // A provisioning target that does not exist stops the configuration at start.
    let plane = &t.app.plane;
    let missing_org = plane
        .upstream_logins(providers_from(
            &t.fake,
            vec![oidc(
                &t.fake,
                "corp",
                json!({"mode": "jit", "organization": "nope"}),
            )],
        ))
        .await
        .unwrap_err();
    assert_eq!(
        missing_org,
        "upstream provider corp: provisioning organization \"nope\" does not exist"
    );
    let missing_env = plane
        .upstream_logins(providers_from(
            &t.fake,
            vec![oidc(
                &t.fake,
                "corp",
                json!({"mode": "jit", "organization": "acme", "environment_levels": {"prod": "read"}}),
            )],
        ))
        .await
        .unwrap_err();
    assert_eq!(
        missing_env,
        "upstream provider corp: provisioning environment \"prod\" does not exist in organization \"acme\""
    );
    // Two organizations (acme, other) and none named: no guessing.
    let ambiguous = plane
        .upstream_logins(providers_from(
            &t.fake,
            vec![oidc(&t.fake, "corp", json!({"mode": "jit"}))],
        ))
        .await
        .unwrap_err();
    assert_eq!(
        ambiguous,
        "upstream provider corp: provisioning names no organization and the server has 2; set provisioning.organization"
    );
}
