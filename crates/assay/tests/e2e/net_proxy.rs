//! Outbound networking end to end: every client of the CLI (`whoami`, `workflow list`,
//! `login --device`, `mcp serve`) goes through the proxy named by `HTTP_PROXY` /
//! `http_proxy`, and `NO_PROXY` / `no_proxy` bypasses it; the forward proxy of the test
//! ([`ForwardProxy`]) records every request line it handled, which is the proof.
//!
//! Loopback is not special: reqwest (through hyper-util's proxy matcher) sends requests
//! to 127.0.0.1 through the proxy unless NO_PROXY lists it, so the server on loopback
//! serves as the "remote" control plane here.
//!
//! The TLS counterpart (CONNECT through `HTTPS_PROXY`) is in server_tls.rs.

use super::cli_login::*;
use super::forward_proxy::ForwardProxy;
use super::harness::*;
use super::local_mcp::{assert_calls_succeeded, run_plan, stdio_plan};
use super::mcp_sdk::node_tools;
use super::oauth_support::*;
use serde_json::{Value, json};

/// A machine in environment-variable mode (API token) whose proxy settings are `proxy`.
fn token_machine(server: &Server, proxy: &[(&str, &str)]) -> CliHome {
    let mut cli = CliHome::new();
    cli.set("ASSAY_URL", &server.url);
    cli.set("ASSAY_TOKEN", &server.token);
    cli.set("ASSAY_ORG", "default");
    cli.set("ASSAY_ENV", "dev");
    for (k, v) in proxy {
        cli.set(k, v);
    }
    cli
}

fn authority(server: &Server) -> String {
    server.url.trim_start_matches("http://").to_owned()
}

/// The proxied request lines for paths starting with `path`, of the proxy's record.
fn proxied(proxy: &ForwardProxy, method: &str, server: &Server, path: &str) -> Vec<String> {
    let prefix = format!("{method} http://{}{path}", authority(server));
    proxy
        .lines()
        .into_iter()
        .filter(|l| l.starts_with(&prefix) && l.ends_with(" HTTP/1.1"))
        .collect()
}

/// `whoami` and `workflow list` on `cli`, asserted successful.
fn whoami_and_list(cli: &CliHome) {
    let who = cli.json(&["whoami"]);
    assert_eq!(who["kind"], "api_token", "{who}");
    let listed = cli.json(&["workflow", "list"]);
    assert!(listed.to_string().contains(WORKFLOW_NAME), "{listed}");
}

/// The SDK's stdio client through `assay mcp serve` on `cli`: one list_workflows call.
fn mcp_call(cli: &CliHome) -> Option<Value> {
    let (node, modules) = node_tools("net_proxy: the mcp serve part")?;
    let seen = run_plan(
        &node,
        &modules,
        &stdio_plan(
            cli,
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
    Some(seen)
}

#[test]
fn every_client_goes_through_http_proxy_and_no_proxy_bypasses_it() {
    let server = Server::start();
    let user_id = member_and_workflow(&server);
    let proxy = ForwardProxy::start();
    let proxy_url = proxy.url();

    // HTTP_PROXY: whoami and workflow list go through the proxy, in absolute form.
    let cli = token_machine(&server, &[("HTTP_PROXY", &proxy_url)]);
    whoami_and_list(&cli);
    assert_eq!(
        proxied(&proxy, "GET", &server, "/v1/me").len(),
        1,
        "whoami went through the proxy: {:#?}",
        proxy.lines()
    );
    assert!(
        !proxied(
            &proxy,
            "GET",
            &server,
            "/v1/organizations/default/environments/dev/workflows"
        )
        .is_empty(),
        "workflow list went through the proxy: {:#?}",
        proxy.lines()
    );

    // `assay mcp serve` (stdio): its REST calls go through the proxy too.
    proxy.clear();
    if mcp_call(&cli).is_some() {
        assert!(
            !proxied(
                &proxy,
                "GET",
                &server,
                "/v1/organizations/default/environments/dev/workflows"
            )
            .is_empty(),
            "the MCP tool call went through the proxy: {:#?}",
            proxy.lines()
        );
    }

    // The lowercase spelling works the same.
    proxy.clear();
    let lower = token_machine(&server, &[("http_proxy", &proxy_url)]);
    whoami_and_list(&lower);
    assert_eq!(
        proxied(&proxy, "GET", &server, "/v1/me").len(),
        1,
        "http_proxy is honoured: {:#?}",
        proxy.lines()
    );

    // The login flows use the same clients: device login through the proxy.
    proxy.clear();
    let mut login_machine = CliHome::new();
    login_machine.set("HTTP_PROXY", &proxy_url);
    device_login(&login_machine, &server.url, &[], &mut Browser::default());
    for (method, path) in [
        ("GET", "/.well-known/oauth-authorization-server"),
        ("POST", "/oauth/device"),
        ("POST", "/oauth/token"),
        ("GET", "/v1/me"),
    ] {
        assert!(
            !proxied(&proxy, method, &server, path).is_empty(),
            "login: {method} {path} went through the proxy: {:#?}",
            proxy.lines()
        );
    }
    assert_whoami_member(&login_machine.json(&["whoami"]), &user_id);

    // NO_PROXY (and no_proxy) naming the server's address: nothing reaches the proxy, and
    // everything still works.
    proxy.clear();
    for bypass in [
        vec![
            ("HTTP_PROXY", proxy_url.as_str()),
            ("NO_PROXY", "127.0.0.1"),
        ],
        vec![
            ("http_proxy", proxy_url.as_str()),
            ("no_proxy", "127.0.0.1"),
        ],
    ] {
        let direct = token_machine(&server, &bypass);
        whoami_and_list(&direct);
        mcp_call(&direct);
    }
    login_machine.set("NO_PROXY", "127.0.0.1");
    assert_whoami_member(&login_machine.json(&["whoami"]), &user_id);
    assert_eq!(
        proxy.lines(),
        Vec::<String>::new(),
        "NO_PROXY bypasses the proxy"
    );
}
