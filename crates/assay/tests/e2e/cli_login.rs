//! `assay login` end to end: the real CLI signs in to a real `assay server` with the
//! browser flow (RFC 8252 loopback redirect; the test is the person at the browser, and
//! its headless [`Browser`] delivers the code to the CLI's callback) and with the device
//! flow (RFC 8628: the test reads the code and the URL the CLI prints and approves on the
//! verification page), then `assay whoami` and `assay workflow list` with no token given;
//! `assay logout` revokes the grant on the server.
//!
//! Every CLI run has its own config directory (`ASSAY_CONFIG_DIR`) and `HOME`, and keeps
//! its secrets in `credentials.json` (`ASSAY_CREDENTIAL_STORE=file`) — except one test,
//! which leaves the store at `auto` and checks that without an OS keyring (none in a
//! test's bare environment) the CLI fell back to the file and said so.

use super::harness::*;
use super::oauth_support::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What the browser flow prints before it waits (with `--no-browser`).
pub const OPEN_URL: &str = "Open this URL to sign in: ";
/// What the device flow prints: the user code and where to enter it.
pub const CODE: &str = "Code: ";
pub const VISIT: &str = "Visit: ";

/// A hang guard for one CLI run, not a timing assertion.
const CLI_TIMEOUT: Duration = Duration::from_secs(120);

/// One user's machine: a config directory and a home directory, and the environment
/// every `assay` run on it gets.
pub struct CliHome {
    config: tempfile::TempDir,
    home: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Default for CliHome {
    fn default() -> Self {
        Self::new()
    }
}

impl CliHome {
    /// A machine whose CLI keeps credentials in `credentials.json`.
    pub fn new() -> CliHome {
        let mut home = Self::auto_store();
        home.set("ASSAY_CREDENTIAL_STORE", "file");
        home
    }

    /// A machine whose CLI picks the credential store itself (`auto`).
    pub fn auto_store() -> CliHome {
        let config = tempfile::tempdir().expect("tempdir");
        let home = tempfile::tempdir().expect("tempdir");
        let env = vec![
            ("PATH".to_owned(), std::env::var("PATH").unwrap_or_default()),
            ("HOME".to_owned(), home.path().display().to_string()),
            // Not there yet: the CLI creates it (0700).
            (
                "ASSAY_CONFIG_DIR".to_owned(),
                config.path().join("assay").display().to_string(),
            ),
        ];
        CliHome { config, home, env }
    }

    /// Adds (or replaces) an environment variable of every run.
    pub fn set(&mut self, name: &str, value: &str) {
        self.env.retain(|(n, _)| n != name);
        self.env.push((name.to_owned(), value.to_owned()));
    }

    pub fn config_dir(&self) -> PathBuf {
        self.config.path().join("assay")
    }

    pub fn home_dir(&self) -> &Path {
        self.home.path()
    }

    pub fn credentials_file(&self) -> PathBuf {
        self.config_dir().join("credentials.json")
    }

    /// The environment of every run, e.g. for an MCP client that spawns `assay`.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// `assay ARGS` with this machine's environment and nothing else.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs `assay ARGS` to its end.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    /// [`CliHome::run`] with more environment variables.
    pub fn run_with(&self, args: &[&str], envs: &[(&str, &str)]) -> Output {
        let mut cmd = self.command(args);
        cmd.envs(envs.iter().copied());
        let child = cmd.spawn().expect("spawn assay");
        wait_output(child, &format!("assay {args:?}"))
    }

    /// `assay ARGS -o json`, asserting success.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let out = self.run(&all);
        assert!(
            out.status.success(),
            "assay {all:?} failed ({:?}):\n{}\n{}",
            out.status.code(),
            stdout(&out),
            stderr(&out)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("assay {all:?} printed no JSON ({e}): {}", stdout(&out)))
    }

    /// The credentials file, parsed.
    pub fn credentials(&self) -> Value {
        let text = std::fs::read_to_string(self.credentials_file())
            .unwrap_or_else(|e| panic!("{}: {e}", self.credentials_file().display()));
        serde_json::from_str(&text).expect("credentials.json is JSON")
    }

