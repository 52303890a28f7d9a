//! Upstream sign-in over HTTP, as a browser sees it: the login page's provider link, the
//! consent page shown before leaving, the 303 to the in-test identity provider (a real
//! OIDC server with signed id_tokens), its redirect back to the callback, the session
//! cookie and the 303 to the client with code, state and iss — then the code redeemed at
//! the token endpoint. Plus the refusals, each with its exact status, headers and text.

// The page parsing and PKCE pair of the authorization-server tests, shared.
use crate::oauth::{hidden_fields, pkce, unescape};
use crate::support::{Server, http_client, listener, spawn};
use assay_auth::upstream::fake_idp::{FakeIdp, FakeIdpConfig};
use assay_auth::upstream::{UpstreamConfig, UpstreamOptions, UpstreamProvider};
use assay_control::{ControlPlaneConfig, LocalControlPlane};
use assay_core::ports::{Clock, ControlPlane, ExecutionFiles, Executor, Store, SystemClock};
use assay_exec::{FsExecutionFiles, LocalExecutor, LocalExecutorConfig};
use assay_server::{AppState, ServerConfig};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const CLI: &str = "assay-cli";
const CLI_REDIRECT: &str = "http://127.0.0.1:53682/callback";
const STATE: &str = "client-st4te";
const SECRET_VAR: &str = "HTTP_UPSTREAM_TEST_SECRET";
const FORM: &str = "application/x-www-form-urlencoded";

struct Sso {
    base: String,
    fake: FakeIdp,
    plane: Arc<LocalControlPlane>,
    store: Arc<dyn Store>,
    _server: Server,
    _dir: tempfile::TempDir,
}

impl Sso {
    async fn start() -> Self {
        let (listener, _addr, public_url) = listener().await;
        let base = public_url.as_str().trim_end_matches('/').to_owned();
        let fake = FakeIdp::start(FakeIdpConfig {
            redirect_uris: vec![format!("{base}/oauth/upstream/corp/callback")],
            ..FakeIdpConfig::default()
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let store: Arc<dyn Store> = Arc::new(
            assay_store::SqliteStore::open(&dir.path().join("assay.db"))
                .await
                .unwrap(),
        );
        let data_dir = dir.path().join("data");
        let files = Arc::new(FsExecutionFiles::new(data_dir.clone()));
        let executor: Arc<dyn Executor> = Arc::new(LocalExecutor::new(
            LocalExecutorConfig {
                data_dir,
                ..LocalExecutorConfig::default()
            },
            files.clone(),
        ));
        let files: Arc<dyn ExecutionFiles> = files;
        assay_control::bootstrap::bootstrap(&*store, &*clock)
            .await
            .unwrap()
            .expect("a fresh database bootstraps");
        let plane = LocalControlPlane::start(
            ControlPlaneConfig {
                public_url: Some(public_url.clone()),
                ..ControlPlaneConfig::default()
            },
            store.clone(),
            executor,
            files,
            clock,
        )
        .await
        .unwrap();
        let provider = json!({
            "id": "corp", "kind": "oidc", "display_name": "Corp SSO",
            "issuer": fake.issuer(), "client_id": fake.config().client_id,
            "client_secret_env": SECRET_VAR,
            "provisioning": {"mode": "jit", "organization": "default",
                             "environment_levels": {"dev": "run"}},
        });
        let config: UpstreamConfig = serde_json::from_value(json!([provider])).unwrap();
        let secret = fake.config().client_secret.clone();
        let settings = config
            .resolve(&|name| (name == SECRET_VAR).then(|| secret.clone()))
            .unwrap();
        let providers = UpstreamProvider::all(settings, &UpstreamOptions::default()).unwrap();
        let logins = plane.upstream_logins(providers).await.unwrap();

        let mut config = ServerConfig::new(public_url);
        config.oauth = Some(assay_server::oauth::OAuthServer(plane.oauth()));
        config.upstream = Some(logins);
        let probe = store.clone();
        let state = AppState {
            control: plane.clone() as Arc<dyn ControlPlane>,
            auth: plane.authenticator(),
            ready: Arc::new(move || {
                let store = probe.clone();
                Box::pin(async move { store.list_orgs().await.is_ok() })
            }),
            config,
        };
        let server = spawn(listener, state);
        Self {
            base,
            fake,
            plane,
            store,
            _server: server,
            _dir: dir,
        }
    }

    fn authorize_url(&self, challenge: &str) -> String {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", CLI)
            .append_pair("redirect_uri", CLI_REDIRECT)
            .append_pair("scope", "mcp:run")
            .append_pair("state", STATE)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair(
                "resource",
                &format!("{}/organizations/default/environments/dev/mcp", self.base),
            )
            .finish();
        format!("{}/oauth/authorize?{query}", self.base)
    }

    /// Login page → the provider's link → the consent page before leaving.
    async fn consent_page(&self, browser: &mut Browser, challenge: &str) -> Answer {
        let login = browser.get(&self.authorize_url(challenge)).await;
        assert_eq!(login.status, 200, "{}", login.body);
        let href = unescape(
            login
                .body
                .split_once("<a href=\"")
                .and_then(|(_, r)| r.split_once("\">Sign in with Corp SSO</a>"))
                .map(|(href, _)| href)
                .expect("a link to the provider on the login page"),
        );
        assert!(href.starts_with("/oauth/upstream/corp/start?"), "{href}");
        browser.get(&format!("{}{href}", self.base)).await
    }

    /// The consent page's form, approved with `scope`: the 303 to the provider.
    async fn leave(&self, browser: &mut Browser, page: &Answer, scope: &str) -> Answer {
        let mut fields = hidden_fields(&page.body);
        fields.push(("granted_scope".into(), scope.into()));
        browser
            .post(&format!("{}/oauth/upstream/corp/start", self.base), &fields)
            .await
    }
}

/// An HTTP answer with its body read.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn location(&self) -> &str {
        self.header("location").expect("a Location header")
    }
}

