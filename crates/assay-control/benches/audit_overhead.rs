//! Benchmark: what auditing costs an authenticated read.
//!
//! Run: `cargo bench -p assay-control --bench audit_overhead`
//! (`ASSAY_BENCH_SECS` sets the seconds per measurement, default 3; `ASSAY_BENCH_ROUNDS`
//! how many times each pair is measured, default 2 — the best round of each counts).
//!
//! One operation = what a REST read does: authenticate an API token (`assay_…`, served
//! from the token cache after the first call) + `list_workflows` (first page of 50) on an
//! environment with 50 workflows, on a SQLite file store. Two control planes share the
//! same store: one with `AuditMode::On` (every call appends its event through the group
//! commit, durable before it returns), one with `AuditMode::OffForBenchmarks`. Both are
//! measured in the same run, alternating, at 4–32 concurrent tasks. Goal: audit costs
//! < 20 % of throughput.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use assay_control::{AuditMode, ControlPlaneConfig, LocalControlPlane};
use assay_core::actor::ClientInfo;
use assay_core::identity::{ApiTokenKind, NewApiToken};
use assay_core::page::PageRequest;
use assay_core::ports::{Clock, ControlPlane, Store, SystemClock};
use assay_core::tenancy::{DEFAULT_AUDIT_RETENTION_DAYS, Environment, Organization};
use assay_core::{Actor, EnvRef, Principal};
use assay_exec::{FsExecutionFiles, LocalExecutor, LocalExecutorConfig};
use assay_store::SqliteStore;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

const WORKFLOWS: usize = 50;
const CONCURRENCY: [usize; 4] = [4, 8, 16, 32];

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let secs = env_u64("ASSAY_BENCH_SECS", 3);
    let rounds = env_u64("ASSAY_BENCH_ROUNDS", 2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(Duration::from_secs(secs), rounds));
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

async fn run(duration: Duration, rounds: u64) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&dir.path().join("bench.db"))
            .await
            .unwrap(),
    );
    let now = time::OffsetDateTime::now_utc();
    let org = Organization {
        id: Uuid::now_v7(),
        slug: "bench".into(),
        name: "bench".into(),
        audit_retention_days: DEFAULT_AUDIT_RETENTION_DAYS,
        created_at: now,
    };
    store.insert_org(&org).await.unwrap();
    store
        .insert_env(&Environment {
            id: Uuid::now_v7(),
            org_id: org.id,
            slug: "dev".into(),
            name: "dev".into(),
            created_at: now,
        })
        .await
        .unwrap();

    let audited = plane(dir.path(), store.clone(), AuditMode::On).await;
    let unaudited = plane(dir.path(), store.clone(), AuditMode::OffForBenchmarks).await;

    let system = Actor::new(Principal::system(org.id), ClientInfo::default());
    let env = EnvRef::new("bench", "dev");
    for i in 0..WORKFLOWS {
        let yaml = format!(
            "kind: TestWorkflow\nmetadata:\n  name: wf-{i:03}\n  labels:\n    team: t{}\nspec:\n  steps:\n  - name: main\n    shell: echo {i}\n",
            i % 5
        );
        audited.create_workflow(&system, &env, &yaml).await.unwrap();
    }
    let secret = audited
        .create_api_token(
            &system,
            "bench",
            &NewApiToken {
                name: "bench".into(),
                description: String::new(),
                kind: ApiTokenKind::OrgRead,
                grants: Default::default(),
                expires_in_days: None,
                never_expires: false,
            },
        )
        .await
        .unwrap()
        .secret;

    println!(
        "authenticated list_workflows (page of {WORKFLOWS}), SQLite file, {}s per measurement, best of {rounds}",
        duration.as_secs()
    );
    println!(
        "{:>11} {:>14} {:>14} {:>8} {:>10}",
        "concurrency", "audit on op/s", "audit off op/s", "on/off", "overhead"
    );
    for concurrency in CONCURRENCY {
        let (mut on, mut off) = (0f64, 0f64);
        for _ in 0..rounds {
            off = off.max(measure(&unaudited, &secret, concurrency, duration).await);
            on = on.max(measure(&audited, &secret, concurrency, duration).await);
        }
        println!(
            "{:>11} {:>14.0} {:>14.0} {:>8.3} {:>9.1}%",
            concurrency,
            on,
            off,
            on / off,
            (1.0 - on / off) * 100.0
        );
    }
    let events = store.audit_events(org.id, 0, u32::MAX).await.unwrap().len();
    println!("audit events written: {events}");
    audited.shutdown().await;
    unaudited.shutdown().await;
}

/// Operations per second with `concurrency` tasks looping for `duration`.
async fn measure(
    plane: &Arc<LocalControlPlane>,
    secret: &str,
    concurrency: usize,
    duration: Duration,
) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|t| {
            let (plane, secret, done) = (plane.clone(), secret.to_string(), done.clone());
            tokio::spawn(async move {
                let auth = plane.authenticator();
                let env = EnvRef::new("bench", "dev");
                let page = PageRequest {
                    limit: Some(WORKFLOWS as u32),
                    cursor: None,
                };
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let client = ClientInfo {
                        ip: Some("192.0.2.1".into()),
                        request_id: Some(format!("bench-{t}-{n}")),
                        ..ClientInfo::default()
                    };
                    let principal = auth
                        .authenticate(&secret, &client, Some("bench"))
                        .await
                        .unwrap();
                    let listed = plane
                        .list_workflows(
                            &Actor::new(principal, client),
                            &env,
                            &Default::default(),
                            &page,
                        )
                        .await
                        .unwrap();
                    assert_eq!(listed.items.len(), WORKFLOWS);
                    n += 1;
                }
                done.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}
