//! `assay login` end to end: the real CLI signs in to a real `assay server` with the
//! browser flow (RFC 8252 loopback redirect; the test is the person at the browser, and
//! its headless [`Browser`] delivers the code to the CLI's callback) and with the device
//! flow (RFC 8628: the test reads the code and the URL the CLI prints and approves on the
//! verification page), then `assay whoami` and `assay workflow list` with no token given;
//! `assay logout` revokes the login on the server (exact 401s for its access tokens),
//! and only that login: the same user signed in on a second machine stays signed in, and
//! signing in again on one machine ends that machine's previous login. A context is not
//! re-pointed at another server.
//!
//! Every CLI run has its own config directory (`ASSAY_CONFIG_DIR`) and `HOME`, and keeps
//! its secrets in `credentials.json` (`ASSAY_CREDENTIAL_STORE=file`) — except one test,
//! which leaves the store at `auto` and checks that without an OS keyring (none in a
//! test's bare environment) the CLI fell back to the file and said so.

use super::harness::*;
use super::identity::{INVALID_TOKEN, assert_401};
use super::local_mcp::StdioMcp;
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

/// The server's refusal reasons (assay-control jwt_auth.rs), written out: the access token
/// itself was revoked (logout revokes it by `jti`), or the login session it belongs to
/// (`sid`, its refresh-token family) ended.
pub const ACCESS_TOKEN_REVOKED: &str = "the access token has been revoked";
pub const SESSION_ENDED: &str = "the sign-in session of the access token has ended";

/// A hang guard for one CLI run, not a timing assertion.
const CLI_TIMEOUT: Duration = Duration::from_secs(120);