    /// The one OAuth token set in the credentials file (the value the CLI stores per
    /// context: `{"kind":"oauth","tokens":{…},"client_id":"assay-cli"}`).
    pub fn stored_tokens(&self) -> Value {
        let all = self.credentials();
        let found = find_oauth_entries(&all);
        assert_eq!(
            found.len(),
            1,
            "one OAuth credential in credentials.json: {}",
            redact(&all)
        );
        found[0]["tokens"].clone()
    }

    /// Rewrites the stored OAuth token set with `edit`.
    pub fn edit_stored_tokens(&self, edit: impl Fn(&mut Value)) {
        let mut all = self.credentials();
        edit_oauth_entries(&mut all, &edit);
        std::fs::write(
            self.credentials_file(),
            serde_json::to_vec_pretty(&all).expect("JSON"),
        )
        .expect("write credentials.json");
    }
}

/// Every `{"kind":"oauth",…}` object anywhere in `v` (the file's outer shape is the CLI's).
fn find_oauth_entries(v: &Value) -> Vec<&Value> {
    match v {
        Value::Object(map) if map.get("kind") == Some(&Value::from("oauth")) => vec![v],
        Value::Object(map) => map.values().flat_map(find_oauth_entries).collect(),
        Value::Array(items) => items.iter().flat_map(find_oauth_entries).collect(),
        _ => Vec::new(),
    }
}

fn edit_oauth_entries(v: &mut Value, edit: &impl Fn(&mut Value)) {
    match v {
        Value::Object(map) if map.get("kind") == Some(&Value::from("oauth")) => {
            if let Some(tokens) = map.get_mut("tokens") {
                edit(tokens);
            }
        }
        Value::Object(map) => map.values_mut().for_each(|x| edit_oauth_entries(x, edit)),
        Value::Array(items) => items.iter_mut().for_each(|x| edit_oauth_entries(x, edit)),
        _ => {}
    }
}

/// `v` with every token value cut short, for failure messages.
fn redact(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, x)| {
                    let x = if k.ends_with("token") {
                        Value::from(format!(
                            "{}…",
                            x.as_str()
                                .unwrap_or_default()
                                .chars()
                                .take(6)
                                .collect::<String>()
                        ))
                    } else {
                        redact(x)
                    };
                    (k.clone(), x)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Waits for a child to finish (killing it after [`CLI_TIMEOUT`]).
pub fn wait_output(child: Child, what: &str) -> Output {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(CLI_TIMEOUT) {
        Ok(out) => out.expect("child output"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("{what} did not finish within {CLI_TIMEOUT:?}");
        }
    }
}

/// A CLI run in progress whose stderr is read line by line (it prints the URL to open or
/// the code to enter and then waits).
pub struct Interactive {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    stdout: std::thread::JoinHandle<Vec<u8>>,
}

impl Interactive {
    pub fn spawn(cmd: &mut Command) -> Interactive {
        let mut child = cmd.spawn().expect("spawn assay");
        let err = child.stderr.take().expect("stderr");
        let mut out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdout = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = out.read_to_end(&mut bytes);
            bytes
        });
        Interactive {
            child,
            lines,
            seen: Vec::new(),
            stdout,
        }
    }

    /// The rest of the first stderr line that starts with `prefix` (waiting for it).
    pub fn line_after(&mut self, prefix: &str) -> String {
        if let Some(found) = self.seen.iter().find_map(|l| l.strip_prefix(prefix)) {
            return found.trim().to_owned();
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    let found = line.strip_prefix(prefix).map(|r| r.trim().to_owned());
                    self.seen.push(line);
                    if let Some(found) = found {
                        return found;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Ok(Some(status)) = self.child.try_wait() {
                        // Collect what is left before saying why.
                        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                            self.seen.push(line);
                        }
                        panic!(
                            "assay exited ({status}) before printing {prefix:?}; stderr:\n{}",
                            self.seen.join("\n")
                        );
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!(
                        "assay closed stderr before printing {prefix:?}; stderr:\n{}",
                        self.seen.join("\n")
                    );
                }
            }
        }
        panic!(
            "no {prefix:?} line within a minute; stderr:\n{}",
            self.seen.join("\n")
        );
    }

    /// Waits for the end: (exit status code, stdout, all of stderr).
    pub fn finish(mut self) -> (Option<i32>, String, String) {
        let deadline = Instant::now() + CLI_TIMEOUT;
        let status = loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "assay did not finish within {CLI_TIMEOUT:?}; stderr:\n{}",
                    self.seen.join("\n")
                );
            }
            while let Ok(line) = self.lines.try_recv() {
                self.seen.push(line);
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(line);
        }
        let out = self.stdout.join().unwrap_or_default();
        (
            status.code(),
            String::from_utf8_lossy(&out).into_owned(),
            self.seen.join("\n"),
        )
    }
}

