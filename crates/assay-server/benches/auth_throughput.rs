//! Benchmark: MCP `tools/call` throughput and latency over loopback HTTP with an OAuth
//! access token (JWT) against the same calls with an API token, in one run.
//!
//! Run: `cargo bench -p assay-server --bench auth_throughput`
//! Knobs (as in `mcp_throughput`): `ASSAY_BENCH_CLIENTS` (concurrent keep-alive clients,
//! default 16), `ASSAY_BENCH_SECS` (seconds measured per case and round, default 5),
//! `ASSAY_BENCH_WARMUP_MS` (warm-up per case and round, default 1000), `ASSAY_BENCH_ROUNDS`
//! (rounds, default 3; a case's best round is reported). `-- --quick` or
//! `ASSAY_BENCH_QUICK=1`: a smoke run (1 s, 200 ms warm-up, 1 round).
//!
//! One server: `assay_server::router` (every layer, authentication, RBAC, audit on) over
//! `LocalControlPlane` on a SQLite file, with a public URL so it accepts its own access
//! tokens. Two credentials for the same environment at the same level (read):
//! - an API token (`assay_…`, member, dev=read);
//! - an access token minted by the plane's key ring for a member with dev=read, under a
//!   live grant of the first-party client (`mcp:read`, audience = the endpoint's resource),
//!   exactly what `/oauth/token` hands out.
//!
//! Cases: `list_workflows` (50 workflows) and `get_execution_info`, each with both
//! credentials, alternating within each round. Reported: req/s, p50, p99, and the ratio
//! OAuth / API token per tool. Afterwards the audit trail must hold exactly one event per
//! answered call of each credential (so audit was on for both, equally).
//!
//! Client and server share this process and the machine's cores: compare the ratio.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use assay_auth::jwt::AccessTokenRequest;
use assay_auth::metadata::PublicBase;
use assay_auth::scope::McpScope;
use assay_control::{ControlPlaneConfig, LocalControlPlane};
use assay_core::actor::ClientInfo;
use assay_core::execution::{ExecutionStatus, RunRequest};
use assay_core::identity::{ApiTokenKind, Membership, NewApiToken, OrgRole, User};
use assay_core::oauth::{OAuthClient, OAuthClientKind, OAuthGrant};
use assay_core::ports::{Clock, ControlPlane, Store, SystemClock};
use assay_core::tenancy::{DEFAULT_AUDIT_RETENTION_DAYS, Environment, Organization};
use assay_core::{Actor, EnvRef, Level, Principal};
use assay_exec::{FsExecutionFiles, LocalExecutor, LocalExecutorConfig};
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
const CLIENT_ID: &str = "assay-cli";

