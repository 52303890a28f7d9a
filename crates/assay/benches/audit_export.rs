//! Benchmark: streaming the audit export of a large chain, and the server's memory meanwhile.
//!
//! Bootstraps `assay server` on a fresh data dir, seeds the `default` organization's audit chain
//! straight into SQLite (`append_audit_batch`, so the chain hashes are real), restarts the server
//! and streams `GET …/audit/events` (JSONL, then CSV) to nowhere while a thread samples the
//! server's VmRSS every 50 ms. It runs twice in one go: with N/10 events (the baseline) and with
//! N events. Flat memory means the peak RSS does not grow with N.
//!
//! `cargo bench -p assay --bench audit_export` (ASSAY_BENCH_EVENTS=N, default 1 000 000).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use assay_core::actor::{AuthMethod, ClientInfo, PrincipalKind};
use assay_core::audit::{AuditActor, AuditEvent, Outcome};
use assay_core::ports::Store;
use assay_store::SqliteStore;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

const BATCH: usize = 2000;

fn main() {
    let n: u64 = std::env::var("ASSAY_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    assay_client::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();

    // Bootstrap once for the organization and the admin token, then stop.
    let (server, _url, token) = start(dir.path(), true);
    let token = token.expect("first start prints the admin token");
    stop(server);

    let store = rt
        .block_on(SqliteStore::open(&dir.path().join("assay.db")))
        .unwrap();
    let org_id = rt
        .block_on(store.find_org("default"))
        .unwrap()
        .expect("default org")
        .id;
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(None)
        .build()
        .unwrap();

    let small = (n / 10).max(1);
    let mut seeded = 0;
    let mut results = Vec::new();
    for target in [small, n] {
        let t = Instant::now();
        seed(&rt, &store, org_id, seeded, target);
        println!(
            "seeded {} events to {target} in {:.1} s",
            target - seeded,
            t.elapsed().as_secs_f64()
        );
        seeded = target;
        results.push(measure(dir.path(), &token, &http, target));
    }
    drop(store);

    println!("\naudit export, SQLite, default org (counts include the bootstrap's own events)");
    println!(
        "{:>9} {:>6} {:>10} {:>9} {:>8} {:>11} {:>11} {:>12} {:>7}",
        "events",
        "format",
        "exported",
        "MB",
        "MB/s",
        "idle RSS",
        "peak RSS",
        "VmHWM after",
        "peak/idle"
    );
    for r in &results {
        for e in &r.exports {
            println!(
                "{:>9} {:>6} {:>10} {:>9.1} {:>8.1} {:>8.1} MiB {:>7.1} MiB {:>8.1} MiB {:>7.2}",
                r.seeded,
                e.format,
                e.records,
                e.bytes as f64 / 1e6,
                e.bytes as f64 / 1e6 / e.secs,
                r.idle_rss as f64 / 1024.0,
                e.peak_rss as f64 / 1024.0,
                e.hwm_after as f64 / 1024.0,
                e.peak_rss as f64 / r.idle_rss as f64,
            );
        }
    }
    if let [base, big] = results.as_slice() {
        let peak = |r: &Run| r.exports.iter().map(|e| e.hwm_after).max().unwrap_or(0);
        println!(
            "\nVmHWM after export: {:.1} MiB at {} events vs {:.1} MiB at {} events ({:.2}×)",
            peak(base) as f64 / 1024.0,
            base.seeded,
            peak(big) as f64 / 1024.0,
            big.seeded,
            peak(big) as f64 / peak(base) as f64
        );
    }
}

struct Export {
    format: &'static str,
    records: u64,
    bytes: u64,
    secs: f64,
    peak_rss: u64,
    hwm_after: u64,
}

struct Run {
    seeded: u64,
    idle_rss: u64,
    exports: Vec<Export>,
}

/// Appends events `from..to` (positions in the seeded set) to the organization's chain.
fn seed(rt: &tokio::runtime::Runtime, store: &SqliteStore, org_id: Uuid, from: u64, to: u64) {
    let actions = [
        "workflow.list",
        "workflow.get",
        "execution.run",
        "execution.get",
        "execution.logs",
        "artifact.download",
        "token.create",
    ];
    let users: Vec<(Uuid, String)> = (0..20)
        .map(|i| (Uuid::now_v7(), format!("user-{i:02}@example.com")))
        .collect();
    let start = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let t = Instant::now();
    let mut next = from;
    while next < to {
        let end = (next + BATCH as u64).min(to);
        let mut batch: Vec<AuditEvent> = (next..end)
            .map(|i| {
                let (uid, name) = &users[(i % 20) as usize];
                let action = actions[(i % actions.len() as u64) as usize];
                AuditEvent {
                    id: Uuid::now_v7(),
                    time: start + time::Duration::milliseconds(i as i64),
                    org_id,
                    env_id: None,
                    actor: AuditActor {
                        kind: PrincipalKind::User,
                        id: *uid,
                        name: name.clone(),
                        auth_method: AuthMethod::ApiToken,
                        credential_id: Some(format!("tok_{:08x}", i % 7)),
                    },
                    client: ClientInfo {
                        ip: Some(format!("10.0.{}.{}", (i / 256) % 256, i % 256)),
                        user_agent: Some("assay-cli/0.1.0 (linux; x86_64)".into()),
                        mcp_client: None,
                        request_id: Some(format!("req-{i:012}")),
                    },
                    action: action.into(),
                    resources: vec![
                        format!("workflow:smoke-{}", i % 50),
                        format!("execution:{}", Uuid::now_v7()),
                    ],
                    outcome: if i.is_multiple_of(97) {
                        Outcome::Denied
                    } else {
                        Outcome::Success
                    },
                    reason: i
                        .is_multiple_of(97)
                        .then(|| "role viewer lacks execution.run".into()),
                    seq: 0,
                    prev_hash: String::new(),
                    hash: String::new(),
                }
            })
            .collect();
        rt.block_on(store.append_audit_batch(&mut batch)).unwrap();
        next = end;
        if next.is_multiple_of(100_000) || next == to {
            println!(
                "  seeded {next}/{to} ({:.0} events/s)",
                (next - from) as f64 / t.elapsed().as_secs_f64()
            );
        }
    }
}

/// Restarts the server on `dir` and exports the chain in both formats.
fn measure(dir: &Path, token: &str, http: &reqwest::blocking::Client, seeded: u64) -> Run {
    let (server, url, _) = start(dir, false);
    let pid = server.id();
    std::thread::sleep(Duration::from_secs(1));
    let idle_rss = status_kib(pid, "VmRSS:");
    let mut exports = Vec::new();
    for format in ["jsonl", "csv"] {
        let peak = Arc::new(AtomicU64::new(status_kib(pid, "VmRSS:")));
        let done = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (peak, done) = (peak.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    peak.fetch_max(status_kib(pid, "VmRSS:"), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        let t = Instant::now();
        let mut resp = http
            .get(format!(
                "{url}/v1/organizations/default/audit/events?format={format}"
            ))
            .bearer_auth(token)
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200);
        let (mut lines, mut bytes) = (0u64, 0u64);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let got = resp.read(&mut buf).unwrap();
            if got == 0 {
                break;
            }
            bytes += got as u64;
            lines += buf[..got].iter().filter(|b| **b == b'\n').count() as u64;
        }
        let secs = t.elapsed().as_secs_f64();
        done.store(true, Ordering::Relaxed);
        sampler.join().unwrap();
        // CSV has a header row; our seeded fields contain no newlines.
        let records = if format == "csv" { lines - 1 } else { lines };
        assert!(records >= seeded, "{format}: {records} < {seeded}");
        exports.push(Export {
            format,
            records,
            bytes,
            secs,
            peak_rss: peak.load(Ordering::Relaxed),
            hwm_after: status_kib(pid, "VmHWM:"),
        });
        println!(
            "  {seeded} events, {format}: {records} records, {:.1} MB in {secs:.1} s",
            bytes as f64 / 1e6
        );
    }
    stop(server);
    Run {
        seeded,
        idle_rss,
        exports,
    }
}

/// Starts `assay server` on `dir`; returns it, its URL and the admin token (first start only).
fn start(dir: &Path, first: bool) -> (Child, String, Option<String>) {
    let mut server = Command::new(env!("CARGO_BIN_EXE_assay"))
        .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let mut url = String::new();
    let mut token = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("Assay is listening on ") {
            url = format!("http://{}", rest.split_whitespace().next().unwrap());
        }
        if let Some(t) = line.trim().strip_prefix("admin API token:") {
            token = Some(t.trim().to_string());
        }
        // Only the first start prints the token, after the URL; later starts print the URL alone.
        if !url.is_empty() && (!first || token.is_some()) {
            break;
        }
    }
    // Keep draining stdout so the server never blocks on (or fails writing to) a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap();
    let ready = Instant::now();
    while http.get(format!("{url}/healthz")).send().is_err() {
        assert!(ready.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(20));
    }
    (server, url, token)
}

/// Stops the server gracefully (SIGTERM), so SQLite is closed cleanly.
fn stop(mut server: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();
}

/// A `kB` field of /proc/<pid>/status (0 when the process is gone).
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.split_whitespace().next().map(str::to_string))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
