//! Benchmark: MCP `tools/call` throughput and latency over loopback HTTP, Assay's endpoint
//! against a bare rmcp server, in one run.
//!
//! Run: `cargo bench -p assay-server --bench mcp_throughput`
//! Knobs: `ASSAY_BENCH_CLIENTS` (concurrent keep-alive clients, default 16),
//! `ASSAY_BENCH_SECS` (seconds measured per case and round, default 5),
//! `ASSAY_BENCH_WARMUP_MS` (warm-up per case and round, default 1000),
//! `ASSAY_BENCH_ROUNDS` (rounds, default 3; a case's best round is reported).
//! `-- --quick` or `ASSAY_BENCH_QUICK=1`: a smoke run (1 s, 200 ms warm-up, 1 round).
//! `ASSAY_BENCH_BREAKDOWN=1`: two more cases, the full stack over the audit-off plane.
//! `ASSAY_BENCH_ONLY=echo,list_workflows`: only the cases whose name contains one of these
//! comma-separated terms (for profiling one path).
//!
//! Cases, each a stateless Streamable HTTP POST (`tools/call`, MCP-Protocol-Version
//! 2025-11-25, JSON answer) from N clients looping on their own keep-alive connection:
//! - full stack: `assay_server::router` (every layer, API-token authentication, RBAC,
//!   audit on) over `LocalControlPlane` on a SQLite file — `list_workflows` (50
//!   workflows, one with a finished execution) and `get_execution_info` (that execution);
//! - auth + audit off: the same two tools through `assay_mcp::streamable_http_service`
//!   on a plain axum router whose only layer inserts a fixed `McpCaller` (the principal
//!   the token authenticates to, looked up once), over a second `LocalControlPlane` on
//!   the same store with `AuditMode::OffForBenchmarks`;
//! - echo: rmcp's own Streamable HTTP service with a one-tool handler (the floor).
//!
//! Client and servers share this process and the machine's cores, so absolute figures
//! include the client's cost; compare the ratios. Goal: full stack ≥ 0.5× echo.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use assay_control::{AuditMode, ControlPlaneConfig, LocalControlPlane};
use assay_core::actor::ClientInfo;
use assay_core::execution::{ExecutionStatus, RunRequest};
use assay_core::identity::{ApiTokenKind, NewApiToken};
use assay_core::ports::{Clock, ControlPlane, Store, SystemClock};
use assay_core::tenancy::{DEFAULT_AUDIT_RETENTION_DAYS, Environment, Organization};
use assay_core::{Actor, EnvRef, Level, Principal};
use assay_exec::{FsExecutionFiles, LocalExecutor, LocalExecutorConfig};
use assay_mcp::{AssayMcp, AssayMcpConfig, McpCaller, McpHttpConfig, streamable_http_service};
use assay_server::mcp::MCP_PATH;
use assay_server::{AppState, ServerConfig};
use bytes::Bytes;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const WORKFLOWS: usize = 50;
const PROTOCOL: &str = "2025-11-25";
const ORG: &str = "bench";
const ENV: &str = "dev";
const ECHO_TEXT: &str = "hello-assay";

struct Settings {
    clients: usize,
    measure: Duration,
    warmup: Duration,
    rounds: usize,
    /// `ASSAY_BENCH_ONLY=echo,list_workflows`: measure only cases whose name contains one of these
    /// (for profiling one path); every case is still checked once.
    only: Vec<String>,
    /// `ASSAY_BENCH_BREAKDOWN=1`: also measure the full stack over the audit-off plane,
    /// which splits the full stack's cost into HTTP layers + authentication vs audit.
    breakdown: bool,
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

impl Settings {
    fn from_env() -> Self {
        let quick = std::env::args().any(|a| a == "--quick")
            || std::env::var("ASSAY_BENCH_QUICK").is_ok_and(|v| v == "1");
        let (secs, warmup_ms, rounds) = if quick { (1, 200, 1) } else { (5, 1000, 3) };
        Self {
            clients: env_u64("ASSAY_BENCH_CLIENTS", 16).max(1) as usize,
            measure: Duration::from_secs(env_u64("ASSAY_BENCH_SECS", secs).max(1)),
            warmup: Duration::from_millis(env_u64("ASSAY_BENCH_WARMUP_MS", warmup_ms)),
            rounds: env_u64("ASSAY_BENCH_ROUNDS", rounds).max(1) as usize,
            only: std::env::var("ASSAY_BENCH_ONLY")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            breakdown: std::env::var("ASSAY_BENCH_BREAKDOWN").is_ok_and(|v| v == "1"),
        }
    }

