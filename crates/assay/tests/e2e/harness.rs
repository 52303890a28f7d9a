//! A real `assay server` child process on a loopback port with its own data directory, and
//! helpers to drive it through the CLI binary and through REST.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_assay");

pub struct Server {
    pub child: Child,
    pub url: String,
    pub token: String,
    pub data_dir: PathBuf,
    /// The CA (PEM) the CLI runs and [`Server::http`] trust, for a server with TLS.
    pub ca: Option<PathBuf>,
    /// Keeps the data directory alive for the whole test.
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    pub fn start() -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().to_path_buf();
        let (child, url, token) = spawn(&data_dir, None);
        Server {
            child,
            url,
            token: token.expect("first start prints the admin token"),
            data_dir,
            ca: None,
            _dir: Some(dir),
        }
    }

    /// [`Server::start`] with more `assay server` flags and environment variables.
    pub fn start_with(args: &[&str], envs: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().to_path_buf();
        let (child, url, token) = spawn_with(&data_dir, Some(args), envs, "warn", None);
        Server {
            child,
            url,
            token: token.expect("first start prints the admin token"),
            data_dir,
            ca: None,
            _dir: Some(dir),
        }
    }

    /// Starts a new server process on the same data directory (after a crash or a stop).
    pub fn restart(mut self) -> Server {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, url, token) = spawn(&self.data_dir, None);
        assert!(
            token.is_none(),
            "a later start must not print a token again"
        );
        Server {
            child,
            url,
            token: self.token.clone(),
            data_dir: self.data_dir.clone(),
            ca: self.ca.clone(),
            _dir: self._dir.take(),
        }
    }

    /// `kill -9`: no chance to clean up.
    pub fn kill9(&mut self) {
        let pid = self.child.id() as i32;
        // SAFETY-free: plain kill(2) through the command line tool keeps this test dependency-light.
        let status = Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let _ = self.child.wait();
    }

    pub fn api(&self, path: &str) -> String {
        format!(
            "{}/v1/organizations/default/environments/dev{path}",
            self.url
        )
    }

    /// Starts a server whose stdout and stderr are kept in memory (to scan them), logging
    /// at `rust_log` (e.g. `debug`).
    pub fn start_logged(rust_log: &str) -> (Server, ServerLog) {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().to_path_buf();
        let log = ServerLog::default();
        let (child, url, token) = spawn_with(&data_dir, None, &[], rust_log, Some(&log));
        let server = Server {
            child,
            url,
            token: token.expect("first start prints the admin token"),
            data_dir,
            ca: None,
            _dir: Some(dir),
        };
        (server, log)
    }

    /// Runs the CLI against this server.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_with_stdin(args, None)
    }

    pub fn cli_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.cli_as(&self.token, args, stdin)
    }

    /// Runs the CLI with another token (`ASSAY_TOKEN`).
    pub fn cli_as(&self, token: &str, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("ASSAY_URL", &self.url)
            .env("ASSAY_TOKEN", token)
            .envs(self.ca.iter().map(|ca| ("SSL_CERT_FILE", ca)))
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn assay cli");
        if let Some(input) = stdin {
            use std::io::Write;
            let mut si = child.stdin.take().expect("stdin");
            si.write_all(input.as_bytes()).expect("write stdin");
        }
        child.wait_with_output().expect("cli output")
    }

    /// Runs the CLI with `-o json` and parses stdout, asserting success.
    pub fn cli_json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let out = self.cli(&all);
        assert!(
            out.status.success(),
            "assay {all:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "assay {all:?} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    pub fn http(&self) -> Http {
        assay_client::install_crypto_provider();
        let mut builder = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .no_proxy();
        if let Some(ca) = &self.ca {
            let pem = std::fs::read(ca).expect("read the CA");
            builder = builder
                .tls_certs_merge(reqwest::Certificate::from_pem_bundle(&pem).expect("PEM CA"));
        }
        Http {
            client: builder.build().expect("client"),
            token: self.token.clone(),
        }
    }

    /// Polls an execution until it reaches a terminal status.
    pub fn wait_finished(&self, execution: &str) -> Value {
        let http = self.http();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let e = http.get_json(&self.api(&format!("/executions/{execution}")));
            let status = e["status"].as_str().unwrap_or_default().to_string();
            if !matches!(status.as_str(), "queued" | "running") {
                return e;
            }
            assert!(Instant::now() < deadline, "{execution} still {status}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Polls until the execution's log contains `needle`; returns the log text.
    pub fn wait_log(&self, execution: &str, needle: &str) -> String {
        let http = self.http();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let page = http.get_json(&self.api(&format!("/executions/{execution}/logs?tail=1000")));
            let text = log_text(&page);
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{execution}: {needle:?} never appeared in the log:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Everything a server process wrote, as bytes.
#[derive(Clone, Default)]
pub struct ServerLog {
    pub stdout: Arc<Mutex<Vec<u8>>>,
    pub stderr: Arc<Mutex<Vec<u8>>>,
}

impl ServerLog {
    pub fn stdout(&self) -> Vec<u8> {
        self.stdout.lock().map(|b| b.clone()).unwrap_or_default()
    }

    pub fn stderr(&self) -> Vec<u8> {
        self.stderr.lock().map(|b| b.clone()).unwrap_or_default()
    }
}

/// Copies a pipe into `buffer` until it closes.
fn keep(mut pipe: impl std::io::Read + Send + 'static, buffer: Arc<Mutex<Vec<u8>>>) {
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            if let Ok(mut b) = buffer.lock() {
                b.extend_from_slice(&chunk[..n]);
            }
        }
    });
}

/// Starts `assay server` and reads its announcement: the URL and, on first start, the token.
fn spawn(data_dir: &Path, extra: Option<&[&str]>) -> (Child, String, Option<String>) {
    spawn_with(data_dir, extra, &[], "warn", None)
}

/// [`spawn`] with environment variables `envs`, logging at `rust_log`; with `log`, stdout
/// and stderr are also kept there.
fn spawn_with(
    data_dir: &Path,
    extra: Option<&[&str]>,
    envs: &[(&str, &str)],
    rust_log: &str,
    log: Option<&ServerLog>,
) -> (Child, String, Option<String>) {
    let mut cmd = Command::new(BIN);
    cmd.args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(extra.unwrap_or(&[]))
        .env_remove("ASSAY_DATABASE_URL")
        .envs(envs.iter().copied())
        .env("RUST_LOG", rust_log)
        .stdout(Stdio::piped())
        .stderr(if log.is_some() {
            Stdio::piped()
        } else {
            Stdio::inherit()
        });
    let mut child = cmd.spawn().expect("spawn assay server");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    let stdout_copy = log.map(|l| l.stdout.clone());
    if let Some(l) = log {
        keep(child.stderr.take().expect("stderr"), l.stderr.clone());
    }
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut raw = Vec::new();
        loop {
            raw.clear();
            match reader.read_until(b'\n', &mut raw) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if let Some(copy) = &stdout_copy
                && let Ok(mut b) = copy.lock()
            {
                b.extend_from_slice(&raw);
            }
            let line = String::from_utf8_lossy(&raw).trim_end().to_owned();
            if tx.send(line).is_err() {
                // Keep draining so the server never blocks on a full pipe.
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut url = None;
    let mut token = None;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) else {
            if url.is_some() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("server exited early ({status}): {seen:?}");
            }
            continue;
        };
        if let Some(rest) = line.strip_prefix("Assay is listening on ") {
            let addr = rest.split_whitespace().next().expect("address");
            // With --tls-cert the server serves (and announces) https.
            let scheme = if rest.contains("(public URL https://") {
                "https"
            } else {
                "http"
            };
            url = Some(format!("{scheme}://{addr}"));
        }
        if let Some(t) = line.trim().strip_prefix("admin API token:") {
            token = Some(t.trim().to_string());
            break;
        }
        seen.push(line);
    }
    let url = url.unwrap_or_else(|| panic!("server did not announce itself: {seen:?}"));
    // Wait until the API answers.
    assay_client::install_crypto_provider();
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        // Only "is it up yet": a TLS test's own clients check the certificate.
        .tls_danger_accept_invalid_certs(url.starts_with("https://"))
        .build()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(30);
    while client
        .get(format!("{url}/healthz"))
        .send()
        .map(|r| !r.status().is_success())
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "server never became healthy");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, url, token)
}

