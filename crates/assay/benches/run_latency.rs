//! Benchmark: run → first step started, through the real server and REST API.
//!
//! Starts `assay server` (SQLite, local runner) on a loopback port, then N times: POST a run of
//! a one-step workflow (`true`), wait for it to finish, and read the server's own timestamps.
//! Reported: queued_at → first step started_at (server side) and POST → 201 (client side),
//! p50/p99, next to a baseline measured in the same run: spawning `/bin/sh -c true` directly.
//!
//! `cargo bench -p assay --bench run_latency` (ASSAY_BENCH_RUNS=N to change the count).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let runs: usize = std::env::var("ASSAY_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    assay_client::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_assay"))
        .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut url = String::new();
    let mut token = String::new();
    for line in BufReader::new(server.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("Assay is listening on ") {
            url = format!("http://{}", rest.split_whitespace().next().unwrap());
        }
        if let Some(t) = line.trim().strip_prefix("admin API token:") {
            token = t.trim().to_string();
            break;
        }
    }
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap();
    let base = format!("{url}/v1/organizations/default/environments/dev");
    let ready = Instant::now();
    while http.get(format!("{url}/healthz")).send().is_err() {
        assert!(ready.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(20));
    }
    let doc = "kind: TestWorkflow\nmetadata: {name: noop}\nspec:\n  steps:\n    - name: noop\n      run: {command: [\"true\"]}\n";
    let resp = http
        .post(format!("{base}/workflows"))
        .bearer_auth(&token)
        .header("content-type", "text/yaml")
        .body(doc)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 201);

    // Baseline: the bare cost of starting a process from this machine.
    let mut baseline = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let status = Command::new("/bin/sh")
            .args(["-c", "true"])
            .status()
            .unwrap();
        assert!(status.success());
        baseline.push(t.elapsed());
    }

    let mut dispatch = Vec::with_capacity(runs);
    let mut post = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let resp = http
            .post(format!("{base}/workflows/noop/executions"))
            .bearer_auth(&token)
            .json(&serde_json::json!({}))
            .send()
            .unwrap();
        post.push(t.elapsed());
        assert_eq!(resp.status(), 201);
        let exec: Value = resp.json().unwrap();
        let id = exec["id"].as_str().unwrap().to_string();
        let done = loop {
            let e: Value = http
                .get(format!("{base}/executions/{id}"))
                .bearer_auth(&token)
                .send()
                .unwrap()
                .json()
                .unwrap();
            if !matches!(e["status"].as_str(), Some("queued" | "running")) {
                break e;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        assert_eq!(done["status"], "passed", "{done}");
        let queued = ts(&done["queued_at"]);
        let started = ts(&done["steps"][0]["started_at"]);
        dispatch.push(Duration::from_secs_f64(
            (started - queued).as_seconds_f64().max(0.0),
        ));
    }
    let _ = server.kill();
    let _ = server.wait();

    let (b50, b99) = percentiles(&mut baseline);
    let (d50, d99) = percentiles(&mut dispatch);
    let (p50, p99) = percentiles(&mut post);
    println!("run → first step started, {runs} sequential runs (SQLite, local runner)");
    println!(
        "{:<44} {:>10} {:>10} {:>8}",
        "measure", "p50 ms", "p99 ms", "× base"
    );
    row("baseline: spawn /bin/sh -c true", b50, b99, b50);
    row("queued_at → first step started_at", d50, d99, b50);
    row("POST …/executions → 201 (client)", p50, p99, b50);
}

fn ts(v: &Value) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(
        v.as_str().expect("timestamp"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("rfc3339")
}

fn percentiles(v: &mut [Duration]) -> (Duration, Duration) {
    v.sort();
    let at = |p: f64| v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1];
    (at(0.50), at(0.99))
}

fn row(name: &str, p50: Duration, p99: Duration, base: Duration) {
    println!(
        "{name:<44} {:>10.2} {:>10.2} {:>8.2}",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        p50.as_secs_f64() / base.as_secs_f64()
    );
}
