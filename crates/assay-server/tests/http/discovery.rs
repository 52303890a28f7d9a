//! OAuth discovery over real HTTP: the RFC 9728 protected resource metadata of each MCP
//! endpoint and of the server, RFC 8414 and OIDC discovery — exact bodies built from the
//! configured public URL, never from the request's headers.

use crate::support::{TestApp, expect_problem};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PRM: &str = "/.well-known/oauth-protected-resource";
const AS: &str = "/.well-known/oauth-authorization-server";
const OIDC: &str = "/.well-known/openid-configuration";
const MCP: &str = "/organizations/default/environments/dev/mcp";

fn prm(resource: &str, issuer: &str, name: &str) -> Value {
    json!({
        "resource": resource,
        "authorization_servers": [issuer],
        "scopes_supported": ["mcp:read", "mcp:run", "mcp:write"],
        "bearer_methods_supported": ["header"],
        "resource_name": name
    })
}

fn authorization_server(issuer: &str) -> Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth/authorize"),
        "token_endpoint": format!("{issuer}/oauth/token"),
        "registration_endpoint": format!("{issuer}/oauth/register"),
        "revocation_endpoint": format!("{issuer}/oauth/revoke"),
        "device_authorization_endpoint": format!("{issuer}/oauth/device"),
        "jwks_uri": format!("{issuer}/oauth/jwks.json"),
        "scopes_supported": ["mcp:read", "mcp:run", "mcp:write", "offline_access"],
        "response_types_supported": ["code"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code"
        ],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "client_id_metadata_document_supported": true,
        "authorization_response_iss_parameter_supported": true
    })
}

fn openid_configuration(issuer: &str) -> Value {
    let mut doc = authorization_server(issuer);
    let members = doc.as_object_mut().unwrap();
    members.insert("subject_types_supported".into(), json!(["public"]));
    members.insert(
        "id_token_signing_alg_values_supported".into(),
        json!(["EdDSA"]),
    );
    doc
}

/// GETs a discovery document without credentials, checks the headers every one carries
/// and returns its JSON.
async fn fetch(app: &TestApp, url: &str) -> Value {
    let res = app.anon.get(url).send().await.unwrap();
    assert_eq!(res.status(), 200, "{url}");
    let h = res.headers();
    assert_eq!(h["content-type"], "application/json", "{url}");
    assert_eq!(h["cache-control"], "public, max-age=300", "{url}");
    assert_eq!(h["access-control-allow-origin"], "*", "{url}");
    assert_eq!(h["x-content-type-options"], "nosniff", "{url}");
    res.json().await.unwrap()
}

