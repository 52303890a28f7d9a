//! The authorization server over HTTP, as a browser and an MCP client see it: the login
//! and consent pages with a real cookie jar, the token, registration, revocation and
//! device endpoints, and one test per security rule asserting the exact status, headers
//! and body.

use crate::support::{CapturedLogs, TestApp, expect_problem, http_client};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::Duration;

const CLI: &str = "assay-cli";
/// A loopback redirect of the CLI client (registered without a port: any port matches).
const CLI_REDIRECT: &str = "http://127.0.0.1:53682/callback";
const CLI_REDIRECT_ORIGIN: &str = "http://127.0.0.1:53682";
const STATE: &str = "st4te-<&\"'>";
const PROTOCOL: &str = "2025-11-25";
const FORM: &str = "application/x-www-form-urlencoded";

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

    fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("JSON: {}", self.body))
    }
}

/// A browser: no automatic redirects, a cookie jar, `Origin` on every POST.
struct Browser {
    http: reqwest::Client,
    jar: BTreeMap<String, String>,
    origin: String,
}

impl Browser {
    fn new(app: &TestApp) -> Self {
        let _ = http_client(None); // installs the TLS provider reqwest needs to build
        Self {
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            jar: BTreeMap::new(),
            origin: app.base.clone(),
        }
    }

    fn cookie_header(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Answer {
        let req = if self.jar.is_empty() {
            req
        } else {
            req.header("cookie", self.cookie_header())
        };
        let res = req.send().await.unwrap();
        let answer = Answer {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            body: res.text().await.unwrap(),
        };
        for cookie in answer.set_cookies() {
            let pair = cookie.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
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
        let req = self
            .http
            .post(url)
            .header("origin", self.origin.clone())
            .header("content-type", FORM)
            .body(encode(fields.iter().map(|(k, v)| (k.as_str(), v.as_str()))));
        self.send(req).await
    }
}

/// An `application/x-www-form-urlencoded` body.
fn encode<'a>(fields: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut body = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        body.append_pair(k, v);
    }
    body.finish()
}

/// The hidden inputs of a page's (first) form, unescaped.
pub(crate) fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find("<input type=\"hidden\" name=\"") {
        rest = &rest[at + "<input type=\"hidden\" name=\"".len()..];
        let (name, after) = rest.split_once("\" value=\"").unwrap();
        let (value, after) = after.split_once("\">").unwrap();
        fields.push((unescape(name), unescape(value)));
        rest = after;
    }
    fields
}

pub(crate) fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The hidden fields plus `extra`, with `action` replaced by the given one.
fn submit(html: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = hidden_fields(html)
        .into_iter()
        .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
        .collect();
    fields.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    fields
}

pub(crate) fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD
        .encode(uuid::Uuid::new_v4().as_bytes())
        .repeat(2);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn mcp_resource(app: &TestApp) -> String {
    format!("{}/organizations/default/environments/dev/mcp", app.base)
}

fn authorize_url(
    app: &TestApp,
    client_id: &str,
    redirect: &str,
    challenge: &str,
    scope: &str,
) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect)
        .append_pair("scope", scope)
        .append_pair("state", STATE)
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("resource", &mcp_resource(app))
        .finish();
    format!("{}/oauth/authorize?{query}", app.base)
}

/// The query of a redirect `location` to the client, as a map.
fn redirect_query(location: &str) -> BTreeMap<String, String> {
    let url = url::Url::parse(location).unwrap();
    url.query_pairs().into_owned().collect()
}

