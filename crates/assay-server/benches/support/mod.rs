//! What the HTTP throughput benchmarks share: the fixture (organization, environment,
//! workflows, a finished execution, an API token) and the app served over it, the timing
//! knobs, the keep-alive client loop that measures one case, its pre-flight check, and the
//! statistics reported.
//!
//! Included by each bench with `#[path = "support/mod.rs"] mod support;` (every bench is
//! its own crate).

use assay_control::{ControlPlaneConfig, LocalControlPlane};
use assay_core::actor::ClientInfo;
use assay_core::execution::{ExecutionStatus, RunRequest};
use assay_core::identity::{ApiTokenKind, NewApiToken};
use assay_core::ports::{Clock, ControlPlane, Store, SystemClock};
use assay_core::tenancy::{DEFAULT_AUDIT_RETENTION_DAYS, Environment, Organization};
use assay_core::{Actor, EnvRef, Level, Principal};
use assay_exec::{FsExecutionFiles, LocalExecutor, LocalExecutorConfig};
use assay_server::{AppState, ServerConfig};
use bytes::Bytes;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const WORKFLOWS: usize = 50;
pub const ORG: &str = "bench";
pub const ENV: &str = "dev";
const PROTOCOL: &str = "2025-11-25";

/// The process-wide TLS provider the HTTP clients need.
pub fn install_crypto() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// A SQLite store in `dir` holding the organization `ORG` and its environment `ENV`.
pub async fn tenant(dir: &Path) -> (Arc<dyn Store>, Organization, Environment) {
    let store: Arc<dyn Store> = Arc::new(
        assay_store::SqliteStore::open(&dir.join("bench.db"))
            .await
            .unwrap(),
    );
    let now = time::OffsetDateTime::now_utc();
    let org = Organization {
        id: Uuid::now_v7(),
        slug: ORG.into(),
        name: ORG.into(),
        audit_retention_days: DEFAULT_AUDIT_RETENTION_DAYS,
        created_at: now,
    };
    store.insert_org(&org).await.unwrap();
    let environment = Environment {
        id: Uuid::now_v7(),
        org_id: org.id,
        slug: ENV.into(),
        name: ENV.into(),
        created_at: now,
    };
    store.insert_env(&environment).await.unwrap();
    (store, org, environment)
}

/// A control plane over `store` with `config`, executing locally with its files in
/// `dir/data`.
pub async fn plane(
    dir: &Path,
    data: &str,
    store: Arc<dyn Store>,
    config: ControlPlaneConfig,
) -> Arc<LocalControlPlane> {
    let data_dir = dir.join(data);
    let files = Arc::new(FsExecutionFiles::new(data_dir.clone()));
    let executor = Arc::new(LocalExecutor::new(
        LocalExecutorConfig {
            data_dir,
            ..LocalExecutorConfig::default()
        },
        files.clone(),
    ));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    LocalControlPlane::start(config, store, executor, files, clock)
        .await
        .unwrap()
}

/// What the cases read and call with, created through `plane`.
pub struct Seeded {
    /// The one finished (passed) execution.
    pub execution_id: String,
    /// A member API token that may read `ENV`: what an agent would hold.
    pub api_token: String,
    pub token_id: String,
}