pub struct Http {
    pub client: reqwest::blocking::Client,
    pub token: String,
}

impl Http {
    pub fn get_json(&self, url: &str) -> Value {
        let resp = self
            .client
            .get(url)
            .bearer_auth(&self.token)
            .send()
            .expect("GET");
        let status = resp.status();
        let body = resp.text().expect("body");
        assert!(status.is_success(), "GET {url}: {status} {body}");
        serde_json::from_str(&body).expect("json")
    }

    pub fn post_yaml(&self, url: &str, yaml: &str) -> reqwest::blocking::Response {
        self.client
            .post(url)
            .bearer_auth(&self.token)
            .header("content-type", "text/yaml")
            .body(yaml.to_string())
            .send()
            .expect("POST")
    }

    pub fn post_json(&self, url: &str, body: &Value) -> reqwest::blocking::Response {
        self.client
            .post(url)
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .expect("POST")
    }
}

pub fn log_text(page: &Value) -> String {
    page["lines"]
        .as_array()
        .map(|lines| {
            lines
                .iter()
                .filter_map(|l| l["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// PIDs of live (non-zombie) processes in process group `pgid`, read from /proc.
pub fn processes_in_group(pgid: i32) -> Vec<i32> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the parenthesised command: state ppid pgrp …
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[0] != "Z" && fields[2].parse::<i32>().ok() == Some(pgid) {
            found.push(pid);
        }
    }
    found
}

/// Waits up to `within` for a process group to disappear.
pub fn wait_group_gone(pgid: i32, within: Duration) -> Vec<i32> {
    let deadline = Instant::now() + within;
    loop {
        let left = processes_in_group(pgid);
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Extracts `PGID=<n>` printed by a step.
pub fn pgid_from_log(log: &str) -> i32 {
    log.lines()
        .find_map(|l| l.split("PGID=").nth(1))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no PGID= line in log:\n{log}"))
}

pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/workflows")
}