/// One raw HTTP/1.1 exchange, so the request carries exactly the given request target and
/// headers (a client library would set `Host` itself). Returns (status, lower-cased head,
/// body).
async fn raw(
    addr: SocketAddr,
    request_line: &str,
    headers: &[(&str, &str)],
) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!("{request_line}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut bytes))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// The `resource_metadata` parameter of an MCP 401 challenge.
fn resource_metadata_of(challenge: &str) -> String {
    let rest = challenge
        .strip_prefix(r#"Bearer resource_metadata=""#)
        .unwrap_or_else(|| panic!("unexpected challenge {challenge}"));
    rest[..rest.find('"').unwrap()].to_owned()
}

/// The challenge an MCP client gets without a token at `mcp_url`.
async fn challenge(app: &TestApp, mcp_url: &str) -> String {
    let res = app
        .anon
        .post(mcp_url)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "{mcp_url}");
    res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn discovery_documents_are_exact_and_public() {
    let app = TestApp::start().await;
    let issuer = app.base.clone();
    assert_eq!(
        fetch(&app, &app.url(&format!("{PRM}{MCP}"))).await,
        prm(&app.url(MCP), &issuer, "Assay MCP server (default/dev)")
    );
    // The root form names the server itself.
    assert_eq!(
        fetch(&app, &app.url(PRM)).await,
        prm(&issuer, &issuer, "Assay")
    );
    assert_eq!(
        fetch(&app, &app.url(AS)).await,
        authorization_server(&issuer)
    );
    assert_eq!(
        fetch(&app, &app.url(OIDC)).await,
        openid_configuration(&issuer)
    );
}

#[tokio::test]
async fn the_challenge_leads_to_the_metadata_of_the_url_the_client_called() {
    let app = TestApp::start().await;
    let mcp_url = app.url(MCP);
    let challenge = challenge(&app, &mcp_url).await;
    let metadata_url = resource_metadata_of(&challenge);
    assert_eq!(
        challenge,
        format!(r#"Bearer resource_metadata="{metadata_url}", scope="mcp:read""#)
    );
    assert_eq!(metadata_url, app.url(&format!("{PRM}{MCP}")));
    let doc = fetch(&app, &metadata_url).await;
    assert_eq!(doc["resource"], mcp_url.as_str());
    // RFC 9728 §3.3 and RFC 8414 §3.3: the client then finds the authorization server's
    // metadata from the issuer named there, and that document names the same issuer.
    let issuer = doc["authorization_servers"][0].as_str().unwrap();
    assert_eq!(
        fetch(&app, &format!("{issuer}{AS}")).await["issuer"],
        issuer
    );
}

#[tokio::test]
async fn odd_organizations_and_environments_are_percent_encoded_and_never_looked_up() {
    let app = TestApp::start().await;
    // Existing by ID, existing by slug, unknown, and values a URL must escape: each is
    // answered from the URL alone, so the answers say nothing about which tenants exist.
    let org_id = app.org_id.to_string();
    for (org, env) in [
        (org_id.as_str(), "dev"),
        ("default", "dev"),
        ("no-such-org", "no-such-env"),
        ("a%20b%2Fc", "x%22y%3Fz%23%C3%A9"),
        ("a-b.c_d~e", "E1"),
    ] {
        let path = format!("/organizations/{org}/environments/{env}/mcp");
        let mcp_url = app.url(&path);
        let challenge = challenge(&app, &mcp_url).await;
        let metadata_url = resource_metadata_of(&challenge);
        assert_eq!(
            metadata_url,
            app.url(&format!("{PRM}{path}")),
            "{org}/{env}"
        );
        let decoded = |s: &str| {
            s.replace("%20", " ")
                .replace("%2F", "/")
                .replace("%22", "\"")
                .replace("%3F", "?")
                .replace("%23", "#")
                .replace("%C3%A9", "é")
        };
        assert_eq!(
            fetch(&app, &metadata_url).await,
            prm(
                &mcp_url,
                &app.base,
                &format!("Assay MCP server ({}/{})", decoded(org), decoded(env))
            ),
            "{org}/{env}"
        );
    }
}

#[tokio::test]
async fn values_no_resource_url_can_spell_are_not_found() {
    let app = TestApp::start().await;
    for target in [
        format!("{PRM}/organizations/%2e%2e/environments/dev/mcp"),
        format!("{PRM}/organizations/default/environments/%2E/mcp"),
    ] {
        let (status, head, body) = raw(
            app.addr,
            &format!("GET {target} HTTP/1.1"),
            &[("Host", &app.addr.to_string())],
        )
        .await;
        assert_eq!(status, 404, "{target}: {body}");
        assert!(
            head.contains("content-type: application/problem+json"),
            "{head}"
        );
        // Readable cross-origin, so a browser client can fall back to the root form.
        assert!(head.contains("access-control-allow-origin: *"), "{head}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["type"], "urn:assay:problem:not-found", "{body}");
    }
    // The MCP endpoint at such a URL does not exist either (no challenge naming it).
    let (status, head, _) = raw(
        app.addr,
        "GET /organizations/%2e%2e/environments/dev/mcp HTTP/1.1",
        &[
            ("Host", &app.addr.to_string()),
            ("Accept", "text/event-stream"),
        ],
    )
    .await;
    assert_eq!(status, 404);
    assert!(!head.contains("www-authenticate"), "{head}");
}

#[tokio::test]
async fn forged_host_and_forwarded_headers_change_nothing() {
    let app = TestApp::start().await;
    let forged: &[(&str, &str)] = &[
        ("Host", "evil.example"),
        ("X-Forwarded-Host", "evil.example"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Prefix", "/evil"),
        ("Forwarded", "host=evil.example;proto=https"),
    ];
    for path in [
        format!("{PRM}{MCP}"),
        PRM.to_owned(),
        AS.to_owned(),
        OIDC.to_owned(),
    ] {
        let expected = fetch(&app, &app.url(&path)).await;
        // Origin-form and absolute-form request targets alike.
        for line in [
            format!("GET {path} HTTP/1.1"),
            format!("GET http://evil.example{path} HTTP/1.1"),
        ] {
            let (status, _, body) = raw(app.addr, &line, forged).await;
            assert_eq!(status, 200, "{line}");
            let body: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(body, expected, "{line}");
            assert!(!body.to_string().contains("evil"), "{body}");
        }
    }
    // Nor do they change the MCP endpoint's challenge.
    let (status, head, _) = raw(
        app.addr,
        &format!("POST {MCP} HTTP/1.1"),
        &[
            ("Host", &app.addr.to_string()),
            ("X-Forwarded-Host", "evil.example"),
            ("X-Forwarded-Proto", "https"),
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("Content-Length", "0"),
        ],
    )
    .await;
    assert_eq!(status, 401);
    let expected = format!(
        r#"www-authenticate: bearer resource_metadata="{}", scope="mcp:read""#,
        app.url(&format!("{PRM}{MCP}")).to_ascii_lowercase()
    );
    assert!(head.contains(&expected), "{head}");
}

#[tokio::test]
async fn head_preflight_and_other_methods() {
    let app = TestApp::start().await;
    let url = app.url(&format!("{PRM}{MCP}"));
    let res = app.anon.head(&url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(res.headers()["cache-control"], "public, max-age=300");
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    assert!(res.bytes().await.unwrap().is_empty());

    // A browser's preflight for a GET carrying MCP-Protocol-Version.
    for path in [
        format!("{PRM}{MCP}"),
        PRM.to_owned(),
        AS.to_owned(),
        OIDC.to_owned(),
    ] {
        let res = app
            .anon
            .request(reqwest::Method::OPTIONS, app.url(&path))
            .header("origin", "https://client.example")
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "mcp-protocol-version")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 204, "{path}");
        let h = res.headers();
        assert_eq!(h["access-control-allow-origin"], "*", "{path}");
        assert_eq!(
            h["access-control-allow-methods"], "GET, HEAD, OPTIONS",
            "{path}"
        );
        assert_eq!(h["access-control-allow-headers"], "*", "{path}");
        assert_eq!(h["access-control-max-age"], "86400", "{path}");
    }

    // Documents are read-only.
    let res = app.anon.post(&url).send().await.unwrap();
    assert_eq!(res.headers()["allow"], "GET,HEAD,OPTIONS");
    expect_problem(res, 405, "method-not-allowed").await;
    // A token changes nothing: the documents are the same for everyone.
    let res = app.client.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), fetch(&app, &url).await);
}

#[tokio::test]
async fn a_public_url_with_a_path_prefix_inserts_the_well_known_segment_before_it() {
    // As behind a proxy that serves Assay at /assay and strips that prefix: the MCP endpoint
    // reaches the server at /organizations/…, the origin-wide well-known URLs unchanged.
    let app =
        TestApp::start_with(|cfg| cfg.public_url = cfg.public_url.join("assay/").unwrap()).await;
    let issuer = format!("{}/assay", app.base);
    let mcp_resource = format!("{issuer}{MCP}");
    let doc = prm(&mcp_resource, &issuer, "Assay MCP server (default/dev)");
    assert_eq!(
        fetch(&app, &app.url(&format!("{PRM}/assay{MCP}"))).await,
        doc
    );

    let challenge = challenge(&app, &app.url(MCP)).await;
    assert_eq!(
        resource_metadata_of(&challenge),
        app.url(&format!("{PRM}/assay{MCP}"))
    );

    // The base resource: path-inserted, and at the root clients fall back to.
    for path in [format!("{PRM}/assay"), PRM.to_owned()] {
        assert_eq!(
            fetch(&app, &app.url(&path)).await,
            prm(&issuer, &issuer, "Assay"),
            "{path}"
        );
    }
    // RFC 8414 §3.1 path-inserted; OIDC path-inserted, and appended to the issuer
    // (`{issuer}/.well-known/openid-configuration`, which the proxy forwards stripped).
    for path in [format!("{AS}/assay"), AS.to_owned()] {
        assert_eq!(
            fetch(&app, &app.url(&path)).await,
            authorization_server(&issuer),
            "{path}"
        );
    }
    for path in [format!("{OIDC}/assay"), OIDC.to_owned()] {
        assert_eq!(
            fetch(&app, &app.url(&path)).await,
            openid_configuration(&issuer),
            "{path}"
        );
    }
    // No document claims a resource outside the prefix.
    let res = app
        .anon
        .get(app.url(&format!("{PRM}{MCP}")))
        .send()
        .await
        .unwrap();
    expect_problem(res, 404, "not-found").await;
}

#[tokio::test]
async fn a_public_url_that_cannot_be_an_issuer_serves_no_discovery() {
    // RFC 8414 §2: an issuer has no userinfo, query or fragment. The API still works; the
    // challenge then only asks for a scope (the error is logged at start).
    let app = TestApp::start_with(|cfg| {
        cfg.public_url.set_query(Some("x=1"));
    })
    .await;
    for path in [
        format!("{PRM}{MCP}"),
        PRM.to_owned(),
        AS.to_owned(),
        OIDC.to_owned(),
    ] {
        let res = app.anon.get(app.url(&path)).send().await.unwrap();
        expect_problem(res, 404, "not-found").await;
    }
    assert_eq!(
        challenge(&app, &app.url(MCP)).await,
        r#"Bearer scope="mcp:read""#
    );
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
}
