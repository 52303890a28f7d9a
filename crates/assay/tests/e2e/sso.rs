//! `assay server --sso-config <file>` with the real binary: the providers of the file appear
//! on the OAuth login page, and a bad file stops the server with the provider and the
//! reason named (never echoing a secret). The whole sign-in through a provider is tested
//! against the in-test identity provider in assay-control and assay-server.

use super::harness::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const SECRET_VAR: &str = "ASSAY_E2E_SSO_SECRET";

fn write(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("sso.yaml");
    std::fs::write(&path, text).expect("write the SSO configuration");
    path
}

const GOOD: &str = "upstream_providers:
  - id: dex
    kind: oidc
    display_name: Company SSO
    issuer: https://dex.example.com/dex
    client_id: assay
    client_secret_env: ASSAY_E2E_SSO_SECRET
    provisioning:
      mode: jit
      organization: default
      environment_levels:
        dev: run
";

#[test]
fn the_providers_of_the_sso_config_are_offered_on_the_login_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), GOOD);
    let server = Server::start_with(
        &["--sso-config", path.to_str().expect("UTF-8 path")],
        &[(SECRET_VAR, "dex-client-secret")],
    );
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", "assay-cli")
        .append_pair("redirect_uri", "http://127.0.0.1:53682/callback")
        .append_pair("scope", "mcp:read")
        .append_pair("state", "s")
        .append_pair(
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        )
        .append_pair("code_challenge_method", "S256")
        .finish();
    let login = http
        .get(format!("{}/oauth/authorize?{query}", server.url))
        .send()
        .expect("login page");
    assert_eq!(login.status(), 200);
    let body = login.text().expect("body");
    assert!(
        body.contains(&format!(
            "<a href=\"/oauth/upstream/dex/start?{}\">Sign in with Company SSO</a>",
            query.replace('&', "&amp;")
        )),
        "{body}"
    );

    let unknown = http
        .get(format!(
            "{}/oauth/upstream/google/start?{query}",
            server.url
        ))
        .send()
        .expect("unknown provider");
    assert_eq!(unknown.status(), 404);
    let body = unknown.text().expect("body");
    assert!(
        body.contains(
            "<h1>Unknown sign-in provider</h1><p>This server has no sign-in provider under this name.</p>"
        ),
        "{body}"
    );
}

/// `assay server` with `config`, expected to refuse to start: its stderr.
fn refused(config: &str, envs: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), config);
    let output = Command::new(BIN)
        .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--sso-config")
        .arg(&path)
        .env_remove("ASSAY_DATABASE_URL")
        .env_remove(SECRET_VAR)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run assay server");
    assert!(!output.status.success(), "the server must not start");
    assert!(
        !dir.path().join("data").exists(),
        "refused before anything was created"
    );
    String::from_utf8_lossy(&output.stderr).replace(&path.display().to_string(), "<file>")
}

#[test]
fn a_bad_sso_config_stops_the_server_with_the_reason() {
    let inline = GOOD.replace(
        "client_secret_env: ASSAY_E2E_SSO_SECRET",
        "client_secret: hunter2",
    );
    let stderr = refused(&inline, &[]);
    assert!(
        stderr.contains(
            "--sso-config: <file>: upstream provider dex: client_secret must not be written in the \
             configuration; use client_secret_env or client_secret_file"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");

    let stderr = refused(GOOD, &[]);
    assert!(
        stderr.contains(
            "--sso-config: <file>: upstream provider dex: environment variable \
             ASSAY_E2E_SSO_SECRET is not set"
        ),
        "{stderr}"
    );

    let typo = GOOD.replace("issuer:", "isuer:");
    let stderr = refused(&typo, &[(SECRET_VAR, "x")]);
    assert!(
        stderr.contains("--sso-config: <file> is not a valid configuration: "),
        "{stderr}"
    );
    assert!(stderr.contains("isuer"), "{stderr}");
}