/// A browser: no automatic redirects, a cookie jar, `Origin` on every POST.
struct Browser {
    http: reqwest::Client,
    jar: BTreeMap<String, String>,
    origin: String,
}

impl Browser {
    fn new(origin: &str) -> Self {
        let _ = http_client(None); // installs the TLS provider reqwest needs to build
        Self {
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            jar: BTreeMap::new(),
            origin: origin.to_owned(),
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Answer {
        let req = if self.jar.is_empty() {
            req
        } else {
            let cookies: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req.header("cookie", cookies.join("; "))
        };
        let res = req.send().await.unwrap();
        let answer = Answer {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            body: res.text().await.unwrap(),
        };
        for cookie in answer.headers.get_all("set-cookie") {
            let cookie = cookie.to_str().unwrap();
            let (name, value) = cookie.split(';').next().unwrap().split_once('=').unwrap();
            if value.is_empty() || cookie.contains("Max-Age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }
        answer
    }

    async fn get(&mut self, url: &str) -> Answer {
        let req = self.http.get(url);
        self.send(req).await
    }

    async fn post(&mut self, url: &str, fields: &[(String, String)]) -> Answer {
        let mut body = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in fields {
            body.append_pair(k, v);
        }
        let req = self
            .http
            .post(url)
            .header("origin", self.origin.clone())
            .header("content-type", FORM)
            .body(body.finish());
        self.send(req).await
    }
}

fn query(location: &str) -> BTreeMap<String, String> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// The headers every sign-in page carries; `form_targets` are the extra `form-action`
/// sources.
fn assert_page_headers(page: &Answer, form_targets: &str) {
    let style = page
        .body
        .split_once("<style>")
        .and_then(|(_, r)| r.split_once("</style>"))
        .map(|(s, _)| s)
        .expect("an inline stylesheet");
    let hash = STANDARD.encode(Sha256::digest(style.as_bytes()));
    assert_eq!(
        page.header("content-security-policy"),
        Some(
            format!(
                "default-src 'none'; style-src 'sha256-{hash}'; form-action 'self'{form_targets}; \
                 frame-ancestors 'none'; base-uri 'none'"
            )
            .as_str()
        )
    );
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert_eq!(page.header("pragma"), Some("no-cache"));
    for tag in ["<script", "<img", "<link", "<iframe", "src="] {
        assert!(!page.body.contains(tag), "{tag} in {}", page.body);
    }
}

/// An error page: status, headers and its one sentence.
fn assert_error_page(page: &Answer, status: u16, title: &str, message: &str) {
    assert_eq!(page.status, status, "{}", page.body);
    assert_page_headers(page, "");
    assert!(
        page.body
            .contains(&format!("<h1>{title}</h1><p>{message}</p>")),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn sign_in_through_the_provider_from_consent_to_token() {
    let t = Sso::start().await;
    let fake_origin = t.fake.base_url().origin().ascii_serialization();
    let mut browser = Browser::new(&t.base);
    let (verifier, challenge) = pkce();

    let consent = t.consent_page(&mut browser, &challenge).await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    // The browser may only be sent to the provider from this page.
    assert_page_headers(&consent, &format!(" {fake_origin}"));
    assert!(
        consent
            .body
            .contains("<h1>Allow <strong>Assay CLI</strong> to use Assay as you?</h1>")
    );
    assert!(
        consent
            .body
            .contains("<dt>You sign in with</dt><dd>Corp SSO</dd>")
    );
    assert!(consent.body.contains("value=\"mcp:run\" checked>"));

    // Grant less than asked, then leave.
    let leave = t.leave(&mut browser, &consent, "mcp:read").await;
    assert_eq!(leave.status, 303, "{}", leave.body);
    assert_eq!(leave.header("cache-control"), Some("no-store"));
    assert_eq!(leave.header("referrer-policy"), Some("no-referrer"));
    let upstream = url::Url::parse(leave.location()).unwrap();
    assert_eq!(
        upstream.as_str().split('?').next(),
        Some(format!("{}/protocol/openid-connect/auth", t.fake.issuer()).as_str())
    );
    let q = query(upstream.as_str());
    assert_eq!(
        q["redirect_uri"],
        format!("{}/oauth/upstream/corp/callback", t.base)
    );
    assert_ne!(q["state"], STATE, "the client's state never leaves Assay");

    // The provider signs the user in and sends the browser back.
    let back = t.fake.follow_authorization(&upstream).await.unwrap();
    let done = browser.get(back.as_str()).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.header("cache-control"), Some("no-store"));
    assert_eq!(done.header("referrer-policy"), Some("no-referrer"));
    let to_client = query(done.location());
    assert!(done.location().starts_with(&format!("{CLI_REDIRECT}?")));
    assert_eq!(to_client["state"], STATE);
    assert_eq!(to_client["iss"], t.base);
    let session_cookie = done
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("assay_session="))
        .expect("the session cookie");
    assert!(
        session_cookie.ends_with("; Path=/; HttpOnly; SameSite=Lax; Max-Age=28800")
            || session_cookie.contains("; Path=/; HttpOnly; SameSite=Lax; Max-Age=2879"),
        "{session_cookie}"
    );

    // The code is the consent given before leaving.
    let token = reqwest::Client::new()
        .post(format!("{}/oauth/token", t.base))
        .header("content-type", FORM)
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "authorization_code")
                .append_pair("client_id", CLI)
                .append_pair("code", &to_client["code"])
                .append_pair("redirect_uri", CLI_REDIRECT)
                .append_pair("code_verifier", &verifier)
                .finish(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 200);
    let token: Value = token.json().await.unwrap();
    assert_eq!(token["scope"], "mcp:read");
    let user = t
        .store
        .find_user_by_email("ada@example.com")
        .await
        .unwrap()
        .expect("provisioned just in time");
    let principal = t
        .plane
        .authenticator()
        .authenticate_for_resource(
            token["access_token"].as_str().unwrap(),
            &Default::default(),
            Some("default"),
            Some(&format!(
                "{}/organizations/default/environments/dev/mcp",
                t.base
            )),
        )
        .await
        .unwrap();
    assert_eq!(principal.id, user.id);

    // Signed in now: the authorize endpoint shows this user's consent page.
    let (_, challenge) = pkce();
    let page = browser.get(&t.authorize_url(&challenge)).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("<dt>Signed in as</dt><dd>Ada Lovelace &lt;ada@example.com&gt;</dd>")
    );

    // The callback again (a replayed URL): an error page, nothing else.
    let replay = browser.get(back.as_str()).await;
    assert_error_page(
        &replay,
        400,
        "Sign-in not completed",
        "this sign-in has expired or was already used; start again from the application",
    );
    assert!(replay.headers.get("set-cookie").is_none());
}

#[tokio::test]
async fn refusals_have_exact_answers() {
    let t = Sso::start().await;
    let mut browser = Browser::new(&t.base);
    let (_, challenge) = pkce();
    let consent = t.consent_page(&mut browser, &challenge).await;
    assert_eq!(consent.status, 200);

    // A form without the CSRF token, and one from another site.
    let mut fields = hidden_fields(&consent.body);
    fields.retain(|(k, _)| k != "csrf");
    fields.push(("granted_scope".into(), "mcp:read".into()));
    let forged = browser
        .post(&format!("{}/oauth/upstream/corp/start", t.base), &fields)
        .await;
    assert_error_page(
        &forged,
        403,
        "Request refused",
        "This form has expired or was not sent from this site. Go back, reload the page and try again.",
    );
    let mut cross = Browser::new("https://evil.example");
    cross.jar = browser.jar.clone();
    let mut fields = hidden_fields(&consent.body);
    fields.push(("granted_scope".into(), "mcp:read".into()));
    let cross_site = cross
        .post(&format!("{}/oauth/upstream/corp/start", t.base), &fields)
        .await;
    assert_error_page(
        &cross_site,
        403,
        "Request refused",
        "This form was sent from another website, so it was not accepted.",
    );

    // A provider nobody configured.
    let unknown = browser
        .get(&format!("{}/oauth/upstream/nope/start", t.base))
        .await;
    assert_error_page(
        &unknown,
        404,
        "Unknown sign-in provider",
        "This server has no sign-in provider under this name.",
    );

    // The provider's redirect followed by another browser (login CSRF): refused.
    let leave = t.leave(&mut browser, &consent, "mcp:run").await;
    assert_eq!(leave.status, 303);
    let back = t
        .fake
        .follow_authorization(&url::Url::parse(leave.location()).unwrap())
        .await
        .unwrap();
    let mut victim = Browser::new(&t.base);
    let refused = victim.get(back.as_str()).await;
    assert_error_page(
        &refused,
        400,
        "Sign-in not completed",
        "this sign-in was started in another browser; start again from the application",
    );
    assert!(refused.headers.get("set-cookie").is_none());
    // …which spent it: the right browser cannot finish it either.
    let spent = browser.get(back.as_str()).await;
    assert_error_page(
        &spent,
        400,
        "Sign-in not completed",
        "this sign-in has expired or was already used; start again from the application",
    );
    assert!(spent.headers.get("set-cookie").is_none());

    // The user cancels at the provider.
    let leave = t.leave(&mut browser, &consent, "mcp:run").await;
    let state = query(leave.location())["state"].clone();
    let cancelled = browser
        .get(&format!(
            "{}/oauth/upstream/corp/callback?error=access_denied&state={state}",
            t.base
        ))
        .await;
    assert_error_page(
        &cancelled,
        403,
        "Sign-in cancelled",
        "the sign-in provider did not confirm who you are; start again from the application",
    );
    assert!(
        t.store
            .find_user_by_email("ada@example.com")
            .await
            .unwrap()
            .is_none()
    );
}