/// The exact Content-Security-Policy of a page whose inline stylesheet is in `html`.
fn expected_csp(html: &str, form_targets: &str) -> String {
    let style = html
        .split_once("<style>")
        .and_then(|(_, r)| r.split_once("</style>"))
        .map(|(s, _)| s)
        .expect("an inline stylesheet");
    let hash = STANDARD.encode(Sha256::digest(style.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; form-action 'self'{form_targets}; \
         frame-ancestors 'none'; base-uri 'none'"
    )
}

/// Every header a page must carry.
fn assert_page_headers(page: &Answer, form_targets: &str) {
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(
        page.header("content-security-policy"),
        Some(expected_csp(&page.body, form_targets).as_str())
    );
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert_eq!(page.header("pragma"), Some("no-cache"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    // The authorization endpoint and its pages never allow CORS (RFC 9700 §2.6).
    assert_eq!(page.header("access-control-allow-origin"), None);
    // Nothing is loaded from anywhere.
    for tag in ["<script", "<img", "<link", "<iframe", "src=", "http-equiv"] {
        assert!(!page.body.contains(tag), "{tag} in {}", page.body);
    }
}

/// Headers every JSON answer of the token-style endpoints carries.
fn assert_json_headers(answer: &Answer) {
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(answer.header("pragma"), Some("no-cache"));
    assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
}

/// Login with the owner's credentials from a page showing the login form → the 303
/// back to where the form came from.
async fn log_in(
    app: &TestApp,
    browser: &mut Browser,
    login_page: &Answer,
    action_url: &str,
) -> Answer {
    let fields = submit(
        &login_page.body,
        &[
            ("email", &app.owner_email),
            ("password", &app.owner_password),
        ],
    );
    browser.post(action_url, &fields).await
}

/// GET authorize → login → consent page.
async fn consent_page(app: &TestApp, browser: &mut Browser, url: &str) -> Answer {
    let login = browser.get(url).await;
    assert_eq!(login.status, 200, "{}", login.body);
    assert!(login.body.contains("Sign in to Assay"), "{}", login.body);
    let after = log_in(app, browser, &login, &app.url("/oauth/authorize")).await;
    assert_eq!(after.status, 303, "{}", after.body);
    let consent = browser.get(&app.url(after.location())).await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    assert!(
        consent.body.contains("to use Assay as you?"),
        "{}",
        consent.body
    );
    consent
}

async fn token_request(app: &TestApp, fields: &[(&str, &str)]) -> Answer {
    post_form(app, "/oauth/token", fields).await
}

/// The CLI client's token request for an authorization `code` (the MCP resource).
async fn exchange_cli_code(app: &TestApp, code: &str, verifier: &str) -> Answer {
    token_request(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", CLI),
            ("code", code),
            ("redirect_uri", CLI_REDIRECT),
            ("code_verifier", verifier),
            ("resource", &mcp_resource(app)),
        ],
    )
    .await
}

async fn post_form(app: &TestApp, path: &str, fields: &[(&str, &str)]) -> Answer {
    let res = http_client(None)
        .post(app.url(path))
        .header("content-type", FORM)
        .body(encode(fields.iter().copied()))
        .send()
        .await
        .unwrap();
    Answer {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body: res.text().await.unwrap(),
    }
}

/// The code of an approved authorization for the CLI client (scope `scope`).
async fn authorized_code(app: &TestApp, browser: &mut Browser, scope: &str) -> (String, String) {
    let (verifier, challenge) = pkce();
    let url = authorize_url(app, CLI, CLI_REDIRECT, &challenge, scope);
    let consent = consent_page(app, browser, &url).await;
    let done = browser
        .post(
            &app.url("/oauth/authorize"),
            &submit(
                &consent.body,
                &[("action", "approve"), ("granted_scope", scope)],
            ),
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let q = redirect_query(done.location());
    (q["code"].clone(), verifier)
}

async fn mcp_tools_list(app: &TestApp, token: &str) -> reqwest::Response {
    http_client(Some(token))
        .post(mcp_resource(app))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", PROTOCOL)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_browser_signs_in_consents_and_the_client_gets_tokens_that_work_and_refresh() {
    let app = TestApp::start().await;
    let mut browser = Browser::new(&app);
    let (verifier, challenge) = pkce();
    let url = authorize_url(
        &app,
        CLI,
        CLI_REDIRECT,
        &challenge,
        "mcp:run offline_access",
    );

    let login = browser.get(&url).await;
    assert_eq!(login.status, 200);
    assert_page_headers(&login, &format!(" {CLI_REDIRECT_ORIGIN}"));
    assert!(
        login
            .body
            .contains("to continue to <strong>Assay CLI</strong>")
    );
    let csrf_cookie = login.set_cookies();
    assert_eq!(csrf_cookie.len(), 1, "{csrf_cookie:?}");
    let (pair, attributes) = csrf_cookie[0].split_once(';').unwrap();
    assert!(pair.starts_with("assay_csrf=") && pair.len() == "assay_csrf=".len() + 43);
    assert_eq!(attributes, " Path=/; HttpOnly; SameSite=Lax");
    // The request rides along the form, escaped (the state holds markup characters).
    assert!(
        login
            .body
            .contains("value=\"st4te-&lt;&amp;&quot;&#39;&gt;\"")
    );

    let after_login = log_in(&app, &mut browser, &login, &app.url("/oauth/authorize")).await;
    assert_eq!(after_login.status, 303);
    assert_eq!(after_login.body, "");
    assert_eq!(after_login.header("cache-control"), Some("no-store"));
    let back = url::Url::parse(&app.url(after_login.location())).unwrap();
    assert_eq!(back.path(), "/oauth/authorize");
    assert_eq!(back.query(), url::Url::parse(&url).unwrap().query());
    let session_cookie = after_login.set_cookies();
    assert_eq!(session_cookie.len(), 1, "{session_cookie:?}");
    let (pair, attributes) = session_cookie[0].split_once(';').unwrap();
    assert!(pair.starts_with("assay_session=assay_bs_"), "{pair}");
    let max_age: u64 = attributes
        .strip_prefix(" Path=/; HttpOnly; SameSite=Lax; Max-Age=")
        .unwrap_or_else(|| panic!("{attributes}"))
        .parse()
        .unwrap();
    assert!((8 * 3600 - 60..=8 * 3600).contains(&max_age), "{max_age}");

    let consent = browser.get(&app.url(after_login.location())).await;
    assert_eq!(consent.status, 200);
    assert_page_headers(&consent, &format!(" {CLI_REDIRECT_ORIGIN}"));
    assert!(
        consent
            .body
            .contains("Allow <strong>Assay CLI</strong> to use Assay as you?")
    );
    assert!(consent.body.contains("<code>127.0.0.1</code>"));
    assert!(
        consent.body.contains("class=\"warning\""),
        "loopback-only warning"
    );
    assert!(
        consent
            .body
            .contains(&format!("<code>{}</code>", mcp_resource(&app)))
    );
    assert!(consent.body.contains("value=\"mcp:run\" checked>"));
    assert!(consent.body.contains("value=\"mcp:read\">"));
    assert!(!consent.body.contains("mcp:write"));

    let approved = browser
        .post(
            &app.url("/oauth/authorize"),
            &submit(
                &consent.body,
                &[("action", "approve"), ("granted_scope", "mcp:run")],
            ),
        )
        .await;
    assert_eq!(approved.status, 303, "{}", approved.body);
    assert!(approved.location().starts_with(&format!("{CLI_REDIRECT}?")));
    let q = redirect_query(approved.location());
    assert_eq!(q.keys().collect::<Vec<_>>(), ["code", "iss", "state"]);
    assert_eq!(q["state"], STATE);
    assert_eq!(q["iss"], app.base);
    assert!(q["code"].starts_with("assay_ac_"));

    let tokens = exchange_cli_code(&app, &q["code"], &verifier).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    assert_json_headers(&tokens);
    let t = tokens.json();
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 600);
    assert_eq!(t["scope"], "mcp:read mcp:run");
    let access = t["access_token"].as_str().unwrap();
    let refresh = t["refresh_token"].as_str().unwrap();
    assert!(refresh.starts_with("assay_rt_"));

    let res = mcp_tools_list(&app, access).await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(text.contains("run_workflow"), "{text}");

    let refreshed = token_request(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", CLI),
            ("refresh_token", refresh),
        ],
    )
    .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    assert_json_headers(&refreshed);
    let r = refreshed.json();
    assert_eq!(r["scope"], "mcp:read mcp:run");
    assert_ne!(r["refresh_token"], t["refresh_token"]);
    let res = mcp_tools_list(&app, r["access_token"].as_str().unwrap()).await;
    assert_eq!(res.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn an_invalid_redirect_gets_an_error_page_and_never_a_redirect() {
    let app = TestApp::start().await;
    let mut browser = Browser::new(&app);
    let (_, challenge) = pkce();
    for redirect in [
        "https://evil.example/callback",
        "javascript:alert(1)",
        "http://127.0.0.1:5000/other-path",
    ] {
        let page = browser
            .get(&authorize_url(&app, CLI, redirect, &challenge, "mcp:read"))
            .await;
        assert_eq!(page.status, 400, "{redirect}: {}", page.body);
        assert_eq!(page.header("location"), None);
        assert_page_headers(&page, "");
        assert!(page.body.contains("This sign-in request cannot be used"));
        assert!(
            page.body.contains("Error: invalid_request"),
            "{}",
            page.body
        );
        assert!(!page.body.contains("evil.example"), "{}", page.body);
    }
    // Unknown client: also a page.
    let page = browser
        .get(&authorize_url(
            &app,
            "assay_client_nope",
            CLI_REDIRECT,
            &challenge,
            "mcp:read",
        ))
        .await;
    assert_eq!(page.status, 400);
    assert_eq!(page.header("location"), None);
    app.stop().await;
}

#[tokio::test]
async fn an_invalid_request_with_a_trusted_redirect_goes_back_with_error_state_and_iss() {
    let app = TestApp::start().await;
    let mut browser = Browser::new(&app);
    // `plain` PKCE is refused, back at the client's redirect.
    let url = authorize_url(&app, CLI, CLI_REDIRECT, "x".repeat(43).as_str(), "mcp:read")
        .replace("code_challenge_method=S256", "code_challenge_method=plain");
    let answer = browser.get(&url).await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let q = redirect_query(answer.location());
    assert_eq!(q["error"], "invalid_request");
    assert_eq!(q["state"], STATE);
    assert_eq!(q["iss"], app.base);
    assert!(answer.location().starts_with(&format!("{CLI_REDIRECT}?")));
    app.stop().await;
}

#[tokio::test]
async fn forms_without_a_matching_csrf_token_or_from_another_origin_are_refused() {
    let app = TestApp::start().await;
    let mut browser = Browser::new(&app);
    let (_, challenge) = pkce();
    let url = authorize_url(&app, CLI, CLI_REDIRECT, &challenge, "mcp:read");
    let login = browser.get(&url).await;
    let action = app.url("/oauth/authorize");
    let good = submit(
        &login.body,
        &[
            ("email", &app.owner_email),
            ("password", &app.owner_password),
        ],
    );
    let expired = "This form has expired or was not sent from this site. Go back, reload the page and try again.";

    // No field.
    let no_field: Vec<_> = good.iter().filter(|(k, _)| k != "csrf").cloned().collect();
    let page = browser.post(&action, &no_field).await;
    assert_eq!(page.status, 403);
    assert_page_headers(&page, "");
    assert!(page.body.contains(expired), "{}", page.body);
    assert!(
        page.set_cookies().is_empty(),
        "no session on a refused login"
    );

    // Mismatched field.
    let other = submit(
        &login.body,
        &[
            ("csrf", &"A".repeat(43)),
            ("email", &app.owner_email),
            ("password", &app.owner_password),
        ],
    );
    let page = browser.post(&action, &other).await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains(expired));

    // No cookie (a cross-site POST that SameSite withheld it from).
    let saved = std::mem::take(&mut browser.jar);
    let page = browser.post(&action, &good).await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains(expired));
    browser.jar = saved;

    // Another origin, even with matching tokens.
    browser.origin = "http://evil.example".into();
    let page = browser.post(&action, &good).await;
    assert_eq!(page.status, 403);
    assert!(
        page.body
            .contains("This form was sent from another website, so it was not accepted.")
    );

    // The same form from our own origin works.
    browser.origin = app.base.clone();
    let page = browser.post(&action, &good).await;
    assert_eq!(page.status, 303);
    app.stop().await;
}

#[tokio::test]
async fn failed_logins_get_one_generic_message_then_429_with_retry_after() {
    let app = TestApp::start().await;
    let mut browser = Browser::new(&app);
    let (_, challenge) = pkce();
    let login = browser
        .get(&authorize_url(
            &app,
            CLI,
            CLI_REDIRECT,
            &challenge,
            "mcp:read",
        ))
        .await;
    let action = app.url("/oauth/authorize");
    let generic = "<p class=\"error\" role=\"alert\">Incorrect email or password.</p>";
    // Unknown email and wrong password look the same.
    let unknown = browser
        .post(
            &action,
            &submit(
                &login.body,
                &[("email", "nobody@example.com"), ("password", "x")],
            ),
        )
        .await;
    assert_eq!(unknown.status, 400);
    assert_page_headers(&unknown, &format!(" {CLI_REDIRECT_ORIGIN}"));
    assert!(unknown.body.contains(generic), "{}", unknown.body);
    assert!(unknown.body.contains("value=\"nobody@example.com\""));
    for attempt in 1..=5 {
        let wrong = browser
            .post(
                &action,
                &submit(
                    &login.body,
                    &[("email", &app.owner_email), ("password", "wrong")],
                ),
            )
            .await;
        assert_eq!(wrong.status, 400, "attempt {attempt}");
        assert!(wrong.body.contains(generic));
        assert_eq!(wrong.header("retry-after"), None);
        assert!(!wrong.jar_has_session());
    }
    // Five failures for this email: locked for the window, even with the right password.
    let limited = browser
        .post(
            &action,
            &submit(
                &login.body,
                &[
                    ("email", &app.owner_email),
                    ("password", &app.owner_password),
                ],
            ),
        )
        .await;
    assert_eq!(limited.status, 429);
    assert_page_headers(&limited, &format!(" {CLI_REDIRECT_ORIGIN}"));
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((840..=900).contains(&retry), "{retry}");
    assert!(
        limited
            .body
            .contains("Too many failed sign-in attempts. Try again in 15 minutes."),
        "{}",
        limited.body
    );
    assert!(limited.set_cookies().is_empty());
    app.stop().await;
}

impl Answer {
    fn jar_has_session(&self) -> bool {
        self.set_cookies()
            .iter()
            .any(|c| c.starts_with("assay_session="))
    }
}

#[tokio::test]
async fn denying_consent_redirects_with_access_denied_state_and_iss() {
    let app = TestApp::start().await;
    let mut browser = Browser::new(&app);
    let (_, challenge) = pkce();
    let consent = consent_page(
        &app,
        &mut browser,
        &authorize_url(&app, CLI, CLI_REDIRECT, &challenge, "mcp:read"),
    )
    .await;
    let denied = browser
        .post(
            &app.url("/oauth/authorize"),
            &submit(&consent.body, &[("action", "deny")]),
        )
        .await;
    assert_eq!(denied.status, 303);
    assert_eq!(denied.header("cache-control"), Some("no-store"));
    let q = redirect_query(denied.location());
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], STATE);
    assert_eq!(q["iss"], app.base);
    assert!(!q.contains_key("code"));
    app.stop().await;
}

