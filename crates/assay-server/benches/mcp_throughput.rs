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

#[path = "support/mod.rs"]
mod support;

use assay_control::{AuditMode, ControlPlaneConfig, LocalControlPlane};
use assay_core::actor::ClientInfo;
use assay_core::{Actor, EnvRef};
use assay_mcp::{AssayMcp, AssayMcpConfig, McpCaller, McpHttpConfig, streamable_http_service};
use assay_server::mcp::MCP_PATH;
use bytes::Bytes;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use support::{
    ENV, Load, ORG, Stats, Timing, WORKFLOWS, check_once, install_crypto, measure, ms, plane, seed,
    serve_app, tenant, tool_call,
};
use tokio_util::sync::CancellationToken;

const ECHO_TEXT: &str = "hello-assay";

struct Settings {
    timing: Timing,
    /// `ASSAY_BENCH_ONLY=echo,list_workflows`: measure only cases whose name contains one of these
    /// (for profiling one path); every case is still checked once.
    only: Vec<String>,
    /// `ASSAY_BENCH_BREAKDOWN=1`: also measure the full stack over the audit-off plane,
    /// which splits the full stack's cost into HTTP layers + authentication vs audit.
    breakdown: bool,
}

impl Settings {
    fn from_env() -> Self {
        Self {
            timing: Timing::from_env(),
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

impl Case {
    fn load(&self) -> Load<'_> {
        Load {
            name: self.name,
            url: &self.url,
            bearer: self.bearer.as_deref(),
            body: &self.body,
            expect: self.expect,
            sent: &self.sent,
        }
    }
}

fn main() {
    let settings = Settings::from_env();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(settings));
}

/// `assay_server::router` over `plane` (its own API-token authenticator) on a fresh
/// loopback port, as `assay server` serves it; returns the base URL.
async fn full_stack(plane: &Arc<LocalControlPlane>, stop: &CancellationToken) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let public_url = url::Url::parse(&format!("{base}/")).unwrap();
    serve_app(listener, plane, public_url, stop);
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

/// The default control-plane configuration, with `audit`.
fn audit_config(audit: AuditMode) -> ControlPlaneConfig {
    ControlPlaneConfig {
        audit,
        ..ControlPlaneConfig::default()
    }
}

async fn run(settings: Settings) {
    install_crypto();
    println!(
        "MCP tools/call over loopback HTTP: {} clients, {} s measured after {} ms warm-up per case, {} round(s), best round reported",
        settings.timing.clients,
        settings.timing.measure.as_secs(),
        settings.timing.warmup.as_millis(),
        settings.timing.rounds
    );
    println!("setting up: SQLite store, {WORKFLOWS} workflows, one finished execution …");
    let dir = tempfile::tempdir().unwrap();
    let (store, org, _) = tenant(dir.path()).await;
    let audited = plane(
        dir.path(),
        "data-On",
        store.clone(),
        audit_config(AuditMode::On),
    )
    .await;
    let seeded = seed(&audited, &org).await;
    let (secret, token_id) = (seeded.api_token, seeded.token_id);

    // Started only now, so its recovery and dispatcher never see a live execution.
    let unaudited = plane(
        dir.path(),
        "data-OffForBenchmarks",
        store.clone(),
        audit_config(AuditMode::OffForBenchmarks),
    )
    .await;
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
        env: EnvRef::new(ORG, ENV),
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
        json!({"executionId": seeded.execution_id}),
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
        check_once(&c.load()).await;
    }

    let mut best: Vec<Option<Stats>> = cases.iter().map(|_| None).collect();
    for round in 1..=settings.timing.rounds {
        for (i, c) in cases.iter().enumerate() {
            if !settings.selects(c.name) {
                continue;
            }
            let s = measure(&c.load(), &settings.timing).await;
            println!(
                "round {round}/{}: {:<42} {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms",
                settings.timing.rounds,
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