struct Settings {
    clients: usize,
    measure: Duration,
    warmup: Duration,
    rounds: usize,
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
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Credential {
    ApiToken,
    OAuth,
}

/// One measured case: where to POST, with which credential and body, and a fragment every
/// successful answer contains (checked on each response, cheaply).
struct Case {
    name: &'static str,
    credential: Credential,
    bearer: String,
    body: Bytes,
    expect: &'static str,
    /// The case with the same tool and the other credential (index into the case list).
    pair: usize,
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
    public_url: &url::Url,
) -> Arc<LocalControlPlane> {
    let data_dir = dir.join("data");
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
            public_url: Some(public_url.clone()),
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

/// A member of the organization with `level` on `env`, no password (never logs in here).
async fn member(store: &dyn Store, org: &Organization, env: &Environment, level: Level) -> User {
    let user = User {
        id: Uuid::now_v7(),
        email: "agent-owner@example.com".into(),
        display_name: "Agent Owner".into(),
        password_hash: None,
        disabled: false,
        created_at: time::OffsetDateTime::now_utc(),
    };
    store.insert_user(&user).await.unwrap();
    store
        .upsert_membership(&Membership {
            org_id: org.id,
            user_id: user.id,
            role: OrgRole::Member,
            grants: [(env.id, level)].into(),
        })
        .await
        .unwrap();
    user
}

/// The grant a consent records, and an access token issued under it, as `/oauth/token`
/// would mint it (the first-party client may exist already: the authorization server
/// inserts it at start).
async fn access_token(
    store: &dyn Store,
    plane: &LocalControlPlane,
    public: &PublicBase,
    org: &Organization,
    user: &User,
    resource: &str,
) -> String {
    let now = time::OffsetDateTime::now_utc();
    if store.get_oauth_client(CLIENT_ID).await.unwrap().is_none() {
        store
            .insert_oauth_client(&OAuthClient {
                id: CLIENT_ID.into(),
                kind: OAuthClientKind::FirstParty,
                client_name: "Assay CLI".into(),
                redirect_uris: vec!["http://127.0.0.1/callback".into()],
                created_at: now,
                last_used_at: None,
                expires_at: None,
            })
            .await
            .unwrap();
    }
    let grant = store
        .upsert_oauth_grant(&OAuthGrant {
            id: Uuid::now_v7(),
            org_id: org.id,
            user_id: user.id,
            client_id: CLIENT_ID.into(),
            scope: "mcp:read".into(),
            resource: resource.to_owned(),
            created_at: now,
            revoked_at: None,
            revoked_reason: None,
        })
        .await
        .unwrap();
    let subject = user.id.to_string();
    let grant_id = grant.id.to_string();
    plane
        .key_ring()
        .issue(
            &public.issuer(),
            &AccessTokenRequest {
                subject: &subject,
                audience: resource,
                client_id: CLIENT_ID,
                scope: McpScope::Read,
                // Outlives any run of this bench.
                lifetime: Duration::from_secs(3600),
                grant_id: &grant_id,
            },
            now,
        )
        .unwrap()
        .0
}

async fn run(settings: Settings) {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    println!(
        "MCP tools/call, OAuth access token vs API token, over loopback HTTP: {} clients, {} s measured after {} ms warm-up per case, {} round(s), best round reported",
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
    let environment = Environment {
        id: Uuid::now_v7(),
        org_id: org.id,
        slug: ENV.into(),
        name: ENV.into(),
        created_at: now,
    };
    store.insert_env(&environment).await.unwrap();

    // The listener first: its address is the public URL, the access tokens' issuer.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let public_url = url::Url::parse(&base).unwrap();
    let public = PublicBase::new(&public_url).unwrap();
    let plane = plane(dir.path(), store.clone(), &public_url).await;

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
    let (api_token, token_id) = (created.secret, created.token.id.to_string());
    let user = member(store.as_ref(), &org, &environment, Level::Read).await;
    let resource = public.mcp_resource(ORG, ENV).unwrap().url;
    let jwt = access_token(store.as_ref(), &plane, &public, &org, &user, &resource).await;

    let stop = CancellationToken::new();
    let mut config = ServerConfig::new(public_url.clone());
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
    let url = resource.clone();

    let list = tool_call("list_workflows", json!({"pageSize": WORKFLOWS}));
    let info = tool_call(
        "get_execution_info",
        json!({"executionId": execution.id.to_string()}),
    );
    let case = |name, credential, body: &Bytes, expect, pair| Case {
        name,
        credential,
        bearer: match credential {
            Credential::ApiToken => api_token.clone(),
            Credential::OAuth => jwt.clone(),
        },
        body: body.clone(),
        expect,
        pair,
        sent: AtomicU64::new(0),
    };
    let cases = [
        case(
            "list_workflows / API token",
            Credential::ApiToken,
            &list,
            "\"total\":50",
            1,
        ),
        case(
            "list_workflows / OAuth access token",
            Credential::OAuth,
            &list,
            "\"total\":50",
            0,
        ),
        case(
            "get_execution_info / API token",
            Credential::ApiToken,
            &info,
            "\"status\":\"passed\"",
            3,
        ),
        case(
            "get_execution_info / OAuth access token",
            Credential::OAuth,
            &info,
            "\"status\":\"passed\"",
            2,
        ),
    ];
    for c in &cases {
        check_once(&url, c).await;
    }

    let mut best: Vec<Option<Stats>> = cases.iter().map(|_| None).collect();
    for round in 1..=settings.rounds {
        for (i, c) in cases.iter().enumerate() {
            let s = measure(&url, c, &settings).await;
            println!(
                "round {round}/{}: {:<40} {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms",
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
        "{:<40} {:>9} {:>8} {:>8} {:>8} {:>11}",
        "case (best round)", "req/s", "p50 ms", "p99 ms", "calls", "OAuth/API"
    );
    for (c, s) in cases.iter().zip(&best) {
        let Some(s) = s else { continue };
        let ratio = match (c.credential, &best[c.pair]) {
            (Credential::OAuth, Some(api)) => format!("{:.2}", s.rps / api.rps),
            _ => "-".to_owned(),
        };
        println!(
            "{:<40} {:>9.0} {:>8.2} {:>8.2} {:>8} {:>11}",
            c.name,
            s.rps,
            ms(s.p50),
            ms(s.p99),
            s.count,
            ratio
        );
    }

    // Audit was on for both credentials: one event per answered call of each.
    let answered = |credential| -> u64 {
        cases
            .iter()
            .filter(|c| c.credential == credential)
            .map(|c| c.sent.load(Ordering::Relaxed))
            .sum()
    };
    let events = store.audit_events(org.id, 0, u32::MAX).await.unwrap();
    let by_token = events
        .iter()
        .filter(|e| e.actor.credential_id.as_deref() == Some(token_id.as_str()))
        .count() as u64;
    let by_user = events
        .iter()
        .filter(|e| e.actor.id == user.id && e.actor.credential_id.as_deref() == Some(CLIENT_ID))
        .count() as u64;
    println!();
    println!(
        "audit events: API token {by_token} (calls answered {}), OAuth user via {CLIENT_ID} {by_user} (calls answered {})",
        answered(Credential::ApiToken),
        answered(Credential::OAuth)
    );
    assert_eq!(by_token, answered(Credential::ApiToken));
    assert_eq!(by_user, answered(Credential::OAuth));

    stop.cancel();
    plane.shutdown().await;
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn client(bearer: &str) -> reqwest::Client {
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
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {bearer}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .no_proxy()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// One request, its answer read as JSON-RPC in full: fails loudly on a wrong setup
/// before anything is measured.
async fn check_once(url: &str, case: &Case) {
    let res = client(&case.bearer)
        .post(url)
        .body(case.body.clone())
        .send()
        .await
        .unwrap();
    let status = res.status();
    let body = res.text().await.unwrap();
    assert_eq!(status, 200, "{}: {body}", case.name);
    let message: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(message["id"], 1, "{}: {body}", case.name);
    assert_ne!(message["result"]["isError"], true, "{}: {body}", case.name);
    assert!(body.contains(case.expect), "{}: {body}", case.name);
    case.sent.fetch_add(1, Ordering::Relaxed);
}

/// `settings.clients` tasks, each with its own client (one keep-alive connection), loop
/// for the warm-up and then the measured window; requests completed inside the window
/// count.
async fn measure(url: &str, case: &Case, settings: &Settings) -> Stats {
    let start = Instant::now();
    let window_start = start + settings.warmup;
    let window_end = window_start + settings.measure;
    let workers: Vec<_> = (0..settings.clients)
        .map(|_| {
            let http = client(&case.bearer);
            let (url, body, expect) = (url.to_owned(), case.body.clone(), case.expect);
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
