//! rmcp's OAuth client (`auth` feature, rmcp =3.11.0) against the real `assay server`:
//! an unauthenticated connect gets the 401 whose challenge seeds discovery
//! (`AuthorizationRequest::with_challenge`: RFC 9728 → RFC 8414); dynamic client
//! registration; the authorization URL opened by a headless browser that signs in and
//! consents (oauth_support::Browser); the callback URL handed back (code, state, RFC 9207
//! `iss` checked by rmcp); code exchange with PKCE; an `AuthClient` transport; tools/list
//! and a read tool; an explicit refresh; then `run_workflow` with the mcp:read token gets
//! 403 insufficient_scope, and the client steps up the way rmcp offers it
//! (`request_scope_upgrade` → consent → code exchange) and retries on the same session.
//! The audit export must show the calls as the user, through OAuth, by that client.
//!
//! A second test signs in as the pre-registered first-party client `assay-cli` on a
//! loopback redirect with an arbitrary port (RFC 8252); its tokens are audited with the
//! method `cli_login` (what `assay login` holds) instead of `oauth`. A third registers by Client ID
//! Metadata Document (`AuthorizationRequest::with_client_metadata_url`): rmcp takes the
//! document's https URL as its client_id only when the server's metadata says
//! `client_id_metadata_document_supported` (otherwise it silently falls back to DCR, so
//! the test pins the client ID and the server's fetch of the document). The document is
//! served over https by oauth_support::MetadataDocumentServer with a throwaway CA the
//! server trusts through `SSL_CERT_FILE`, and the server may fetch from loopback because
//! of `--oauth-cimd-allow-private-networks`.

use super::harness::*;
use super::oauth_support::*;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::auth::{
    AuthClient, AuthorizationCallback, AuthorizationRequest, OAuthState, WWWAuthenticateParams,
};
use rmcp::transport::streamable_http_client::{
    InsufficientScopeError, StreamableHttpClientTransportConfig,
};
use serde_json::{Value, json};

const REDIRECT: &str = "http://127.0.0.1:38518/callback";
const CLIENT_NAME: &str = "Assay rmcp OAuth e2e";

fn client_config() -> ClientConfig {
    ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("assay-rmcp-oauth-e2e", "3.11.0"),
    )
}

