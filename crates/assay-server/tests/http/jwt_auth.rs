//! OAuth access tokens (this server's own JWTs) at the MCP endpoint and the REST API:
//! minted with the control plane's key ring for the bootstrapped owner, accepted where
//! API tokens are, refused with the exact 401 otherwise.

use crate::support::{TestApp, expect_problem, http_client};
use assay_auth::jwt::{AccessTokenClaims, AccessTokenRequest, KeyRing};
use assay_auth::scope::McpScope;
use assay_core::Organization;
use assay_core::oauth::{OAuthClient, OAuthClientKind, OAuthGrant};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::time::Duration;
use time::OffsetDateTime;

const PROTOCOL: &str = "2025-11-25";
const CLIENT_ID: &str = "https://client.example/oauth.json";
const GRANT_ID: &str = "0190d1c2-0000-7000-8000-0000000000aa";
const REST_CHALLENGE: &str = r#"Bearer realm="assay", error="invalid_token""#;

fn mcp_path(env: &str) -> String {
    format!("/organizations/default/environments/{env}/mcp")
}

/// The resource URL of an MCP endpoint (the token audience), as `PublicBase` spells it.
fn resource(app: &TestApp, path: &str) -> String {
    format!("{}{path}", app.base)
}

fn mcp_challenge(app: &TestApp, path: &str) -> String {
    format!(
        r#"Bearer resource_metadata="{}/.well-known/oauth-protected-resource{path}", scope="mcp:read", error="invalid_token""#,
        app.base
    )
}

/// The bootstrapped owner's ID, after recording the owner's consent for [`CLIENT_ID`]:
/// the live grant (ID [`GRANT_ID`]) that every token minted here names in `gid`.
async fn owner_id(app: &TestApp) -> String {
    let owner = app
        .store
        .find_user_by_email(&app.owner_email)
        .await
        .unwrap()
        .unwrap();
    let now = OffsetDateTime::now_utc();
    app.store
        .insert_oauth_client(&OAuthClient {
            id: CLIENT_ID.into(),
            kind: OAuthClientKind::MetadataDocument,
            client_name: "Test client".into(),
            redirect_uris: vec!["https://client.example/cb".into()],
            created_at: now,
            last_used_at: None,
            expires_at: None,
        })
        .await
        .unwrap();
    let grant = app
        .store
        .upsert_oauth_grant(&OAuthGrant {
            id: uuid::Uuid::parse_str(GRANT_ID).unwrap(),
            org_id: app.org_id,
            user_id: owner.id,
            client_id: CLIENT_ID.into(),
            scope: McpScope::Write.to_scope_string(),
            resource: app.base.clone(),
            created_at: now,
            revoked_at: None,
            revoked_reason: None,
        })
        .await
        .unwrap();
    assert_eq!(grant.id.to_string(), GRANT_ID);
    owner.id.to_string()
}

/// A token from the server's own ring.
fn mint(
    ring: &KeyRing,
    issuer: &str,
    subject: &str,
    audience: &str,
    scope: McpScope,
    now: OffsetDateTime,
) -> (String, AccessTokenClaims) {
    ring.issue(
        issuer,
        &AccessTokenRequest {
            subject,
            audience,
            client_id: CLIENT_ID,
            scope,
            lifetime: Duration::from_secs(600),
            grant_id: GRANT_ID,
            session_id: None,
        },
        now,
    )
    .unwrap()
}

/// Signs `claims` with the ring's current key under an arbitrary header.
fn sign(ring: &KeyRing, header: &Header, claims: &Value) -> String {
    let der = ring.current().to_pkcs8_der();
    jsonwebtoken::encode(header, claims, &EncodingKey::from_ed_der(&der)).unwrap()
}

fn eddsa_header(kid: &str) -> Header {
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some("at+jwt".into());
    header.kid = Some(kid.into());
    header
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

async fn rpc(token: &str, url: &str, body: Value) -> reqwest::Response {
    http_client(Some(token))
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", PROTOCOL)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The JSON-RPC message of a JSON or SSE body.
async fn message(res: reqwest::Response) -> Value {
    let text = res.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|_| {
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .rfind(|m| m.get("id").is_some())
            .unwrap_or(Value::Null)
    })
}

fn tools_list() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
}

fn call(tool: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
    "params": {"name": tool, "arguments": arguments, "_meta": {
        "io.modelcontextprotocol/clientInfo": {"name": "assay-http-test", "version": "1.0.0"}
    }}})
}