    fn selects(&self, case: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| case.contains(o.as_str()))
    }
}

/// One measured case: where to POST, with which credential and body, and a fragment
/// every successful answer contains (checked on each response, cheaply).
struct Case {
    name: &'static str,
    url: String,
    bearer: Option<String>,
    body: Bytes,
    expect: &'static str,
    /// Served by the audited plane: these cases' calls must equal the audit events their
    /// token caused (the other cases use the same token or principal, audit off).
    audited: bool,
    /// The auth/audit-off case measuring the same tool (index into the case list).
    pair: Option<usize>,
    /// Requests answered 200, warm-up included.
    sent: AtomicU64,
}

struct Stats {
    rps: f64,
    p50: Duration,
    p99: Duration,
    count: usize,
}

fn main() {
    let settings = Settings::from_env();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(settings));
}

fn tool_call(tool: &str, arguments: Value) -> Bytes {
    Bytes::from(
        serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}}))
        .unwrap(),
    )
}

async fn plane(
    dir: &std::path::Path,
    store: Arc<dyn Store>,
    audit: AuditMode,
) -> Arc<LocalControlPlane> {
    let data_dir = dir.join(format!("data-{audit:?}"));
    let files = Arc::new(FsExecutionFiles::new(data_dir.clone()));
    let executor = Arc::new(LocalExecutor::new(
        LocalExecutorConfig {
            data_dir,
            ..LocalExecutorConfig::default()
        },
        files.clone(),
    ));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    LocalControlPlane::start(
        ControlPlaneConfig {
            audit,
            ..ControlPlaneConfig::default()
        },
        store,
        executor,
        files,
        clock,
    )
    .await
    .unwrap()
}

/// `assay_server::router` over `plane` (its own API-token authenticator) on a fresh
/// loopback port, as `assay server` serves it; returns the base URL.
async fn full_stack(plane: &Arc<LocalControlPlane>, stop: &CancellationToken) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut config = ServerConfig::new(url::Url::parse(&format!("{base}/")).unwrap());
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
    base
}

/// Serves `router` on a fresh loopback port (with the server's own `serve`: TCP_NODELAY,
/// connect info) until `stop` is cancelled; returns the base URL.
async fn serve(router: axum::Router, stop: &CancellationToken) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(assay_server::serve(
        listener,
        router,
        stop.clone().cancelled_owned(),
    ));
    format!("http://{addr}")
}