/// A runtime for the async [`Browser`].
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// `assay login URL --no-browser ARGS` on `cli`, signed in and approved as the member by
/// `browser`, which then delivers the redirect to the CLI's loopback callback. Asserts
/// success; returns the CLI's stderr.
pub fn browser_login(cli: &CliHome, url: &str, args: &[&str], browser: &mut Browser) -> String {
    let mut all = vec![
        "login",
        url,
        "--no-browser",
        "--org",
        "default",
        "--env",
        "dev",
    ];
    all.extend(args);
    let mut login = Interactive::spawn(&mut cli.command(&all));
    let authorize = login.line_after(OPEN_URL);
    let rt = runtime();
    let callback = rt.block_on(browser.approve(&authorize, MEMBER_EMAIL, MEMBER_PASSWORD, None));
    let callback_url = url::Url::parse(&callback).expect("callback URL");
    assert_eq!(callback_url.scheme(), "http", "{callback}");
    assert_eq!(
        callback_url.host_str(),
        Some("127.0.0.1"),
        "RFC 8252: the loopback IP, not localhost: {callback}"
    );
    assert_eq!(callback_url.path(), "/callback", "{callback}");
    // The browser follows the redirect: the CLI's listener gets the code.
    let page = rt.block_on(async {
        let res = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client")
            .get(&callback)
            .send()
            .await
            .expect("the CLI's callback answers");
        (res.status().as_u16(), res.text().await.unwrap_or_default())
    });
    assert_eq!(page.0, 200, "the callback page: {}", page.1);
    assert!(
        page.1
            .contains("You are signed in to Assay. You can close this tab"),
        "the callback page tells the person they are done: {}",
        page.1
    );
    let (code, out, err) = login.finish();
    assert_eq!(
        code,
        Some(0),
        "assay login failed:\nstdout: {out}\nstderr: {err}"
    );
    err
}

/// `assay login URL --device ARGS` on `cli`, approved by `browser` on the verification
/// page. Asserts success; returns the CLI's stderr.
pub fn device_login(cli: &CliHome, url: &str, args: &[&str], browser: &mut Browser) -> String {
    let mut all = vec!["login", url, "--device", "--org", "default", "--env", "dev"];
    all.extend(args);
    let mut login = Interactive::spawn(&mut cli.command(&all));
    let code = login.line_after(CODE);
    let visit = login.line_after(VISIT);
    assert!(
        code.len() >= 8 && !code.contains(' '),
        "a user code: {code:?}"
    );
    assert!(
        visit.starts_with(&format!("{url}/oauth/device/verify")),
        "the verification URL is the server's: {visit}"
    );
    // The person types the code on the page; following the link with it is the same.
    let mut page = url::Url::parse(&visit).expect("verification URL");
    if !page.query_pairs().any(|(k, _)| k == "user_code") {
        page.query_pairs_mut().append_pair("user_code", &code);
    }
    let done = runtime().block_on(browser.approve_device(
        page.as_str(),
        MEMBER_EMAIL,
        MEMBER_PASSWORD,
        None,
    ));
    assert!(done.contains("Device connected"), "{done}");
    let (status, out, err) = login.finish();
    assert_eq!(
        status,
        Some(0),
        "assay login --device failed:\nstdout: {out}\nstderr: {err}"
    );
    err
}