async fn audit_events(app: &TestApp, query: &str) -> Vec<Value> {
    let res = app
        .client
        .get(app.url(&format!("/v1/organizations/default/audit/events?{query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    body.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Asserts the MCP endpoint at `path` refuses `token` with `detail`.
async fn refused_at_mcp(app: &TestApp, path: &str, token: &str, detail: &str) {
    let res = rpc(token, &app.url(path), tools_list()).await;
    assert_eq!(
        res.headers()["www-authenticate"],
        mcp_challenge(app, path).as_str(),
        "{detail}"
    );
    let body = expect_problem(res, 401, "unauthenticated").await;
    assert_eq!(body["detail"], detail, "{body}");
}

/// Asserts a REST GET refuses `token` with `detail`.
async fn refused_at_rest(app: &TestApp, token: &str, detail: &str) {
    let res = http_client(Some(token))
        .get(app.env_url("/workflows"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["www-authenticate"],
        REST_CHALLENGE,
        "{detail}"
    );
    let body = expect_problem(res, 401, "unauthenticated").await;
    assert_eq!(body["detail"], detail, "{body}");
}

#[tokio::test]
async fn a_valid_access_token_is_accepted_at_mcp_and_rest() {
    let app = TestApp::start().await;
    let ring = app.plane.key_ring();
    let sub = owner_id(&app).await;
    let now = OffsetDateTime::now_utc();
    let dev = mcp_path("dev");

    let (token, _) = mint(
        &ring,
        &app.base,
        &sub,
        &resource(&app, &dev),
        McpScope::Write,
        now,
    );
    let res = rpc(&token, &app.url(&dev), tools_list()).await;
    assert_eq!(res.status(), 200);
    let list = message(res).await;
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"run_workflow"), "{list}");
    let res = rpc(&token, &app.url(&dev), call("list_workflows", json!({}))).await;
    assert_eq!(res.status(), 200);
    let listed = message(res).await;
    assert_eq!(listed["result"]["isError"], false, "{listed}");

    // The base resource is accepted at MCP and REST alike.
    let (base_token, _) = mint(&ring, &app.base, &sub, &app.base, McpScope::Read, now);
    let res = rpc(&base_token, &app.url(&dev), tools_list()).await;
    assert_eq!(res.status(), 200);
    let res = http_client(Some(&base_token))
        .get(app.env_url("/workflows"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // A REST call does not accept an MCP endpoint's resource.
    refused_at_rest(&app, &token, "the access token is for another resource").await;

    // The operations are on the record as the user, through OAuth, by the client.
    let events = audit_events(&app, "action=workflow.list&outcome=success").await;
    assert_eq!(events.len(), 2, "{events:?}");
    for event in &events {
        assert_eq!(event["actor"]["kind"], "user", "{event}");
        assert_eq!(event["actor"]["id"], sub.as_str(), "{event}");
        assert_eq!(event["actor"]["name"], "Administrator", "{event}");
        assert_eq!(event["actor"]["auth_method"], "oauth", "{event}");
        assert_eq!(event["actor"]["credential_id"], CLIENT_ID, "{event}");
    }
}

#[tokio::test]
async fn invalid_access_tokens_are_refused_with_the_exact_401() {
    let app = TestApp::start().await;
    let ring = app.plane.key_ring();
    let kid = ring.current().kid().to_owned();
    let sub = owner_id(&app).await;
    let now = OffsetDateTime::now_utc();
    let dev = mcp_path("dev");
    let dev_aud = resource(&app, &dev);
    let base = app.base.clone();

    // (token at MCP dev, token at REST, reason)
    let mut cases: Vec<(String, String, &str)> = Vec::new();
    let both = |aud: &str, f: &dyn Fn(&str) -> String| (f(aud), f(&base));

    let (m, r) = both(&dev_aud, &|_| {
        mint(
            &ring,
            &base,
            &sub,
            &resource(&app, &mcp_path("prod")),
            McpScope::Read,
            now,
        )
        .0
    });
    cases.push((m, r, "the access token is for another resource"));

    let (m, r) = both(&dev_aud, &|aud| {
        mint(
            &ring,
            "https://evil.example",
            &sub,
            aud,
            McpScope::Read,
            now,
        )
        .0
    });
    cases.push((m, r, "the access token was issued by another issuer"));

    let past = now - time::Duration::hours(1);
    let (m, r) = both(&dev_aud, &|aud| {
        mint(&ring, &base, &sub, aud, McpScope::Read, past).0
    });
    cases.push((m, r, "the access token has expired"));

    let claims = |aud: &str| {
        json!({"iss": base, "sub": sub, "aud": aud, "client_id": CLIENT_ID,
        "scope": "mcp:read", "iat": now.unix_timestamp(),
        "exp": now.unix_timestamp() + 600, "jti": "nbf-test", "gid": GRANT_ID})
    };
    let (m, r) = both(&dev_aud, &|aud| {
        let mut c = claims(aud);
        c["nbf"] = json!(now.unix_timestamp() + 300);
        sign(&ring, &eddsa_header(&kid), &c)
    });
    cases.push((m, r, "the access token is not valid yet"));

    let (m, r) = both(&dev_aud, &|aud| {
        let header = json!({"alg": "none", "typ": "at+jwt", "kid": kid});
        format!("{}.{}.AAAA", b64(&header), b64(&claims(aud)))
    });
    cases.push((
        m,
        r,
        "the access token algorithm is not accepted; only EdDSA is",
    ));

    // HS256 "signed" with the public key from the JWKS: the classic key-confusion forgery.
    let public_x = ring.current().public_jwk()["x"]
        .as_str()
        .unwrap()
        .to_owned();
    let public = URL_SAFE_NO_PAD.decode(public_x).unwrap();
    let (m, r) = both(&dev_aud, &|aud| {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(
            &header,
            &claims(aud),
            &EncodingKey::from_secret(&public).unwrap(),
        )
        .unwrap()
    });
    cases.push((
        m,
        r,
        "the access token algorithm is not accepted; only EdDSA is",
    ));

    let stranger = KeyRing::generate().unwrap();
    let (m, r) = both(&dev_aud, &|aud| {
        mint(&stranger, &base, &sub, aud, McpScope::Read, now).0
    });
    cases.push((
        m,
        r,
        "the access token was not signed by a key of this server",
    ));

    let (m, r) = both(&dev_aud, &|aud| {
        let header = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid, "jku": "https://evil.example/jwks"});
        let token = sign(&ring, &eddsa_header(&kid), &claims(aud));
        let (_, rest) = token.split_once('.').unwrap();
        format!("{}.{rest}", b64(&header))
    });
    cases.push((
        m,
        r,
        "the access token header has a member that is not accepted",
    ));

    // Tampered payload: mcp:read widened to mcp:write, signature kept.
    let (m, r) = both(&dev_aud, &|aud| {
        let token = mint(&ring, &base, &sub, aud, McpScope::Read, now).0;
        let mut parts: Vec<&str> = token.split('.').collect();
        let mut payload: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        payload["scope"] = json!("mcp:write");
        let tampered = b64(&payload);
        parts[1] = &tampered;
        parts.join(".")
    });
    cases.push((m, r, "the access token signature is invalid"));

    // A JWT-shaped string goes to JWT validation, never to the API-token lookup.
    cases.push((
        "e30.e30.e30".into(),
        "e30.e30.e30".into(),
        "the access token algorithm is not accepted; only EdDSA is",
    ));

    // Revoked by jti.
    let (m_tok, m_claims) = mint(&ring, &base, &sub, &dev_aud, McpScope::Read, now);
    let (r_tok, r_claims) = mint(&ring, &base, &sub, &base, McpScope::Read, now);
    for c in [&m_claims, &r_claims] {
        let exp = OffsetDateTime::from_unix_timestamp(c.exp).unwrap();
        app.store.revoke_access_token(&c.jti, exp).await.unwrap();
    }
    cases.push((m_tok, r_tok, "the access token has been revoked"));

    for (at_mcp, at_rest, reason) in &cases {
        refused_at_mcp(&app, &dev, at_mcp, reason).await;
        refused_at_rest(&app, at_rest, reason).await;
    }

    // Not a member of the addressed organization: same refusal as an API token's.
    let other = Organization {
        id: uuid::Uuid::now_v7(),
        slug: "other".into(),
        name: "Other".into(),
        audit_retention_days: 30,
        created_at: now,
    };
    app.store.insert_org(&other).await.unwrap();
    let other_path = "/organizations/other/environments/dev/mcp";
    let (token, _) = mint(
        &ring,
        &base,
        &sub,
        &resource(&app, other_path),
        McpScope::Read,
        now,
    );
    refused_at_mcp(
        &app,
        other_path,
        &token,
        "the access token is not valid for this organization",
    )
    .await;
    let (token, _) = mint(&ring, &base, &sub, &base, McpScope::Read, now);
    let res = http_client(Some(&token))
        .get(app.url("/v1/organizations/other/environments/dev/workflows"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["www-authenticate"], REST_CHALLENGE);
    let body = expect_problem(res, 401, "unauthenticated").await;
    assert_eq!(
        body["detail"],
        "the access token is not valid for this organization"
    );

    // A disabled user's tokens stop at once.
    let (token, _) = mint(&ring, &base, &sub, &dev_aud, McpScope::Read, now);
    let mut owner = app
        .store
        .find_user_by_email(&app.owner_email)
        .await
        .unwrap()
        .unwrap();
    owner.disabled = true;
    app.store.update_user(&owner).await.unwrap();
    refused_at_mcp(
        &app,
        &dev,
        &token,
        "the user of the access token is disabled",
    )
    .await;

    // Every refusal is on the record as auth.failed with its reason, in the addressed
    // organization's chain (the two at `other` are in that organization's).
    let failed = audit_events(&app, "action=auth.failed").await;
    assert_eq!(failed.len(), cases.len() * 2 + 1, "{failed:?}");
    let reasons: Vec<&str> = failed.iter().filter_map(|e| e["reason"].as_str()).collect();
    let expected: Vec<&str> = cases
        .iter()
        .flat_map(|(_, _, reason)| [*reason, *reason])
        .chain(["the user of the access token is disabled"])
        .collect();
    assert_eq!(reasons, expected);
    let last = failed.last().unwrap();
    assert_eq!(last["outcome"], "denied", "{last}");
    assert_eq!(
        last["reason"], "the user of the access token is disabled",
        "{last}"
    );
    assert_eq!(last["actor"]["auth_method"], "oauth", "{last}");
    assert_eq!(last["actor"]["credential_id"], CLIENT_ID, "{last}");
}

#[tokio::test]
async fn a_read_scope_cannot_run_a_workflow() {
    let app = TestApp::start().await;
    app.create_workflow(
        "kind: TestWorkflow\nmetadata:\n  name: green\nspec:\n  steps:\n  - name: ok\n    shell: echo ok\n",
    )
    .await;
    let ring = app.plane.key_ring();
    let sub = owner_id(&app).await;
    let dev = mcp_path("dev");
    let (token, _) = mint(
        &ring,
        &app.base,
        &sub,
        &resource(&app, &dev),
        McpScope::Read,
        OffsetDateTime::now_utc(),
    );
    // The owner is an admin, but the token's scope caps it at read: the client is told to
    // step up (the exact challenge is asserted in `step_up`).
    let res = rpc(
        &token,
        &app.url(&dev),
        call("run_workflow", json!({"workflowName": "green"})),
    )
    .await;
    assert_eq!(res.status(), 403);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with(r#"Bearer error="insufficient_scope", scope="mcp:run", "#)
    );
    let refused = message(res).await;
    assert_eq!(refused["error"]["data"]["scope"], "mcp:run", "{refused}");
}

#[tokio::test]
async fn a_token_of_the_previous_key_survives_a_rotation_and_the_jwks_shows_both() {
    let app = TestApp::start().await;
    let sub = owner_id(&app).await;
    let dev = mcp_path("dev");
    let aud = resource(&app, &dev);
    let now = OffsetDateTime::now_utc();
    let before = app.plane.key_ring();
    let (old_token, _) = mint(&before, &app.base, &sub, &aud, McpScope::Read, now);

    app.plane.rotate_signing_key().await.unwrap();
    let after = app.plane.key_ring();
    assert_ne!(after.current().kid(), before.current().kid());
    assert_eq!(after.previous().unwrap().kid(), before.current().kid());
    let (new_token, _) = mint(&after, &app.base, &sub, &aud, McpScope::Read, now);
    for token in [&old_token, &new_token] {
        let res = rpc(token, &app.url(&dev), tools_list()).await;
        assert_eq!(res.status(), 200);
    }

    let res = app
        .anon
        .get(app.url("/oauth/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "public, max-age=300");
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    let jwks: Value = res.json().await.unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["kid"].as_str())
        .collect();
    assert_eq!(kids, [after.current().kid(), before.current().kid()]);
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("d").is_none())
    );

    // A second rotation retires the oldest key: its tokens stop.
    app.plane.rotate_signing_key().await.unwrap();
    refused_at_mcp(
        &app,
        &dev,
        &old_token,
        "the access token was not signed by a key of this server",
    )
    .await;
}