#[tokio::test]
async fn a_grant_of_less_than_asked_gives_tokens_of_that_scope_and_logout_ends_the_session() {
    let app = TestApp::start().await;
    let mut browser = Browser::new(&app);
    let (code, verifier) = authorized_code(&app, &mut browser, "mcp:read").await;
    let t = exchange_cli_code(&app, &code, &verifier).await;
    assert_eq!(t.json()["scope"], "mcp:read");

    // Asked for write, granted read only.
    let (verifier, challenge) = pkce();
    let url = authorize_url(&app, CLI, CLI_REDIRECT, &challenge, "mcp:write");
    let consent = browser.get(&url).await;
    assert!(
        consent.body.contains("value=\"mcp:write\" checked>"),
        "signed in: straight to consent"
    );
    let done = browser
        .post(
            &app.url("/oauth/authorize"),
            &submit(
                &consent.body,
                &[("action", "approve"), ("granted_scope", "mcp:read")],
            ),
        )
        .await;
    assert_eq!(done.status, 303);
    let code = redirect_query(done.location())["code"].clone();
    let t = exchange_cli_code(&app, &code, &verifier).await;
    assert_eq!(t.json()["scope"], "mcp:read");

    // "Not you?": the session ends and the same request shows the login form.
    let consent = browser.get(&url).await;
    let switched = browser
        .post(
            &app.url("/oauth/authorize"),
            &submit(&consent.body, &[("action", "switch_user")]),
        )
        .await;
    assert_eq!(switched.status, 303);
    assert_eq!(
        url::Url::parse(&app.url(switched.location()))
            .unwrap()
            .query(),
        url::Url::parse(&url).unwrap().query()
    );
    assert_eq!(
        switched.set_cookies(),
        ["assay_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"]
    );
    let login = browser.get(&url).await;
    assert!(login.body.contains("Sign in to Assay"));
    let after = log_in(&app, &mut browser, &login, &app.url("/oauth/authorize")).await;
    assert_eq!(after.status, 303);

    // Logout: the page, then the POST (303 back to the page), then the login form again.
    let page = browser.get(&app.url("/oauth/logout")).await;
    assert_eq!(page.status, 200);
    assert_page_headers(&page, "");
    assert!(
        page.body
            .contains(&format!("You are signed in as {}.", app.owner_email))
    );
    let out = browser
        .post(&app.url("/oauth/logout"), &hidden_fields(&page.body))
        .await;
    assert_eq!(out.status, 303);
    assert_eq!(out.location(), "/oauth/logout");
    assert!(
        out.set_cookies()
            .contains(&"assay_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")
    );
    let again = browser.get(&url).await;
    assert!(again.body.contains("Sign in to Assay"));
    app.stop().await;
}