/// What `whoami -o json` must say about the member after `assay login`.
pub fn assert_whoami_member(who: &Value, user_id: &str) {
    assert_eq!(who["kind"], "user", "{who}");
    assert_eq!(who["id"], user_id, "{who}");
    assert_eq!(who["email"], MEMBER_EMAIL, "{who}");
    assert_eq!(who["display_name"], "OAuth Member", "{who}");
    assert_eq!(who["auth_method"], "cli_login", "{who}");
    let orgs = who["memberships"].as_array().expect("memberships");
    assert_eq!(orgs.len(), 1, "{who}");
    assert_eq!(orgs[0]["organization"]["slug"], "default", "{who}");
    let envs = orgs[0]["environments"].as_array().expect("environments");
    assert!(
        envs.iter()
            .any(|e| e["slug"] == "dev" && e["level"] == "run"),
        "run on dev: {who}"
    );
}

/// `assay workflow list -o json` works with the login alone and sees the workflow.
fn assert_workflow_list(cli: &CliHome) {
    let listed = cli.json(&["workflow", "list"]);
    let text = listed.to_string();
    assert!(text.contains(WORKFLOW_NAME), "workflow list: {listed}");
}

#[test]
fn browser_login_then_whoami_and_workflow_list_without_a_token() {
    let server = Server::start();
    let user_id = member_and_workflow(&server);
    let cli = CliHome::new();
    let mut browser = Browser::default();
    let err = browser_login(&cli, &server.url, &[], &mut browser);
    let host = server.url.trim_start_matches("http://");
    assert!(
        err.contains(&format!(
            "Logged in to {} as {MEMBER_EMAIL} (org default, env dev); context {host}",
            server.url
        )),
        "the login says who, where and which context:\n{err}"
    );
    // No secret on the terminal.
    let tokens = cli.stored_tokens();
    let access = tokens["access_token"].as_str().expect("access token");
    let refresh = tokens["refresh_token"].as_str().expect("refresh token");
    assert!(
        !err.contains(access) && !err.contains(refresh),
        "tokens printed:\n{err}"
    );

    let who = cli.json(&["whoami"]);
    assert_whoami_member(&who, &user_id);
    assert_workflow_list(&cli);

    // The context: saved, current, no secret in config.yaml.
    let config = std::fs::read_to_string(cli.config_dir().join("config.yaml")).expect("config");
    assert!(
        config.contains(&format!("current-context: {host}")),
        "{config}"
    );
    assert!(
        config.contains("org: default") && config.contains("env: dev"),
        "{config}"
    );
    assert!(
        !config.contains(access) && !config.contains(refresh),
        "{config}"
    );
    let mode = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
    };
    assert_eq!(mode(&cli.credentials_file()), 0o600);
    assert_eq!(
        mode(&cli.config_dir()) & 0o077,
        0,
        "the config dir is private"
    );

    // The server saw the CLI login: the workflow list as this user, method cli_login.
    let events = audit_events(&server);
    assert!(
        events.iter().any(|e| e["action"] == "workflow.list"
            && e["actor"]["id"] == user_id.as_str()
            && e["actor"]["auth_method"] == "cli_login"
            && e["actor"]["credential_id"] == "assay-cli"
            && e["outcome"] == "success"),
        "workflow.list by the user via the CLI login in the audit trail:\n{:#?}",
        events
            .iter()
            .filter(|e| e["actor"]["id"] == user_id.as_str())
            .collect::<Vec<_>>()
    );
}

#[test]
fn device_login_then_whoami() {
    let server = Server::start();
    let user_id = member_and_workflow(&server);
    let cli = CliHome::new();
    let mut browser = Browser::default();
    device_login(&cli, &server.url, &[], &mut browser);
    let who = cli.json(&["whoami"]);
    assert_whoami_member(&who, &user_id);
    assert_workflow_list(&cli);
    // The grant came from the device flow: the server's audit says so.
    let events = audit_events(&server);
    assert!(
        events.iter().any(|e| e["action"] == "oauth.device.approved"
            && e["actor"]["id"] == user_id.as_str()
            && e["outcome"] == "success"),
        "the device approval in the audit trail: {:#?}",
        events.iter().map(|e| &e["action"]).collect::<Vec<_>>()
    );
}

