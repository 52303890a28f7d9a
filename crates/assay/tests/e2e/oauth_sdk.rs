//! The official TypeScript MCP SDK (`@modelcontextprotocol/sdk`, pinned by
//! `scripts/node-tools`) signs in to the real `assay server` with OAuth 2.1 through an
//! `OAuthClientProvider` (oauth-sdk-client.mjs): discovery from the 401, registration by
//! DCR and — in a second run — by a Client ID Metadata Document served over https,
//! headless login and consent (scripts/oauth-browser.mjs drives the HTML forms), code
//! exchange with PKCE, tools/call, refresh (explicit, and automatic after the server
//! refuses a revoked access token), and step-up from mcp:read to mcp:run on
//! `run_workflow`. Then the audit export must show the calls as the user, through OAuth,
//! by that client.
//!
//! CIMD over https: the SDK (like the spec) only takes an https `clientMetadataUrl`. The
//! test makes a throwaway CA and a certificate for 127.0.0.1 with the `openssl` command
//! and serves the document with it (oauth_support::test_ca, MetadataDocumentServer, which
//! the rmcp test shares); the server trusts the CA through `SSL_CERT_FILE`
//! (rustls-platform-verifier reads it on Linux) and may fetch from loopback because of
//! `--oauth-cimd-allow-private-networks`.
//!
//! Refresh is not forced by expiry: validation allows 60 s of clock skew after `exp`,
//! so even a one-second token lifetime would cost a minute of waiting. Revoking the
//! access token (RFC 7009) makes the next call answer 401 at once, which is what makes a
//! client refresh in the field too.
//!
//! Needs Node 22 and the SDK (`ASSAY_TEST_NODE`, `ASSAY_TEST_NODE_MODULES`; scripts/test
//! sets both); without them these tests say SKIPPED on stderr and return.

use super::harness::*;
use super::mcp_sdk::node_tools;
use super::oauth_support::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const CLIENT_SCRIPT: &str = "oauth-sdk-client.mjs";
const BROWSER_SCRIPT: &str = "oauth-browser.mjs";
/// The script's loopback callback (its `REDIRECT`), listed in the metadata document.
const REDIRECT: &str = "http://127.0.0.1:38517/callback";

/// Runs the client script in a scratch directory next to a copy of the browser module,
/// whose `node_modules` links to the SDK's; returns what it printed, parsed.
fn run_client(
    node: &Path,
    modules: &Path,
    url: &str,
    mode: &str,
    envs: &[(&str, String)],
) -> Value {
    let scratch = tempfile::tempdir().expect("tempdir");
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(
        here.join("tests/e2e").join(CLIENT_SCRIPT),
        scratch.path().join(CLIENT_SCRIPT),
    )
    .expect("copy the client script");
    std::fs::copy(
        here.join("../../scripts").join(BROWSER_SCRIPT),
        scratch.path().join(BROWSER_SCRIPT),
    )
    .expect("copy the browser module");
    std::os::unix::fs::symlink(modules, scratch.path().join("node_modules"))
        .expect("link node_modules");

    let child = Command::new(node)
        .arg(CLIENT_SCRIPT)
        .args([url, mode, WORKFLOW_NAME])
        .current_dir(scratch.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("ASSAY_OAUTH_EMAIL", MEMBER_EMAIL)
        .env("ASSAY_OAUTH_PASSWORD", MEMBER_PASSWORD)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn node");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    // A hang guard, not a timing assertion.
    let out: Output = match rx.recv_timeout(Duration::from_secs(300)) {
        Ok(out) => out.expect("node output"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("the SDK OAuth client ({mode}) did not finish within 5 minutes");
        }
    };
    assert!(
        out.status.success(),
        "the SDK OAuth client ({mode}) failed ({:?}):\nstderr: {}\nstdout: {}",
        out.status.code(),
        stderr(&out),
        stdout(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "the SDK OAuth client printed no JSON ({e}): {}\nstderr: {}",
            stdout(&out),
            stderr(&out)
        )
    })
}