async fn run(settings: Settings) {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    println!(
        "MCP tools/call over loopback HTTP: {} clients, {} s measured after {} ms warm-up per case, {} round(s), best round reported",
        settings.clients,
        settings.measure.as_secs(),
        settings.warmup.as_millis(),
        settings.rounds
    );
    println!("setting up: SQLite store, {WORKFLOWS} workflows, one finished execution …");
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        assay_store::SqliteStore::open(&dir.path().join("bench.db"))
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
    store
        .insert_env(&Environment {
            id: Uuid::now_v7(),
            org_id: org.id,
            slug: ENV.into(),
            name: ENV.into(),
            created_at: now,
        })
        .await
        .unwrap();

    let audited = plane(dir.path(), store.clone(), AuditMode::On).await;
    let system = Actor::new(Principal::system(org.id), ClientInfo::default());
    let env = EnvRef::new(ORG, ENV);
    for i in 0..WORKFLOWS {
        let yaml = format!(
            "kind: TestWorkflow\nmetadata:\n  name: wf-{i:03}\n  labels:\n    team: t{}\nspec:\n  steps:\n  - name: main\n    shell: echo {i}\n",
            i % 5
        );
        audited.create_workflow(&system, &env, &yaml).await.unwrap();
    }
    let started = audited
        .run_workflow(&system, &env, "wf-000", &RunRequest::default())
        .await
        .unwrap();
    let execution = audited
        .wait_for_execution(
            &system,
            &env,
            &started.id.to_string(),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(execution.status, ExecutionStatus::Passed, "{execution:?}");
    // A member token that may read this one environment: what an agent would hold.
    let created = audited
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
    let (secret, token_id) = (created.secret, created.token.id.to_string());

    // Started only now, so its recovery and dispatcher never see a live execution.
    let unaudited = plane(dir.path(), store.clone(), AuditMode::OffForBenchmarks).await;
    let stop = CancellationToken::new();

    // a. the product's whole app
    let full_base = full_stack(&audited, &stop).await;

    // b. the same tools with no authentication layer and no audit: the principal the
    // token stands for, resolved once, handed to every request.
    let principal = unaudited
        .authenticator()
        .authenticate(&secret, &ClientInfo::default(), Some(ORG))
        .await
        .unwrap();
    let caller = McpCaller {
        actor: Actor::new(
            principal,
            ClientInfo {
                ip: Some("127.0.0.1".into()),
                ..ClientInfo::default()
            },
        ),
        env: env.clone(),
    };
    let off_service = streamable_http_service(
        AssayMcp::new(unaudited.clone(), AssayMcpConfig::default()),
        &McpHttpConfig::default(),
        stop.clone(),
    );
    let off = axum::Router::new()
        .route_service(MCP_PATH, off_service)
        .layer(axum::Extension(caller));
    let off_base = serve(off, &stop).await;

    // c. bare rmcp
    let echo =
        axum::Router::new().route_service("/mcp", assay_mcp::bench_support::echo_http_service());
    let echo_base = serve(echo, &stop).await;

    let mcp_path = format!("/organizations/{ORG}/environments/{ENV}/mcp");
    let list = tool_call("list_workflows", json!({"pageSize": WORKFLOWS}));
    let info = tool_call(
        "get_execution_info",
        json!({"executionId": execution.id.to_string()}),
    );
    let case = |name, url: String, bearer: Option<&str>, body: &Bytes, expect| Case {
        name,
        url,
        bearer: bearer.map(str::to_owned),
        body: body.clone(),
        expect,
        audited: false,
        pair: None,
        sent: AtomicU64::new(0),
    };
    let audited_pair = |mut c: Case, pair| {
        c.audited = true;
        c.pair = Some(pair);
        c
    };
    let mut cases = vec![
        case(
            "echo (bare rmcp)",
            format!("{echo_base}/mcp"),
            None,
            &tool_call(
                assay_mcp::bench_support::ECHO_TOOL,
                json!({"text": ECHO_TEXT}),
            ),
            "\"text\":\"hello-assay\"",
        ),
        case(
            "list_workflows / auth+audit off",
            format!("{off_base}{mcp_path}"),
            None,
            &list,
            "\"total\":50",
        ),
        audited_pair(
            case(
                "list_workflows / full stack",
                format!("{full_base}{mcp_path}"),
                Some(&secret),
                &list,
                "\"total\":50",
            ),
            1,
        ),
        case(
            "get_execution_info / auth+audit off",
            format!("{off_base}{mcp_path}"),
            None,
            &info,
            "\"status\":\"passed\"",
        ),
        audited_pair(
            case(
                "get_execution_info / full stack",
                format!("{full_base}{mcp_path}"),
                Some(&secret),
                &info,
                "\"status\":\"passed\"",
            ),
            3,
        ),
    ];
    if settings.breakdown {
        let base = full_stack(&unaudited, &stop).await;
        cases.push(case(
            "list_workflows / full stack, audit off",
            format!("{base}{mcp_path}"),
            Some(&secret),
            &list,
            "\"total\":50",
        ));
        cases.push(case(
            "get_execution_info / full stack, audit off",
            format!("{base}{mcp_path}"),
            Some(&secret),
            &info,
            "\"status\":\"passed\"",
        ));
    }
    for c in &cases {
        check_once(c).await;
    }

    let mut best: Vec<Option<Stats>> = cases.iter().map(|_| None).collect();
    for round in 1..=settings.rounds {
        for (i, c) in cases.iter().enumerate() {
            if !settings.selects(c.name) {
                continue;
            }
            let s = measure(c, &settings).await;
            println!(
                "round {round}/{}: {:<42} {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms",
                settings.rounds,
                c.name,
                s.rps,
                ms(s.p50),
                ms(s.p99)
            );
            if best[i].as_ref().is_none_or(|b| s.rps > b.rps) {
                best[i] = Some(s);
            }
        }
    }

    println!();
    println!(
        "{:<42} {:>9} {:>8} {:>8} {:>8} {:>7} {:>7}",
        "case (best round)", "req/s", "p50 ms", "p99 ms", "calls", "×echo", "×off"
    );
    let ratio = |a: &Stats, b: &Option<Stats>| {
        b.as_ref()
            .map_or_else(|| "-".to_owned(), |b| format!("{:.2}", a.rps / b.rps))
    };
    for (c, s) in cases.iter().zip(&best) {
        let Some(s) = s else { continue };
        let off = c
            .pair
            .map_or_else(|| "-".to_owned(), |pair| ratio(s, &best[pair]));
        println!(
            "{:<42} {:>9.0} {:>8.2} {:>8.2} {:>8} {:>7} {:>7}",
            c.name,
            s.rps,
            ms(s.p50),
            ms(s.p99),
            s.count,
            ratio(s, &best[0]),
            off
        );
    }

    // Proof that audit was on for the full stack and off for the other plane: the token's
    // events are exactly the full-stack calls (both planes see the same token and store).
    let full_calls: u64 = cases
        .iter()
        .filter(|c| c.audited)
        .map(|c| c.sent.load(Ordering::Relaxed))
        .sum();
    let events = store.audit_events(org.id, 0, u32::MAX).await.unwrap();
    let by_token = events
        .iter()
        .filter(|e| e.actor.credential_id.as_deref() == Some(token_id.as_str()))
        .count() as u64;
    println!();
    println!(
        "audit events by the bench token: {by_token} (full-stack calls answered: {full_calls})"
    );
    assert_eq!(by_token, full_calls);

    stop.cancel();
    audited.shutdown().await;
    unaudited.shutdown().await;
}

fn ms(d: Duration) -> f64 {
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
async fn check_once(case: &Case) {
    let res = client(case.bearer.as_deref())
        .post(&case.url)
        .body(case.body.clone())
        .send()
        .await
        .unwrap();
    let status = res.status();
    let content_type = res.headers().get("content-type").cloned();
    let body = res.text().await.unwrap();
    assert_eq!(status, 200, "{}: {body}", case.name);
    assert_eq!(
        content_type.as_ref().and_then(|v| v.to_str().ok()),
        Some("application/json"),
        "{}",
        case.name
    );
    let message: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(message["id"], 1, "{}: {body}", case.name);
    assert_ne!(message["result"]["isError"], true, "{}: {body}", case.name);
    assert!(body.contains(case.expect), "{}: {body}", case.name);
    case.sent.fetch_add(1, Ordering::Relaxed);
}

/// `settings.clients` tasks, each with its own client (one keep-alive connection), loop
/// for the warm-up and then the measured window; requests completed inside the window
/// count.
async fn measure(case: &Case, settings: &Settings) -> Stats {
    let start = Instant::now();
    let window_start = start + settings.warmup;
    let window_end = window_start + settings.measure;
    let workers: Vec<_> = (0..settings.clients)
        .map(|_| {
            let http = client(case.bearer.as_deref());
            let (url, body, expect) = (case.url.clone(), case.body.clone(), case.expect);
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
        case.sent.fetch_add(answered, Ordering::Relaxed);
    }
    all.sort();
    let at = |p: f64| all[((all.len() as f64 * p).ceil() as usize).clamp(1, all.len()) - 1];
    Stats {
        rps: all.len() as f64 / settings.measure.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
        count: all.len(),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