fn http() -> reqwest::Client {
    assay_client::install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

/// The query parameters of a URL, as a map (the last value of a repeated name wins).
fn query(url: &str) -> std::collections::BTreeMap<String, String> {
    url::Url::parse(url)
        .expect("URL")
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The insufficient-scope error somewhere in an error's source chain.
fn insufficient_scope<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a InsufficientScopeError> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<InsufficientScopeError>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// The claims of the access token in a token response, unverified (the client only
/// reports what it holds). Read through serde: the accessor is a trait of the `oauth2`
/// crate, which rmcp does not re-export.
fn claims_of(response: &rmcp::transport::auth::OAuthTokenResponse) -> Value {
    let json = serde_json::to_value(response).expect("token response serializes");
    claims(json["access_token"].as_str().expect("access_token"))
}

/// The claims of a JWT, unverified.
fn claims(jwt: &str) -> Value {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).expect("a JWS has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// Discovery from the 401 of an unauthenticated connect: returns the challenge.
async fn challenge_of(url: &str) -> String {
    let transport = StreamableHttpClientTransport::with_client(
        http(),
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()),
    );
    let Err(error) = client_config().serve(transport).await else {
        panic!("an unauthenticated connect was accepted");
    };
    let challenge = error
        .auth_challenge()
        .unwrap_or_else(|| panic!("no WWW-Authenticate challenge in {error:?}"))
        .to_owned();
    let params = WWWAuthenticateParams::parse(&challenge, &url::Url::parse(url).expect("url"));
    assert_eq!(params.scope.as_deref(), Some("mcp:read"), "{challenge}");
    assert!(!params.is_insufficient_scope(), "{challenge}");
    challenge
}

fn run_args() -> serde_json::Map<String, Value> {
    json!({"workflowName": WORKFLOW_NAME})
        .as_object()
        .expect("object")
        .clone()
}

/// What the rmcp client saw; asserted by the tests.
struct Seen {
    client_id: String,
    first_authorization: std::collections::BTreeMap<String, String>,
    tokens: Vec<Value>,
    tools: Vec<String>,
    listed_total: Value,
    step_up_scope: Option<String>,
    step_up_header: String,
    upgrade_authorization: std::collections::BTreeMap<String, String>,
    started: Value,
}

/// How the client gets its client ID.
#[derive(Clone, Copy)]
enum Registration<'a> {
    /// RFC 7591 dynamic client registration.
    Dynamic,
    /// A client the server already knows.
    Preregistered(&'a str),
    /// A Client ID Metadata Document at this https URL.
    MetadataDocument(&'a str),
}

async fn flow(url: &str, registration: Registration<'_>) -> Seen {
    let challenge = challenge_of(url).await;
    let base = url::Url::parse(url).expect("url");

    let mut state = OAuthState::new(url, Some(http()))
        .await
        .expect("OAuth state");
    let mut request = AuthorizationRequest::new(REDIRECT)
        .with_challenge(challenge)
        .with_client_name(CLIENT_NAME);
    match registration {
        Registration::Dynamic => {}
        Registration::Preregistered(client_id) => {
            request = request.with_preregistered_client(client_id);
        }
        Registration::MetadataDocument(document) => {
            request = request.with_client_metadata_url(document);
        }
    }
    state
        .start_authorization(request)
        .await
        .expect("discovery and registration");
    let authorization_url = state.get_authorization_url().await.expect("URL");
    let first_authorization = query(&authorization_url);
    // rmcp asks for every scope the resource supports; the person grants only read (the
    // consent page lets them), so running something later needs a step-up.
    let mut browser = Browser::default();
    let callback = browser
        .approve(
            &authorization_url,
            MEMBER_EMAIL,
            MEMBER_PASSWORD,
            Some("mcp:read"),
        )
        .await;
    assert!(callback.starts_with(REDIRECT), "{callback}");
    state
        .handle_callback_url(&callback)
        .await
        .expect("code exchange (state and iss checked)");
    let manager = state
        .into_authorization_manager()
        .expect("authorized after the callback");
    let (client_id, first) = manager.get_credentials().await.expect("credentials");
    let mut tokens = vec![claims_of(&first.expect("tokens"))];

    // An explicit refresh (rotation); the transport then uses the new access token.
    let refreshed = manager.refresh_token().await.expect("refresh");
    tokens.push(claims_of(&refreshed));

    let auth_client = AuthClient::new(http(), manager);
    let transport = StreamableHttpClientTransport::with_client(
        auth_client.clone(),
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()),
    );
    let service = client_config()
        .serve(transport)
        .await
        .expect("connect with the access token");
    let tools = service
        .list_all_tools()
        .await
        .expect("tools/list")
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    let listed = service
        .call_tool(CallToolRequestParams::new("list_workflows"))
        .await
        .expect("list_workflows");
    assert_eq!(listed.is_error, Some(false), "{listed:?}");
    let listed_total = listed
        .structured_content
        .as_ref()
        .map(|s| s["total"].clone())
        .unwrap_or(Value::Null);

    // Step-up: 403 insufficient_scope, then the upgrade rmcp offers.
    let error = match service
        .call_tool(CallToolRequestParams::new("run_workflow").with_arguments(run_args()))
        .await
    {
        Err(error) => error,
        Ok(answer) => panic!(
            "run_workflow with an mcp:read token was not refused: {answer:?}\nrequested: {first_authorization:?}\ntokens: {tokens:?}"
        ),
    };
    let refused = insufficient_scope(&error)
        .unwrap_or_else(|| panic!("not an insufficient-scope refusal: {error:?}"));
    let step_up_scope = refused.get_required_scope().map(str::to_owned);
    let step_up_header = refused.www_authenticate_header.clone();
    assert!(
        WWWAuthenticateParams::parse(&step_up_header, &base).is_insufficient_scope(),
        "{step_up_header}"
    );
    let upgrade_url = {
        let manager = auth_client.auth_manager.lock().await;
        manager
            .request_scope_upgrade(
                step_up_scope
                    .as_deref()
                    .expect("the challenge names a scope"),
            )
            .await
            .expect("scope upgrade URL")
    };
    let upgrade_authorization = query(&upgrade_url);
    let callback = browser
        .approve(&upgrade_url, MEMBER_EMAIL, MEMBER_PASSWORD, None)
        .await;
    let answer = AuthorizationCallback::from_redirect_url(&callback).expect("callback");
    {
        let manager = auth_client.auth_manager.lock().await;
        let upgraded = manager
            .exchange_code_for_token_with_issuer(
                &answer.code,
                &answer.csrf_token,
                answer.issuer.as_deref(),
            )
            .await
            .expect("step-up code exchange");
        tokens.push(claims_of(&upgraded));
    }
    let started = service
        .call_tool(CallToolRequestParams::new("run_workflow").with_arguments(run_args()))
        .await
        .expect("run_workflow after the step-up");
    assert_eq!(started.is_error, Some(false), "{started:?}");
    service.cancel().await.expect("close");
    Seen {
        client_id,
        first_authorization,
        tokens,
        tools,
        listed_total,
        step_up_scope,
        step_up_header,
        upgrade_authorization,
        started: started.structured_content.unwrap_or(Value::Null),
    }
}

/// The whole flow against `server`, asserted; returns the client ID rmcp used.
fn scenario(server: &Server, registration: Registration<'_>) -> String {
    let user_id = member_and_workflow(server);
    let url = mcp_url(server);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let seen = rt.block_on(flow(&url, registration));
    let (issuer, resource) = (server.url.clone(), url.clone());

    // The authorization requests: PKCE S256, bound to the endpoint, the scopes asked.
    let first = &seen.first_authorization;
    assert_eq!(first["client_id"], seen.client_id, "{first:?}");
    assert_eq!(first["code_challenge_method"], "S256", "{first:?}");
    assert_eq!(first["resource"], resource, "{first:?}");
    assert_eq!(first["redirect_uri"], REDIRECT, "{first:?}");
    assert!(
        first["scope"].split(' ').any(|s| s == "mcp:read"),
        "{first:?}"
    );
    let upgrade = &seen.upgrade_authorization;
    assert!(
        upgrade["scope"].split(' ').any(|s| s == "mcp:run"),
        "{upgrade:?}"
    );
    assert_eq!(upgrade["resource"], resource, "{upgrade:?}");

    // The step-up challenge, exactly as the MCP spec has it.
    assert_eq!(seen.step_up_scope.as_deref(), Some("mcp:run"));
    assert_eq!(
        seen.step_up_header,
        format!(
            "Bearer error=\"insufficient_scope\", scope=\"mcp:run\", \
             resource_metadata=\"{issuer}/.well-known/oauth-protected-resource/organizations/default/environments/dev/mcp\", \
             error_description=\"this tool needs the mcp:run scope, which the access token does not carry; \
             the user's role allows it, so authorize again with scope mcp:run\""
        )
    );

    // Tokens: sign-in, refresh (never wider), step-up.
    let scopes: Vec<&str> = seen
        .tokens
        .iter()
        .map(|t| t["scope"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        scopes,
        ["mcp:read", "mcp:read", "mcp:read mcp:run"],
        "{:?}",
        seen.tokens
    );
    for t in &seen.tokens {
        assert_eq!(t["aud"], resource.as_str(), "{t}");
        assert_eq!(t["iss"], issuer.as_str(), "{t}");
        assert_eq!(t["sub"], user_id.as_str(), "{t}");
        assert_eq!(t["client_id"], seen.client_id.as_str(), "{t}");
    }
    assert_eq!(seen.tools, member_tools());
    assert_eq!(seen.listed_total, 1, "the member sees the one workflow");
    assert_eq!(
        seen.started["name"],
        format!("{WORKFLOW_NAME}-1").as_str(),
        "{}",
        seen.started
    );

    let events = audit_events(server);
    assert_audited_as_user(&events, &user_id, &seen.client_id, "workflow.list", None);
    assert_audited_as_user(
        &events,
        &user_id,
        &seen.client_id,
        "workflow.run",
        Some(&format!("workflow:{WORKFLOW_NAME}")),
    );
    assert!(
        events
            .iter()
            .any(|e| e["action"] == "oauth.token.refreshed"),
        "the refresh is audited"
    );
    seen.client_id
}

#[test]
fn rmcp_oauth_client_with_dynamic_registration() {
    let client_id = scenario(&Server::start(), Registration::Dynamic);
    assert!(client_id.starts_with("assay_client_"), "{client_id}");
}

#[test]
fn rmcp_oauth_client_as_the_first_party_cli_client() {
    let client_id = scenario(&Server::start(), Registration::Preregistered("assay-cli"));
    assert_eq!(client_id, "assay-cli");
}

#[test]
fn rmcp_oauth_client_with_client_id_metadata_document() {
    let certs = tempfile::tempdir().expect("tempdir");
    let (ca, cert, key) = test_ca(certs.path());
    let document = MetadataDocumentServer::start(&cert, &key, CLIENT_NAME, &[REDIRECT]);
    let server = Server::start_with(
        &["--oauth-cimd-allow-private-networks"],
        &[("SSL_CERT_FILE", ca.as_str())],
    );
    let client_id = scenario(&server, Registration::MetadataDocument(document.url()));
    assert_eq!(
        client_id,
        document.url(),
        "the document URL is the client_id"
    );
    assert!(
        document.url().starts_with("https://127.0.0.1:"),
        "{}",
        document.url()
    );
    assert!(document.fetches() >= 1, "the server fetched the document");
}