/// One user's machine: a config directory and a home directory, and the environment
/// every `assay` run on it gets.
pub struct CliHome {
    config: tempfile::TempDir,
    home: tempfile::TempDir,
    env: Vec<(String, String)>,
    /// The working directory of every run (default: the test's).
    cwd: Option<PathBuf>,
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
        CliHome {
            config,
            home,
            env,
            cwd: None,
        }
    }

    /// Adds (or replaces) an environment variable of every run.
    pub fn set(&mut self, name: &str, value: &str) {
        self.unset(name);
        self.env.push((name.to_owned(), value.to_owned()));
    }

    /// Removes an environment variable from every later run.
    pub fn unset(&mut self, name: &str) {
        self.env.retain(|(n, _)| n != name);
    }

    /// Runs every later command in `dir` (for relative paths on the command line).
    pub fn set_current_dir(&mut self, dir: &Path) {
        self.cwd = Some(dir.to_path_buf());
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
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
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
    // …nor the access token of the login: the exact refusal, as any client sees it.
    let after = http.get(&rest).bearer_auth(&access).send().expect("GET");
    assert_401(
        after,
        INVALID_TOKEN,
        ACCESS_TOKEN_REVOKED,
        "the login's access token after logout",
    );

    let events = audit_events(&server);
    assert!(
        events.iter().any(|e| e["action"] == "oauth.token.revoked"),
        "the revocation in the audit trail: {:#?}",
        events.iter().map(|e| &e["action"]).collect::<Vec<_>>()
    );
    assert!(
        events.iter().any(|e| e["action"] == "auth.failed"
            && e["outcome"] == "denied"
            && e["reason"] == ACCESS_TOKEN_REVOKED),
        "the refused access token in the audit trail: {:#?}",
        events
            .iter()
            .filter(|e| e["action"] == "auth.failed")
            .collect::<Vec<_>>()
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

/// `POST /oauth/token` with `grant_type=refresh_token` as the CLI client, the way any
/// holder of the refresh token could: (status, JSON body).
pub fn refresh_grant(server: &Server, refresh_token: &str) -> (u16, Value) {
    let res = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
        .post(format!("{}/oauth/token", server.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "refresh_token")
                .append_pair("client_id", "assay-cli")
                .append_pair("refresh_token", refresh_token)
                .finish(),
        )
        .send()
        .expect("POST /oauth/token");
    let status = res.status().as_u16();
    let body = res.text().unwrap_or_default();
    let parsed = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("the token endpoint answered no JSON ({e}): {body}"));
    (status, parsed)
}

/// Asserts the token endpoint refuses `refresh_token` as RFC 6749 §5.2 `invalid_grant`.
pub fn assert_refresh_refused(server: &Server, refresh_token: &str, what: &str) {
    let (status, body) = refresh_grant(server, refresh_token);
    assert_eq!(status, 400, "{what}: {body}");
    assert_eq!(body["error"], "invalid_grant", "{what}: {body}");
    assert!(
        body.get("access_token").is_none(),
        "{what}: no token for a refused grant"
    );
}

/// `GET` the default environment's workflows with `access_token`.
pub fn workflows_with(server: &Server, access_token: &str) -> reqwest::blocking::Response {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
        .get(server.api("/workflows"))
        .bearer_auth(access_token)
        .send()
        .expect("GET workflows")
}

/// The `sid` claim of an access token (read unverified: the test only compares them).
pub fn session_of(access_token: &str) -> String {
    use base64::Engine as _;
    let payload = access_token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    let claims: Value = serde_json::from_slice(&bytes).expect("JSON claims");
    claims["sid"]
        .as_str()
        .unwrap_or_else(|| panic!("no sid claim: {claims}"))
        .to_owned()
}

/// Makes the next command on `cli` refresh first: the stored access token looks expired
/// (the CLI trusts the stored expiry; the server still accepts the token).
pub fn force_refresh_on_next_use(cli: &CliHome) {
    cli.edit_stored_tokens(|t| t["expires_at"] = Value::from("2000-01-01T00:00:00Z"));
}

/// A string field of the stored token set.
fn stored(cli: &CliHome, field: &str) -> String {
    cli.stored_tokens()[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} stored"))
        .to_owned()
}

fn count_action(events: &[Value], action: &str) -> usize {
    events.iter().filter(|e| e["action"] == action).count()
}

#[test]
fn two_machines_one_user_logging_out_on_one_leaves_the_other_signed_in() {
    let server = Server::start();
    let user_id = member_and_workflow(&server);
    // Two machines (two config directories, two browsers), the same person.
    let laptop = CliHome::new();
    let desktop = CliHome::new();
    browser_login(&laptop, &server.url, &[], &mut Browser::default());
    browser_login(&desktop, &server.url, &[], &mut Browser::default());
    let laptop_first_access = stored(&laptop, "access_token");
    let laptop_first_refresh = stored(&laptop, "refresh_token");
    assert_ne!(
        session_of(&laptop_first_access),
        session_of(&stored(&desktop, "access_token")),
        "each login is its own session (sid)"
    );

    // The laptop refreshes once: its first access token is still within its lifetime,
    // but belongs to the session now, not to a refresh token.
    force_refresh_on_next_use(&laptop);
    assert_whoami_member(&laptop.json(&["whoami"]), &user_id);
    let laptop_access = stored(&laptop, "access_token");
    let laptop_refresh = stored(&laptop, "refresh_token");
    assert_ne!(laptop_access, laptop_first_access, "the laptop refreshed");
    assert_ne!(
        laptop_refresh, laptop_first_refresh,
        "refresh tokens rotate"
    );

    // An AI tool on the desktop keeps its local MCP server running throughout.
    let mut desktop_mcp = StdioMcp::start(&desktop);
    let (failed, text) = desktop_mcp.call_tool("list_workflows", serde_json::json!({}));
    assert!(!failed && text.contains(WORKFLOW_NAME), "{text}");

    let out = laptop.run(&["logout"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    // The laptop's login is over on the server: its refresh token, its current access
    // token (revoked by logout) and its earlier one (its session ended).
    assert_refresh_refused(&server, &laptop_refresh, "the laptop's refresh token");
    assert_401(
        workflows_with(&server, &laptop_access),
        INVALID_TOKEN,
        ACCESS_TOKEN_REVOKED,
        "the laptop's access token",
    );
    assert_401(
        workflows_with(&server, &laptop_first_access),
        INVALID_TOKEN,
        SESSION_ENDED,
        "the laptop's earlier access token",
    );
    let out = laptop.run(&["whoami"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("assay login"), "{}", stderr(&out));

    // The desktop's login is untouched: a new command, the running MCP server, and a
    // refresh (the session and its grant are alive, not just an access token).
    assert_whoami_member(&desktop.json(&["whoami"]), &user_id);
    let (failed, text) = desktop_mcp.call_tool("list_workflows", serde_json::json!({}));
    assert!(
        !failed && text.contains(WORKFLOW_NAME),
        "the desktop's MCP server after the laptop's logout: {text}\nits stderr:\n{}",
        desktop_mcp.stderr_text()
    );
    force_refresh_on_next_use(&desktop);
    assert_whoami_member(&desktop.json(&["whoami"]), &user_id);

    // Someone replays the laptop's spent (rotated-away) refresh token after the logout.
    // Its session is over, so it is refused as such; it must not be taken for theft of
    // the live grant, which would sign the desktop out too.
    assert_refresh_refused(
        &server,
        &laptop_first_refresh,
        "the laptop's spent refresh token",
    );
    let (failed, text) = desktop_mcp.call_tool("list_workflows", serde_json::json!({}));
    assert!(
        !failed && text.contains(WORKFLOW_NAME),
        "the desktop after a replay of the laptop's spent refresh token: {text}"
    );
    assert!(
        desktop_mcp.finish().success(),
        "EOF ends the MCP server cleanly"
    );
    force_refresh_on_next_use(&desktop);
    assert_whoami_member(&desktop.json(&["whoami"]), &user_id);

    let events = audit_events(&server);
    assert_eq!(
        count_action(&events, "oauth.refresh.reuse_detected"),
        0,
        "a spent token of an ended session is no theft alarm: {:#?}",
        events
            .iter()
            .filter(|e| e["action"]
                .as_str()
                .is_some_and(|a| a.starts_with("oauth.")))
            .collect::<Vec<_>>()
    );
}

#[test]
fn logging_in_again_on_one_machine_ends_the_previous_login() {
    let server = Server::start();
    let user_id = member_and_workflow(&server);
    let cli = CliHome::new();
    let mut browser = Browser::default();
    browser_login(&cli, &server.url, &[], &mut browser);
    let old_access = stored(&cli, "access_token");
    let old_refresh = stored(&cli, "refresh_token");

    // Same machine, same config directory, same context: `assay login` again.
    browser_login(&cli, &server.url, &[], &mut browser);
    let new_access = stored(&cli, "access_token");
    let new_refresh = stored(&cli, "refresh_token");
    assert_ne!(new_refresh, old_refresh, "a new login, a new refresh token");
    assert_ne!(
        session_of(&new_access),
        session_of(&old_access),
        "a new login, a new session"
    );

    // The replaced login ended on the server, not just here.
    assert_refresh_refused(&server, &old_refresh, "the previous login's refresh token");
    assert_401(
        workflows_with(&server, &old_access),
        INVALID_TOKEN,
        ACCESS_TOKEN_REVOKED,
        "the previous login's access token",
    );

    // The new one works, its refresh token included (through the CLI, which saves the
    // rotated one).
    assert_whoami_member(&cli.json(&["whoami"]), &user_id);
    force_refresh_on_next_use(&cli);
    assert_whoami_member(&cli.json(&["whoami"]), &user_id);
    assert_ne!(
        stored(&cli, "refresh_token"),
        new_refresh,
        "the new login's refresh token was used and rotated"
    );
    let res = workflows_with(&server, &stored(&cli, "access_token"));
    assert_eq!(res.status(), 200);

    let events = audit_events(&server);
    assert_eq!(
        count_action(&events, "oauth.refresh.reuse_detected"),
        0,
        "no refresh token was presented twice"
    );
    assert!(
        count_action(&events, "oauth.token.refreshed") >= 1,
        "the new login refreshed"
    );
}

#[test]
fn a_context_is_not_re_pointed_at_another_server() {
    let first = Server::start();
    let user_id = member_and_workflow(&first);
    let second = Server::start();
    member_and_workflow(&second);
    let cli = CliHome::new();
    let mut browser = Browser::default();
    browser_login(&cli, &first.url, &["--context", "work"], &mut browser);
    let before = cli.credentials();
    let config_before =
        std::fs::read_to_string(cli.config_dir().join("config.yaml")).expect("config.yaml");

    // `assay login OTHER-URL --context work`: a running `assay mcp serve` of context work
    // would pick the new tokens up and send them to the first server. Refused before any
    // sign-in, with the way out.
    let out = cli.run(&[
        "login",
        &second.url,
        "--context",
        "work",
        "--no-browser",
        "--org",
        "default",
        "--env",
        "dev",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{}{err}", stdout(&out));
    assert!(
        err.contains("assay context delete work"),
        "the refusal names `assay context delete`: {err}"
    );
    assert!(
        !err.contains(OPEN_URL),
        "refused before asking anyone to sign in: {err}"
    );
    // Nothing changed: the context, its credentials, and it still works on the first server.
    assert_eq!(
        cli.credentials(),
        before,
        "the stored credentials are untouched"
    );
    assert_eq!(
        std::fs::read_to_string(cli.config_dir().join("config.yaml")).expect("config.yaml"),
        config_before,
        "config.yaml is untouched"
    );
    assert_whoami_member(&cli.json(&["whoami"]), &user_id);
    let events = audit_events(&first);
    assert!(
        events.iter().any(|e| e["action"] == "identity.whoami"
            && e["actor"]["id"] == user_id.as_str()
            && e["outcome"] == "success"),
        "whoami after the refusal reached the first server"
    );

    // The other way out the message offers: another context name.
    browser_login(
        &cli,
        &second.url,
        &["--context", "lab"],
        &mut Browser::default(),
    );
    let listed = cli.run(&["context", "list"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let text = stdout(&listed);
    assert!(
        text.contains("work") && text.contains("lab"),
        "both contexts: {text}"
    );
    // Context work still signs in to the first server (the member's ID there).
    assert_whoami_member(&cli.json(&["whoami", "--context", "work"]), &user_id);
}
