//! Server TLS end to end: `assay server --tls-cert --tls-key` with a certificate from a CA
//! made in the test (openssl, SAN 127.0.0.1 and localhost); `assay login --device
//! --ca-cert` against it over https (the browser trusting the same CA), then `assay
//! whoami` (the context remembers the CA) and `assay mcp serve` over stdio calling a tool
//! over https; without the CA the login fails with a certificate error; and through the
//! test's forward proxy, `HTTPS_PROXY` tunnels with CONNECT. `--insecure` is kept for a
//! context only from a login's own flag (`ASSAY_INSECURE` lasts one command), and a
//! relative `--ca-cert` is saved absolute.

use super::cli_login::*;
use super::forward_proxy::ForwardProxy;
use super::harness::*;
use super::local_mcp::{assert_calls_succeeded, run_plan, stdio_plan};
use super::mcp_sdk::node_tools;
use super::oauth_support::*;
use serde_json::json;
use std::path::PathBuf;

/// A server with TLS from a fresh CA; returns it, the CA's PEM path and the CA's directory.
fn tls_server() -> (Server, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, cert, key) = test_ca_for(dir.path(), "IP:127.0.0.1,DNS:localhost");
    let mut server = Server::start_with(&["--tls-cert", &cert, "--tls-key", &key], &[]);
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "with TLS the server announces https: {}",
        server.url
    );
    server.ca = Some(PathBuf::from(&ca));
    (server, PathBuf::from(ca), dir)
}

#[test]
fn login_and_mcp_serve_over_https_trusting_the_ca() {
    let (server, ca, _dir) = tls_server();
    let user_id = member_and_workflow(&server);
    let ca_text = ca.display().to_string();

    // Without the CA, the login stops at the certificate and says so.
    let untrusting = CliHome::new();
    let out = untrusting.run(&[
        "login",
        &server.url,
        "--device",
        "--org",
        "default",
        "--env",
        "dev",
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "login without the CA: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stderr(&out).to_ascii_lowercase().contains("certificate"),
        "the error names the certificate problem: {}",
        stderr(&out)
    );
    assert!(!untrusting.credentials_file().exists());

    // With --ca-cert: device login over https, approved by a browser trusting the CA.
    let cli = CliHome::new();
    let mut browser = Browser::trusting(&ca);
    device_login(&cli, &server.url, &["--ca-cert", &ca_text], &mut browser);
    // The context remembers the CA: no flag needed from now on.
    let config = std::fs::read_to_string(cli.config_dir().join("config.yaml")).expect("config");
    assert!(config.contains(&format!("ca-cert: {ca_text}")), "{config}");
    assert_whoami_member(&cli.json(&["whoami"]), &user_id);

    // `assay mcp serve` over stdio, the control plane over https.
    if let Some((node, modules)) = node_tools("login_and_mcp_serve_over_https_trusting_the_ca") {
        let seen = run_plan(
            &node,
            &modules,
            &stdio_plan(
                &cli,
                &[],
                &[],
                json!([{ "name": "list_workflows", "arguments": {} }]),
            ),
        );
        assert_calls_succeeded(&seen);
        assert!(
            seen["calls"][0]["structured"]
                .to_string()
                .contains(WORKFLOW_NAME),
            "{seen}"
        );
        let events = audit_events(&server);
        assert!(
            events.iter().any(|e| e["action"] == "workflow.list"
                && e["actor"]["id"] == user_id.as_str()
                && e["actor"]["auth_method"] == "cli_login"),
            "the tool call reached the server as the user"
        );
    }

    // HTTPS_PROXY: the CLI tunnels through the proxy with CONNECT; TLS is end to end.
    let proxy = ForwardProxy::start();
    let mut proxied = CliHome::new();
    proxied.set("ASSAY_URL", &server.url);
    proxied.set("ASSAY_TOKEN", &server.token);
    proxied.set("ASSAY_CA_CERT", &ca_text);
    proxied.set("HTTPS_PROXY", &proxy.url());
    let who = proxied.json(&["whoami"]);
    assert_eq!(who["kind"], "api_token", "{who}");
    let connect = format!(
        "CONNECT {} HTTP/1.1",
        server.url.trim_start_matches("https://")
    );
    assert!(
        proxy.lines().contains(&connect),
        "{connect:?} in {:#?}",
        proxy.lines()
    );
    assert!(
        proxy.lines().iter().all(|l| l.starts_with("CONNECT ")),
        "https goes only through tunnels: {:#?}",
        proxy.lines()
    );
}

const INSECURE_WARNING: &str = "WARNING: --insecure: the server's TLS certificate is NOT checked.";

/// config.yaml of `cli`.
fn config_of(cli: &CliHome) -> String {
    std::fs::read_to_string(cli.config_dir().join("config.yaml")).expect("config.yaml")
}

/// `assay whoami` fails at the certificate (exit 2, the error says so).
fn assert_whoami_refuses_the_certificate(cli: &CliHome, what: &str) {
    let out = cli.run(&["whoami"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{what}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stderr(&out).to_ascii_lowercase().contains("certificate"),
        "{what}: the error names the certificate problem: {}",
        stderr(&out)
    );
}

#[test]
fn insecure_lasts_for_the_login_that_asked_for_it_and_a_relative_ca_is_saved_absolute() {
    let (server, ca, ca_dir) = tls_server();
    let user_id = member_and_workflow(&server);
    let mut browser = Browser::trusting(&ca);
    let mut cli = CliHome::new();

    // ASSAY_INSECURE counts for the command it is set for: the login works (loudly)…
    cli.set("ASSAY_INSECURE", "1");
    let err = device_login(&cli, &server.url, &[], &mut browser);
    assert!(err.contains(INSECURE_WARNING), "{err}");
    let config = config_of(&cli);
    assert!(!config.contains("insecure: true"), "{config}");
    // …and the next command without it checks the certificate again.
    cli.unset("ASSAY_INSECURE");
    assert_whoami_refuses_the_certificate(&cli, "after a login with ASSAY_INSECURE=1");

    // The --insecure flag of a login is kept for the context (and warned about each time).
    device_login(&cli, &server.url, &["--insecure"], &mut browser);
    let config = config_of(&cli);
    assert!(config.contains("insecure: true"), "{config}");
    let out = cli.run(&["whoami", "-o", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains(INSECURE_WARNING), "{}", stderr(&out));

    // Signing in again without it turns the checks back on; a relative --ca-cert (given
    // in the CA's directory) is saved absolute, so commands elsewhere still find it.
    cli.set_current_dir(ca_dir.path());
    device_login(&cli, &server.url, &["--ca-cert", "ca.pem"], &mut browser);
    let config = config_of(&cli);
    assert!(!config.contains("insecure: true"), "{config}");
    let absolute = std::path::absolute(ca_dir.path().join("ca.pem")).expect("absolute");
    assert!(
        config.contains(&format!("ca-cert: {}", absolute.display())),
        "the CA path is saved absolute: {config}"
    );
    let elsewhere = tempfile::tempdir().expect("tempdir");
    cli.set_current_dir(elsewhere.path());
    let out = cli.run(&["whoami", "-o", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains(INSECURE_WARNING),
        "the checks are on: {}",
        stderr(&out)
    );
    assert_whoami_member(
        &serde_json::from_slice(&out.stdout).expect("JSON"),
        &user_id,
    );
}