/// What both runs must show; returns the client ID the server knows the client by.
fn assert_flow(server: &Server, seen: &Value, user_id: &str) -> String {
    let url = mcp_url(server);
    // Discovery started from the endpoint's 401 and its challenge.
    assert_eq!(seen["unauthorizedFirst"], true, "{seen}");
    let challenge = seen["firstChallenge"]["wwwAuthenticate"]
        .as_str()
        .unwrap_or_else(|| panic!("no 401 challenge seen: {seen}"));
    assert_eq!(
        challenge,
        format!(
            "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/organizations/default/environments/dev/mcp\", scope=\"mcp:read\"",
            server.url
        )
    );

    let client_id = seen["clientId"].as_str().expect("client id").to_owned();
    // Three authorization requests: sign-in, step-up; each PKCE S256, bound to the endpoint.
    let authorizations = seen["authorizations"].as_array().expect("authorizations");
    assert_eq!(authorizations.len(), 2, "{seen}");
    for (a, scope) in authorizations.iter().zip(["mcp:read", "mcp:run"]) {
        assert_eq!(a["client_id"], client_id.as_str(), "{a}");
        assert_eq!(a["code_challenge_method"], "S256", "{a}");
        assert_eq!(a["resource"], url.as_str(), "{a}");
        assert_eq!(a["scope"], scope, "{a}");
        assert_eq!(a["iss"], server.url.as_str(), "RFC 9207 iss: {a}");
    }

    // Tokens: sign-in, explicit refresh, automatic refresh, the step-up's — JWTs for this
    // endpoint, this user, this client; refresh never widened the scope.
    let issued = seen["issued"].as_array().expect("issued");
    let scopes: Vec<&str> = issued
        .iter()
        .map(|t| t["scope"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        scopes,
        [
            "mcp:read",
            "mcp:read",
            "mcp:read",
            "mcp:read",
            "mcp:read mcp:run"
        ],
        "sign-in, explicit refresh, automatic refresh, the SDK's own (same-scope) refresh on 403, step-up: {seen}"
    );
    for t in issued {
        assert_eq!(t["aud"], url.as_str(), "{t}");
        assert_eq!(t["sub"], user_id, "{t}");
        assert_eq!(t["client_id"], client_id.as_str(), "{t}");
        assert_eq!(t["iss"], server.url.as_str(), "{t}");
        assert_eq!(t["has_refresh_token"], true, "{t}");
    }

    assert_eq!(
        seen["tools"],
        serde_json::json!(member_tools()),
        "the member's tools, run_workflow included: {seen}"
    );
    assert!(
        seen["workflows"]
            .as_array()
            .is_some_and(|w| w.iter().any(|n| n == WORKFLOW_NAME)),
        "{seen}"
    );
    assert_eq!(seen["refresh"]["result"], "AUTHORIZED", "{seen}");
    assert_eq!(seen["refresh"]["changedAccessToken"], true, "{seen}");
    assert_eq!(
        seen["refresh"]["changedRefreshToken"], true,
        "rotated: {seen}"
    );
    assert_eq!(seen["revocationStatus"], 200, "{seen}");
    assert_eq!(
        seen["afterRevocation"],
        serde_json::json!([401, 200]),
        "the revoked token is refused, the refreshed one accepted: {seen}"
    );
    assert_eq!(seen["autoRefreshed"], true, "{seen}");

    // Step-up: the exact challenge, the SDK's documented give-up, the app's re-consent.
    assert_eq!(
        seen["stepUp"]["sdkError"],
        "Streamable HTTP error: Server returned 403 after trying upscoping",
        "{seen}"
    );
    let forbidden = seen["stepUp"]["challenge"].as_str().expect("403 challenge");
    assert_eq!(
        forbidden,
        format!(
            "Bearer error=\"insufficient_scope\", scope=\"mcp:run\", \
             resource_metadata=\"{}/.well-known/oauth-protected-resource/organizations/default/environments/dev/mcp\", \
             error_description=\"this tool needs the mcp:run scope, which the access token does not carry; \
             the user's role allows it, so authorize again with scope mcp:run\"",
            server.url
        )
    );
    assert_eq!(seen["stepUp"]["scope"], "mcp:run", "{seen}");
    assert_eq!(
        seen["started"]["name"],
        format!("{WORKFLOW_NAME}-1").as_str(),
        "{seen}"
    );

    // The audit trail: the user, through OAuth, by this client.
    let events = audit_events(server);
    assert_audited_as_user(&events, user_id, &client_id, "workflow.list", None);
    assert_audited_as_user(
        &events,
        user_id,
        &client_id,
        "workflow.run",
        Some(&format!("workflow:{WORKFLOW_NAME}")),
    );
    for action in [
        "oauth.login.succeeded",
        "oauth.consent.granted",
        "oauth.token.issued",
        "oauth.token.refreshed",
        "oauth.token.revoked",
    ] {
        assert!(
            events.iter().any(|e| e["action"] == action),
            "no {action} in the audit trail"
        );
    }
    for e in events.iter().filter(|e| {
        e["actor"]["id"] == user_id
            && e["action"]
                .as_str()
                .is_some_and(|a| !a.starts_with("oauth."))
    }) {
        assert_eq!(e["actor"]["auth_method"], oauth_method(), "{e}");
        assert_eq!(e["actor"]["credential_id"], client_id.as_str(), "{e}");
        assert_eq!(e["client"]["ip"], "127.0.0.1", "{e}");
    }
    client_id
}

#[test]
fn typescript_sdk_oauth_with_dynamic_registration() {
    let Some((node, modules)) = node_tools("typescript_sdk_oauth_with_dynamic_registration") else {
        return;
    };
    let server = Server::start();
    let user_id = member_and_workflow(&server);
    let seen = run_client(&node, &modules, &mcp_url(&server), "dcr", &[]);
    let client_id = assert_flow(&server, &seen, &user_id);
    assert!(client_id.starts_with("assay_client_"), "{client_id}");
    assert_eq!(
        seen["registrations"],
        serde_json::json!([{"client_id": client_id}]),
        "registered once, by RFC 7591: {seen}"
    );
}

#[test]
fn typescript_sdk_oauth_with_client_id_metadata_document() {
    let Some((node, modules)) = node_tools("typescript_sdk_oauth_with_client_id_metadata_document")
    else {
        return;
    };
    let certs = tempfile::tempdir().expect("tempdir");
    let (ca, cert, key) = test_ca(certs.path());
    let document =
        MetadataDocumentServer::start(&cert, &key, "Assay SDK OAuth e2e (CIMD)", &[REDIRECT]);
    let server = Server::start_with(
        &["--oauth-cimd-allow-private-networks"],
        &[("SSL_CERT_FILE", ca.as_str())],
    );
    let user_id = member_and_workflow(&server);
    let seen = run_client(
        &node,
        &modules,
        &mcp_url(&server),
        "cimd",
        &[("ASSAY_CIMD_URL", document.url().to_owned())],
    );
    let client_id = assert_flow(&server, &seen, &user_id);
    assert_eq!(
        seen["metadataDocumentUrl"],
        document.url(),
        "the SDK was given the document URL: {seen}"
    );
    assert_eq!(
        client_id,
        document.url(),
        "the CIMD URL is the client_id: {seen}"
    );
    assert!(
        document.url().starts_with("https://127.0.0.1:"),
        "{}",
        document.url()
    );
    assert!(
        document.fetches() >= 1,
        "the server fetched the document: {seen}"
    );
}