/// `WORKFLOWS` workflows, one run of the first waited for until it passed, and the API
/// token.
pub async fn seed(plane: &LocalControlPlane, org: &Organization) -> Seeded {
    let system = Actor::new(Principal::system(org.id), ClientInfo::default());
    let env = EnvRef::new(ORG, ENV);
    for i in 0..WORKFLOWS {
        let yaml = format!(
            "kind: TestWorkflow\nmetadata:\n  name: wf-{i:03}\n  labels:\n    team: t{}\nspec:\n  steps:\n  - name: main\n    shell: echo {i}\n",
            i % 5
        );
        plane.create_workflow(&system, &env, &yaml).await.unwrap();
    }
    let started = plane
        .run_workflow(&system, &env, "wf-000", &RunRequest::default())
        .await
        .unwrap();
    let execution = plane
        .wait_for_execution(
            &system,
            &env,
            &started.id.to_string(),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(execution.status, ExecutionStatus::Passed, "{execution:?}");
    let created = plane
        .create_api_token(
            &system,
            ORG,
            &NewApiToken {
                name: "bench-agent".into(),
                description: String::new(),
                kind: ApiTokenKind::Member,
                grants: [(ENV.to_owned(), Level::Read)].into(),
                expires_in_days: None,
                never_expires: false,
            },
        )
        .await
        .unwrap();
    Seeded {
        execution_id: execution.id.to_string(),
        api_token: created.secret,
        token_id: created.token.id.to_string(),
    }
}

/// `assay_server::router` over `plane` (its own authenticator) on `listener`, public at
/// `public_url`, as `assay server` serves it, until `stop` is cancelled.
pub fn serve_app(
    listener: tokio::net::TcpListener,
    plane: &Arc<LocalControlPlane>,
    public_url: url::Url,
    stop: &CancellationToken,
) {
    let mut config = ServerConfig::new(public_url);
    config.shutdown = stop.clone();
    let router = assay_server::router(AppState {
        control: plane.clone(),
        auth: plane.authenticator(),
        ready: Arc::new(|| Box::pin(async { true })),
        config,
    });
    tokio::spawn(assay_server::serve(
        listener,
        router,
        stop.clone().cancelled_owned(),
    ));
}

/// `ASSAY_BENCH_CLIENTS` (concurrent keep-alive clients, default 16), `ASSAY_BENCH_SECS`
/// (seconds measured per case and round, default 5), `ASSAY_BENCH_WARMUP_MS` (warm-up per
/// case and round, default 1000), `ASSAY_BENCH_ROUNDS` (rounds, default 3); `-- --quick`
/// or `ASSAY_BENCH_QUICK=1`: a smoke run (1 s, 200 ms warm-up, 1 round).
pub struct Timing {
    pub clients: usize,
    pub measure: Duration,
    pub warmup: Duration,
    pub rounds: usize,
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

impl Timing {
    pub fn from_env() -> Self {
        let quick = std::env::args().any(|a| a == "--quick")
            || std::env::var("ASSAY_BENCH_QUICK").is_ok_and(|v| v == "1");
        let (secs, warmup_ms, rounds) = if quick { (1, 200, 1) } else { (5, 1000, 3) };
        Self {
            clients: env_u64("ASSAY_BENCH_CLIENTS", 16).max(1) as usize,
            measure: Duration::from_secs(env_u64("ASSAY_BENCH_SECS", secs).max(1)),
            warmup: Duration::from_millis(env_u64("ASSAY_BENCH_WARMUP_MS", warmup_ms)),
            rounds: env_u64("ASSAY_BENCH_ROUNDS", rounds).max(1) as usize,
        }
    }
}

/// One case as the client loop sees it: where to POST, with which credential and body, a
/// fragment every successful answer contains (checked on each response, cheaply), and the
/// counter of requests answered 200 (warm-up and pre-flight included).
pub struct Load<'a> {
    pub name: &'a str,
    pub url: &'a str,
    pub bearer: Option<&'a str>,
    pub body: &'a Bytes,
    pub expect: &'static str,
    pub sent: &'a AtomicU64,
}

pub struct Stats {
    pub rps: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub count: usize,
}

pub fn tool_call(tool: &str, arguments: Value) -> Bytes {
    Bytes::from(
        serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}}))
        .unwrap(),
    )
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn client(bearer: Option<&str>) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::ACCEPT,
        "application/json, text/event-stream".parse().unwrap(),
    );
    headers.insert(
        reqwest::header::CONTENT_TYPE,
        "application/json".parse().unwrap(),
    );
    headers.insert("mcp-protocol-version", PROTOCOL.parse().unwrap());
    if let Some(token) = bearer {
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
    }
    reqwest::Client::builder()
        .no_proxy()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// One request, its answer read as JSON-RPC in full: fails loudly on a wrong setup
/// before anything is measured.
pub async fn check_once(load: &Load<'_>) {
    let res = client(load.bearer)
        .post(load.url)
        .body(load.body.clone())
        .send()
        .await
        .unwrap();
    let status = res.status();
    let content_type = res.headers().get("content-type").cloned();
    let body = res.text().await.unwrap();
    assert_eq!(status, 200, "{}: {body}", load.name);
    assert_eq!(
        content_type.as_ref().and_then(|v| v.to_str().ok()),
        Some("application/json"),
        "{}",
        load.name
    );
    let message: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(message["id"], 1, "{}: {body}", load.name);
    assert_ne!(message["result"]["isError"], true, "{}: {body}", load.name);
    assert!(body.contains(load.expect), "{}: {body}", load.name);
    load.sent.fetch_add(1, Ordering::Relaxed);
}

/// `timing.clients` tasks, each with its own client (one keep-alive connection), loop
/// for the warm-up and then the measured window; requests completed inside the window
/// count.
pub async fn measure(load: &Load<'_>, timing: &Timing) -> Stats {
    let start = Instant::now();
    let window_start = start + timing.warmup;
    let window_end = window_start + timing.measure;
    let workers: Vec<_> = (0..timing.clients)
        .map(|_| {
            let http = client(load.bearer);
            let (url, body, expect) = (load.url.to_owned(), load.body.clone(), load.expect);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut answered = 0u64;
                loop {
                    let sent = Instant::now();
                    let res = http.post(&url).body(body.clone()).send().await.unwrap();
                    let status = res.status();
                    let answer = res.bytes().await.unwrap();
                    let done = Instant::now();
                    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
                    assert!(
                        contains(&answer, expect.as_bytes())
                            && !contains(&answer, b"\"isError\":true"),
                        "{}",
                        String::from_utf8_lossy(&answer)
                    );
                    answered += 1;
                    if done >= window_end {
                        break;
                    }
                    if done >= window_start {
                        latencies.push(done - sent);
                    }
                }
                (latencies, answered)
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        let (latencies, answered) = w.await.unwrap();
        all.extend(latencies);
        load.sent.fetch_add(answered, Ordering::Relaxed);
    }
    all.sort();
    let at = |p: f64| all[((all.len() as f64 * p).ceil() as usize).clamp(1, all.len()) - 1];
    Stats {
        rps: all.len() as f64 / timing.measure.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
        count: all.len(),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
