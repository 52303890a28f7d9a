//! Log ingestion benchmark (not a test): one step prints 200 MB (override with
//! ASSAY_BENCH_BYTES); reports ingestion MB/s against the same command writing to
//! /dev/null, the bench process's peak RSS (VmHWM) before and after, and query latencies
//! on the resulting log.
//!
//! Run: `cargo bench -p assay-exec --bench log_ingest`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use assay_core::execution::{ExecutionPlan, ExecutionStatus, LogQuery, PlannedStep, StepCommand};
use assay_core::ports::{ExecutionFiles, ExecutionJob, ExecutionObserver, Executor};
use assay_exec::{FsExecutionFiles, LocalExecutor, LocalExecutorConfig};
use std::sync::Arc;
use std::time::Instant;

struct Quiet;

#[async_trait::async_trait]
impl ExecutionObserver for Quiet {
    async fn steps_changed(&self, _: &[assay_core::execution::StepResult]) {}
    async fn resource_samples(&self, _: &str, _: &[assay_core::execution::ResourceSample]) {}
}

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU seconds (user + system, all threads) used by this process so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let close = stat.rfind(')').unwrap();
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

fn producer(bytes: u64) -> String {
    format!(
        "yes 'some log line of about sixty characters, repeated to make volume' | head -c {bytes}"
    )
}

fn main() {
    let bytes: u64 = std::env::var("ASSAY_BENCH_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000_000);
    let mb = bytes as f64 / 1e6;
    let script = producer(bytes);

    // Baseline: the producer alone, output discarded.
    let started = Instant::now();
    let status = std::process::Command::new("/bin/sh")
        .args(["-c", &format!("{script} > /dev/null")])
        .status()
        .unwrap();
    assert!(status.success());
    let baseline = started.elapsed().as_secs_f64();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = Arc::new(FsExecutionFiles::new(dir.path().to_path_buf()));
    let executor = LocalExecutor::new(
        LocalExecutorConfig {
            data_dir: dir.path().to_path_buf(),
            ..LocalExecutorConfig::default()
        },
        Arc::clone(&files),
    );
    let plan = ExecutionPlan {
        files: Vec::new(),
        git: None,
        env: Default::default(),
        working_dir: None,
        setup: Vec::new(),
        steps: vec![PlannedStep {
            reference: "1".into(),
            name: "print".into(),
            command: Some(StepCommand::Shell {
                shell: Vec::new(),
                script,
            }),
            working_dir: None,
            env: Default::default(),
            condition: Default::default(),
            timeout: None,
            retries: 0,
            optional: false,
            negative: false,
            artifacts: None,
            steps: Vec::new(),
        }],
        after: Vec::new(),
        timeout: None,
        // One secret, so masking is on the measured path.
        secrets: if std::env::var_os("ASSAY_BENCH_NO_SECRET").is_some() {
            Vec::new()
        } else {
            vec!["hunter2-not-present".into()]
        },
    };
    let id = uuid::Uuid::new_v4();
    let hwm_before = vm_hwm_kib();
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let outcome = runtime.block_on(executor.execute(
        ExecutionJob {
            execution_id: id,
            env_id: uuid::Uuid::new_v4(),
            execution_name: "bench-1".into(),
            plan,
        },
        Arc::new(Quiet),
        Default::default(),
    ));
    let ingest = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    let hwm_after = vm_hwm_kib();
    assert_eq!(
        outcome.status,
        ExecutionStatus::Passed,
        "{:?}",
        outcome.error
    );

    let log_bytes = std::fs::metadata(dir.path().join(format!("executions/{id}/logs/log")))
        .unwrap()
        .len();
    let timed = |query: LogQuery| {
        let started = Instant::now();
        let page = runtime.block_on(files.read_logs(id, &query)).unwrap();
        (started.elapsed().as_secs_f64() * 1000.0, page)
    };
    let (tail_ms, tail) = timed(LogQuery::default());
    let (range_ms, _) = timed(LogQuery {
        from_line: Some(1_500_000),
        to_line: Some(1_500_999),
        ..LogQuery::default()
    });
    let (grep_ms, grep) = timed(LogQuery {
        grep: Some("no such text".into()),
        ..LogQuery::default()
    });

    println!("log_ingest: {mb:.0} MB through one step");
    println!(
        "  baseline (to /dev/null): {baseline:.2} s = {:.0} MB/s",
        mb / baseline
    );
    println!(
        "  executor (to the log):   {ingest:.2} s = {:.0} MB/s",
        mb / ingest
    );
    println!(
        "  ratio executor/baseline: {:.2}x the time",
        ingest / baseline
    );
    println!(
        "  executor CPU (this process, all threads): {cpu:.2} s = {:.0} MB per CPU-second",
        mb / cpu.max(0.01)
    );
    println!(
        "  lines: {}   log file: {:.0} MB",
        tail.total_lines,
        log_bytes as f64 / 1e6
    );
    println!(
        "  bench process VmHWM: before {} KiB, after {} KiB (+{} KiB)",
        hwm_before,
        hwm_after,
        hwm_after.saturating_sub(hwm_before)
    );
    println!(
        "  queries: tail 200 {tail_ms:.1} ms, range of 1000 {range_ms:.1} ms, full grep {grep_ms:.0} ms ({} matches)",
        grep.lines.len()
    );
}