#[tokio::test]
async fn https_public_urls_get_host_prefixed_secure_cookies() {
    let app = TestApp::start_with(|config| {
        config.public_url = url::Url::parse("https://assay.example.com/").unwrap();
    })
    .await;
    let mut browser = Browser::new(&app);
    let (_, challenge) = pkce();
    let page = browser
        .get(&authorize_url(
            &app,
            CLI,
            CLI_REDIRECT,
            &challenge,
            "mcp:read",
        ))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let cookies = page.set_cookies();
    assert_eq!(cookies.len(), 1);
    let (pair, attributes) = cookies[0].split_once(';').unwrap();
    assert!(pair.starts_with("__Host-assay_csrf="), "{pair}");
    assert_eq!(attributes, " Path=/; HttpOnly; SameSite=Lax; Secure");
    // Forms must come from the https origin.
    let page = browser
        .post(
            &app.url("/oauth/authorize"),
            &submit(&page.body, &[("email", "a@b.c"), ("password", "x")]),
        )
        .await;
    assert_eq!(page.status, 403);
    assert_page_headers(&page, "");
    assert!(
        page.body
            .contains("This form was sent from another website, so it was not accepted."),
        "{}",
        page.body
    );
    assert!(page.set_cookies().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn the_token_endpoint_answers_oauth_json_errors_without_caching() {
    let app = TestApp::start().await;
    let unsupported = token_request(&app, &[("grant_type", "password"), ("client_id", CLI)]).await;
    assert_eq!(unsupported.status, 400);
    assert_json_headers(&unsupported);
    assert_eq!(
        unsupported.json(),
        json!({"error": "unsupported_grant_type",
               "error_description": "supported grant types: authorization_code, refresh_token, device_code"})
    );
    let unknown = token_request(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "assay_client_nope"),
            ("code", "x"),
        ],
    )
    .await;
    assert_eq!(unknown.status, 401);
    assert_json_headers(&unknown);
    assert_eq!(
        unknown.json(),
        json!({"error": "invalid_client", "error_description": "unknown client_id"})
    );
    let bad_code = token_request(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", CLI),
            ("code", "assay_ac_nope"),
            ("redirect_uri", CLI_REDIRECT),
            ("code_verifier", &"v".repeat(43)),
        ],
    )
    .await;
    assert_eq!(bad_code.status, 400);
    assert_json_headers(&bad_code);
    assert_eq!(
        bad_code.json(),
        json!({"error": "invalid_grant",
               "error_description": "the authorization code is invalid, expired or already used"})
    );
    let repeated = token_request(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("grant_type", "refresh_token"),
        ],
    )
    .await;
    assert_eq!(repeated.status, 400);
    assert_eq!(
        repeated.json(),
        json!({"error": "invalid_request", "error_description": "grant_type was sent more than once"})
    );
    // JSON instead of a form.
    let res = http_client(None)
        .post(app.url("/oauth/token"))
        .json(&json!({"grant_type": "refresh_token"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"error": "invalid_request",
               "error_description": "the request body must be application/x-www-form-urlencoded"})
    );
    // Browser clients may call it.
    let preflight = http_client(None)
        .request(reqwest::Method::OPTIONS, app.url("/oauth/token"))
        .header("origin", "https://client.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    assert_eq!(
        preflight.headers()["access-control-allow-methods"],
        "POST, OPTIONS"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_token_endpoint_rate_limits_with_429_and_retry_after() {
    let app = TestApp::start().await;
    let mut last = None;
    // 60 requests a minute per IP (the requests above count too).
    for _ in 0..61 {
        last = Some(token_request(&app, &[("grant_type", "password")]).await);
    }
    let limited = last.unwrap();
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert_json_headers(&limited);
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(limited.json()["error"], "temporarily_unavailable");
    app.stop().await;
}

#[tokio::test]
async fn dynamic_registration_answers_201_with_the_client_and_oauth_errors() {
    let app = TestApp::start().await;
    let res = http_client(None)
        .post(app.url("/oauth/register"))
        .json(
            &json!({"client_name": "Editor", "redirect_uris": ["http://127.0.0.1/cb"],
                      "token_endpoint_auth_method": "none"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    assert_eq!(res.headers()["content-type"], "application/json");
    let client: Value = res.json().await.unwrap();
    let id = client["client_id"].as_str().unwrap();
    assert!(id.starts_with("assay_client_"), "{client}");
    assert_eq!(client["redirect_uris"], json!(["http://127.0.0.1/cb"]));
    assert_eq!(client["token_endpoint_auth_method"], "none");
    assert_eq!(client["client_name"], "Editor");
    assert!(client.get("client_secret").is_none());

    let res = http_client(None)
        .post(app.url("/oauth/register"))
        .json(&json!({"redirect_uris": ["javascript:alert(1)"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "invalid_redirect_uri"
    );

    let res = http_client(None)
        .post(app.url("/oauth/register"))
        .header("content-type", "application/json")
        .body("[1]")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"error": "invalid_client_metadata",
               "error_description": "the client metadata must be a JSON object"})
    );
    app.stop().await;
}

#[tokio::test]
async fn revocation_answers_200_for_unknown_tokens_and_ends_one_cli_login() {
    let app = TestApp::start().await;
    let unknown = post_form(
        &app,
        "/oauth/revoke",
        &[("token", "assay_rt_unknown"), ("client_id", CLI)],
    )
    .await;
    assert_eq!(unknown.status, 200);
    assert_eq!(unknown.body, "");
    assert_eq!(unknown.header("cache-control"), Some("no-store"));
    assert_eq!(unknown.header("access-control-allow-origin"), Some("*"));
    let missing = post_form(&app, "/oauth/revoke", &[("client_id", CLI)]).await;
    assert_eq!(missing.status, 400);
    assert_eq!(
        missing.json(),
        json!({"error": "invalid_request", "error_description": "the token parameter is required"})
    );

    // Two `assay login`s of one user (two machines): one grant, two sessions.
    let mut logins = Vec::new();
    for _ in 0..2 {
        let mut browser = Browser::new(&app);
        let (code, verifier) = authorized_code(&app, &mut browser, "mcp:read").await;
        let t = exchange_cli_code(&app, &code, &verifier).await.json();
        logins.push(t);
    }
    let (t, other) = (&logins[0], &logins[1]);
    let refresh = t["refresh_token"].as_str().unwrap();
    let revoked = post_form(
        &app,
        "/oauth/revoke",
        &[("token", refresh), ("client_id", CLI)],
    )
    .await;
    assert_eq!(revoked.status, 200);
    let again = token_request(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", CLI),
            ("refresh_token", refresh),
        ],
    )
    .await;
    assert_eq!(again.status, 400);
    assert_eq!(again.json()["error"], "invalid_grant");
    // The login's access token ends with it...
    let res = mcp_tools_list(&app, t["access_token"].as_str().unwrap()).await;
    assert_eq!(
        res.headers()["www-authenticate"],
        format!(
            r#"Bearer resource_metadata="{}/.well-known/oauth-protected-resource/organizations/default/environments/dev/mcp", scope="mcp:read", error="invalid_token""#,
            app.base
        )
        .as_str()
    );
    let body = expect_problem(res, 401, "unauthenticated").await;
    assert_eq!(
        body["detail"],
        "the sign-in session of the access token has ended"
    );
    // ...and the other login goes on.
    let res = mcp_tools_list(&app, other["access_token"].as_str().unwrap()).await;
    assert_eq!(res.status(), 200);
    let refreshed = token_request(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", CLI),
            ("refresh_token", other["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    app.stop().await;
}

#[tokio::test]
async fn the_device_flow_works_over_http_with_the_verification_page() {
    let app = TestApp::start_configured(
        |c| c.oauth.device_poll_interval = Duration::from_secs(1),
        |_| {},
    )
    .await;
    let started = post_form(
        &app,
        "/oauth/device",
        &[
            ("client_id", CLI),
            ("scope", "mcp:run"),
            ("resource", &mcp_resource(&app)),
        ],
    )
    .await;
    assert_eq!(started.status, 200, "{}", started.body);
    assert_json_headers(&started);
    let d = started.json();
    assert_eq!(d["verification_uri"], app.url("/oauth/device/verify"));
    let user_code = d["user_code"].as_str().unwrap();
    let device_code = d["device_code"].as_str().unwrap();
    let poll = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("client_id", CLI),
        ("device_code", device_code),
    ];
    let pending = token_request(&app, &poll).await;
    assert_eq!(pending.status, 400);
    assert_eq!(pending.json()["error"], "authorization_pending");

    let mut browser = Browser::new(&app);
    let login = browser
        .get(d["verification_uri_complete"].as_str().unwrap())
        .await;
    assert_eq!(login.status, 200);
    assert_page_headers(&login, "");
    assert!(login.body.contains("Sign in to Assay"));
    let after = log_in(&app, &mut browser, &login, &app.url("/oauth/device/verify")).await;
    assert_eq!(after.status, 303);
    let consent = browser.get(&app.url(after.location())).await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    assert_page_headers(&consent, "");
    assert!(
        consent.body.contains(&format!("<code>{user_code}</code>")),
        "{}",
        consent.body
    );
    assert!(consent.body.contains("value=\"mcp:run\" checked>"));
    let approved = browser
        .post(
            &app.url("/oauth/device/verify"),
            &submit(
                &consent.body,
                &[("action", "approve"), ("granted_scope", "mcp:run")],
            ),
        )
        .await;
    assert_eq!(approved.status, 303, "{}", approved.body);
    assert_eq!(approved.location(), "/oauth/device/verify?result=approved");
    let done = browser.get(&app.url(approved.location())).await;
    assert!(done.body.contains("Device connected"));

    tokio::time::sleep(Duration::from_millis(100)).await;
    let tokens = token_request(&app, &poll).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    assert_json_headers(&tokens);
    let t = tokens.json();
    assert_eq!(t["scope"], "mcp:read mcp:run");
    let res = mcp_tools_list(&app, t["access_token"].as_str().unwrap()).await;
    assert_eq!(res.status(), 200);

    // An unknown code on the page: the entry form again, with the reason.
    let unknown = browser
        .get(&app.url("/oauth/device/verify?user_code=BCDF-GHJK"))
        .await;
    assert_eq!(unknown.status, 400);
    assert!(
        unknown
            .body
            .contains("That code is unknown or has expired.")
    );
    app.stop().await;
}

#[tokio::test]
async fn codes_states_tokens_and_passwords_never_reach_the_log() {
    let (logs, _guard) = CapturedLogs::start();
    let app = TestApp::start().await;
    let mut browser = Browser::new(&app);
    let (code, verifier) = authorized_code(&app, &mut browser, "mcp:read").await;
    let t = exchange_cli_code(&app, &code, &verifier).await.json();
    let refresh = t["refresh_token"].as_str().unwrap();
    let revoked = post_form(&app, "/oauth/revoke", &[("token", refresh)]).await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    let password = app.owner_password.clone();
    app.stop().await;
    let text = logs.text();
    // The capture saw this test's own requests: their route templates are logged (the
    // same check as the URL-path log test in org.rs).
    for route in ["/oauth/authorize", "/oauth/token", "/oauth/revoke"] {
        assert!(text.contains(route), "{route} not logged:\n{text}");
    }
    let session = browser
        .jar
        .get("assay_session")
        .cloned()
        .unwrap_or_default();
    let csrf = browser.jar.get("assay_csrf").cloned().unwrap();
    for secret in [
        code.as_str(),
        &verifier,
        refresh,
        "st4te",
        &password,
        &csrf,
        &session,
    ]
    .into_iter()
    .filter(|s| !s.is_empty())
    {
        assert!(!text.contains(secret), "{secret} in the log");
    }
}

async fn register(app: &TestApp, metadata: Value) -> Answer {
    let res = http_client(None)
        .post(app.url("/oauth/register"))
        .json(&metadata)
        .send()
        .await
        .unwrap();
    Answer {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body: res.text().await.unwrap(),
    }
}

#[tokio::test]
async fn consent_is_remembered_for_a_client_with_a_web_redirect_but_shown_for_more_scope() {
    let app = TestApp::start().await;
    let redirect = "https://app.example.com/oauth/cb";
    let client = register(
        &app,
        json!({"client_name": "Web <Editor>", "redirect_uris": [redirect]}),
    )
    .await;
    assert_eq!(client.status, 201, "{}", client.body);
    let client_id = client.json()["client_id"].as_str().unwrap().to_owned();

    let mut browser = Browser::new(&app);
    let (_, challenge) = pkce();
    let url = authorize_url(&app, &client_id, redirect, &challenge, "mcp:read");
    let consent = consent_page(&app, &mut browser, &url).await;
    assert_page_headers(&consent, " https://app.example.com");
    assert!(
        consent
            .body
            .contains("Allow <strong>Web &lt;Editor&gt;</strong> to use Assay as you?")
    );
    assert!(
        consent
            .body
            .contains(&format!("(<code>{client_id}</code>)"))
    );
    assert!(consent.body.contains("<dd><code>app.example.com</code>"));
    assert!(
        !consent.body.contains("class=\"warning\""),
        "not localhost-only"
    );
    let first = browser
        .post(
            &app.url("/oauth/authorize"),
            &submit(
                &consent.body,
                &[("action", "approve"), ("granted_scope", "mcp:read")],
            ),
        )
        .await;
    assert_eq!(first.status, 303, "{}", first.body);
    assert!(first.location().starts_with(&format!("{redirect}?code=")));

    // The same request again: no page, straight back with a new code.
    let (_, challenge) = pkce();
    let again = browser
        .get(&authorize_url(
            &app, &client_id, redirect, &challenge, "mcp:read",
        ))
        .await;
    assert_eq!(again.status, 303, "{}", again.body);
    let q = redirect_query(again.location());
    assert!(q["code"].starts_with("assay_ac_"));
    assert_eq!(q["state"], STATE);
    assert_eq!(q["iss"], app.base);

    // More than was granted: the consent page again.
    let more = browser
        .get(&authorize_url(
            &app, &client_id, redirect, &challenge, "mcp:run",
        ))
        .await;
    assert_eq!(more.status, 200);
    assert!(more.body.contains("value=\"mcp:run\" checked>"));
    app.stop().await;
}

/// What `mcp:write` means, on the consent page and the device page alike: for the
/// first-party CLI it is the user's own level, organization administration included (that
/// scope sets no cap, see `assay_control::jwt_auth::scope_is_uncapped`); for any other
/// client it stays workflows and templates. The lower scopes read the same for both.
#[tokio::test]
async fn the_pages_say_what_the_top_scope_means_for_the_cli_and_for_other_clients() {
    let app = TestApp::start().await;
    let cli_write = "<label for=\"scope-write\"><code>mcp:write</code> — everything you can \
                     do yourself: also create, change and delete workflows and templates, and \
                     administer the organization (members, API tokens, audit) if your role \
                     allows it</label>";
    let other_write = "<label for=\"scope-write\"><code>mcp:write</code> — also create, \
                       change and delete workflows and templates</label>";
    let lower = [
        "<label for=\"scope-read\"><code>mcp:read</code> — see workflows, templates, \
         executions, logs and artifacts</label>",
        "<label for=\"scope-run\"><code>mcp:run</code> — also start and abort \
         executions</label>",
    ];
    let shows = |page: &Answer, write: &str, not: &str| {
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains(write), "{}", page.body);
        assert!(!page.body.contains(not), "{}", page.body);
        for text in lower {
            assert!(page.body.contains(text), "{text}: {}", page.body);
        }
    };

    // The CLI's consent page (browser login).
    let mut browser = Browser::new(&app);
    let (_, challenge) = pkce();
    let url = authorize_url(&app, CLI, CLI_REDIRECT, &challenge, "mcp:write");
    let consent = consent_page(&app, &mut browser, &url).await;
    assert!(consent.body.contains("Allow <strong>Assay CLI</strong>"));
    shows(&consent, cli_write, other_write);

    // The CLI's device page (`assay login --device`), in the same signed-in browser.
    let started = post_form(
        &app,
        "/oauth/device",
        &[
            ("client_id", CLI),
            ("scope", "mcp:write"),
            ("resource", &mcp_resource(&app)),
        ],
    )
    .await;
    assert_eq!(started.status, 200, "{}", started.body);
    let device = started.json();
    let page = browser
        .get(device["verification_uri_complete"].as_str().unwrap())
        .await;
    assert!(
        page.body.contains(&format!(
            "<code>{}</code>",
            device["user_code"].as_str().unwrap()
        )),
        "{}",
        page.body
    );
    shows(&page, cli_write, other_write);

    // A dynamically registered client keeps the narrower wording.
    let redirect = "https://app.example.com/oauth/cb";
    let client = register(
        &app,
        json!({"client_name": "Web Editor", "redirect_uris": [redirect]}),
    )
    .await;
    assert_eq!(client.status, 201, "{}", client.body);
    let client_id = client.json()["client_id"].as_str().unwrap().to_owned();
    let (_, challenge) = pkce();
    let page = browser
        .get(&authorize_url(
            &app,
            &client_id,
            redirect,
            &challenge,
            "mcp:write",
        ))
        .await;
    assert!(page.body.contains("Allow <strong>Web Editor</strong>"));
    shows(&page, other_write, cli_write);
    app.stop().await;
}

#[tokio::test]
async fn dynamic_registration_is_rate_limited_per_ip_with_429_and_retry_after() {
    let app = TestApp::start().await;
    let metadata = json!({"redirect_uris": ["http://127.0.0.1/cb"]});
    for n in 1..=10 {
        let ok = register(&app, metadata.clone()).await;
        assert_eq!(ok.status, 201, "registration {n}: {}", ok.body);
    }
    let limited = register(&app, metadata).await;
    assert_eq!(limited.status, 429);
    assert_json_headers(&limited);
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((3500..=3600).contains(&retry), "{retry}");
    assert_eq!(limited.json()["error"], "temporarily_unavailable");
    app.stop().await;
}