#[test]
fn without_a_keyring_auto_falls_back_to_the_private_file_and_says_so() {
    let server = Server::start();
    let user_id = member_and_workflow(&server);
    // `auto`, in an environment with no D-Bus session and no keyring daemon.
    let cli = CliHome::auto_store();
    let mut browser = Browser::default();
    let err = browser_login(&cli, &server.url, &[], &mut browser);
    assert!(
        cli.credentials_file().is_file(),
        "no keyring: the secret went to credentials.json; stderr:\n{err}"
    );
    assert!(
        err.contains(&cli.credentials_file().display().to_string()),
        "the CLI says where the credentials went:\n{err}"
    );
    let tokens = cli.stored_tokens();
    assert!(
        tokens["refresh_token"].as_str().is_some(),
        "{}",
        redact(&tokens)
    );
    assert_whoami_member(&cli.json(&["whoami"]), &user_id);
}

#[test]
fn logout_revokes_the_refresh_token_on_the_server() {
    let server = Server::start();
    member_and_workflow(&server);
    let cli = CliHome::new();
    let mut browser = Browser::default();
    browser_login(&cli, &server.url, &[], &mut browser);
    let tokens = cli.stored_tokens();
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();
    let access = tokens["access_token"]
        .as_str()
        .expect("access token")
        .to_owned();
    let rest = server.api("/workflows");
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let before = http.get(&rest).bearer_auth(&access).send().expect("GET");
    assert_eq!(before.status(), 200, "the access token works before logout");

    let out = cli.run(&["logout"]);
    assert!(
        out.status.success(),
        "assay logout: {}{}",
        stdout(&out),
        stderr(&out)
    );
    // The secret is gone from the machine.
    let left = std::fs::read_to_string(cli.credentials_file()).unwrap_or_default();
    assert!(
        !left.contains(&refresh) && !left.contains(&access),
        "logout leaves no token behind"
    );

    // The server no longer honours the refresh token…
    let res = http
        .post(format!("{}/oauth/token", server.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "refresh_token")
                .append_pair("client_id", "assay-cli")
                .append_pair("refresh_token", &refresh)
                .finish(),
        )
        .send()
        .expect("POST /oauth/token");
    assert_eq!(res.status(), 400);
    let body: Value = res.json().expect("JSON error");
    assert_eq!(body["error"], "invalid_grant", "{body}");
    // …nor the access token of the grant.
    let after = http.get(&rest).bearer_auth(&access).send().expect("GET");
    assert_eq!(after.status(), 401, "the grant's access token ends with it");

    let events = audit_events(&server);
    assert!(
        events.iter().any(|e| e["action"] == "oauth.token.revoked"),
        "the revocation in the audit trail: {:#?}",
        events.iter().map(|e| &e["action"]).collect::<Vec<_>>()
    );

    let out = cli.run(&["whoami"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("assay login"),
        "whoami tells to run assay login: {}",
        stderr(&out)
    );
}

#[test]
fn api_token_login_reads_stdin_and_logout_forgets_it_locally() {
    let server = Server::start();
    member_and_workflow(&server);
    let created = server.cli_json(&[
        "token",
        "create",
        "--name",
        "ci",
        "--kind",
        "member",
        "--env",
        "dev=run",
        "--expires",
        "1d",
    ]);
    let secret = created["secret"].as_str().expect("secret").to_owned();
    let cli = CliHome::new();
    let mut child = cli
        .command(&["login", &server.url, "--api-token-stdin"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn assay login");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(format!("{secret}\n").as_bytes())
            .expect("write the token");
    }
    let out = wait_output(child, "assay login --api-token-stdin");
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        !stderr(&out).contains(&secret) && !stdout(&out).contains(&secret),
        "the token is not echoed"
    );
    let stored = cli.credentials();
    assert!(
        stored.to_string().contains(r#""kind":"api-token""#),
        "{}",
        redact(&stored)
    );
    let who = cli.json(&["whoami"]);
    assert_eq!(who["kind"], "api_token", "{who}");
    assert_eq!(who["auth_method"], "api_token", "{who}");
    assert_workflow_list(&cli);

    // Logout forgets it here and says the token itself still works.
    let out = cli.run(&["logout"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("still works"),
        "logout says the API token was not revoked: {}",
        stderr(&out)
    );
    let left = std::fs::read_to_string(cli.credentials_file()).unwrap_or_default();
    assert!(
        !left.contains(&secret),
        "the token is gone from the machine"
    );
    let res = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .get(server.api("/workflows"))
        .bearer_auth(&secret)
        .send()
        .expect("GET");
    assert_eq!(res.status(), 200, "an API token outlives a local logout");
}
