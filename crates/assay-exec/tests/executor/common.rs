//! Shared helpers: a harness with a temp data dir, plan builders, a recording observer.
#![allow(dead_code)]

use assay_core::execution::{
    ExecutionPlan, ExecutionStatus, LogQuery, PlannedStep, ResourceSample, StepCommand, StepResult,
};
pub use assay_core::ports::{ExecutionFiles, Executor};
use assay_core::ports::{ExecutionJob, ExecutionObserver, ExecutionOutcome};
use assay_exec::{FsExecutionFiles, LocalExecutor, LocalExecutorConfig};
use async_trait::async_trait;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub files: Arc<FsExecutionFiles>,
    pub executor: Arc<LocalExecutor>,
}

impl Harness {
    pub fn new() -> Self {
        Self::with(|_| {})
    }

    pub fn with(adjust: impl FnOnce(&mut LocalExecutorConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = LocalExecutorConfig {
            data_dir: dir.path().to_path_buf(),
            ..LocalExecutorConfig::default()
        };
        adjust(&mut config);
        let files = Arc::new(FsExecutionFiles::new(config.data_dir.clone()));
        let executor = Arc::new(LocalExecutor::new(config, Arc::clone(&files)));
        Self {
            dir,
            files,
            executor,
        }
    }

    pub async fn run(&self, plan: ExecutionPlan) -> Finished {
        self.run_with(plan, CancellationToken::new()).await
    }

    pub async fn run_with(&self, plan: ExecutionPlan, cancel: CancellationToken) -> Finished {
        let id = Uuid::new_v4();
        let recorder = Arc::new(Recorder::default());
        let outcome = self
            .executor
            .execute(job(id, plan), recorder.clone(), cancel)
            .await;
        Finished {
            id,
            outcome,
            recorder,
        }
    }

    pub fn workspace(&self, id: Uuid) -> PathBuf {
        self.files.workspace_dir(id)
    }

    /// Every line of the log, in order.
    pub async fn log_texts(&self, id: Uuid) -> Vec<String> {
        let page = self
            .files
            .read_logs(
                id,
                &LogQuery {
                    from_line: Some(1),
                    max_lines: Some(10_000),
                    ..LogQuery::default()
                },
            )
            .await
            .unwrap();
        page.lines.into_iter().map(|l| l.text).collect()
    }
}

pub fn job(id: Uuid, plan: ExecutionPlan) -> ExecutionJob {
    ExecutionJob {
        execution_id: id,
        env_id: Uuid::new_v4(),
        execution_name: "test-1".into(),
        plan,
    }
}

pub struct Finished {
    pub id: Uuid,
    pub outcome: ExecutionOutcome,
    pub recorder: Arc<Recorder>,
}

impl Finished {
    pub fn step(&self, reference: &str) -> &StepResult {
        self.outcome
            .steps
            .iter()
            .find(|s| s.reference == reference)
            .unwrap_or_else(|| panic!("no step {reference}"))
    }

    pub fn statuses(&self) -> Vec<(String, ExecutionStatus)> {
        self.outcome
            .steps
            .iter()
            .map(|s| (s.reference.clone(), s.status))
            .collect()
    }
}

#[derive(Default)]
pub struct Recorder {
    pub snapshots: Mutex<Vec<Vec<StepResult>>>,
    pub samples: Mutex<Vec<(String, ResourceSample)>>,
}

#[async_trait]
impl ExecutionObserver for Recorder {
    async fn steps_changed(&self, steps: &[StepResult]) {
        self.snapshots.lock().unwrap().push(steps.to_vec());
    }

    async fn resource_samples(&self, step: &str, samples: &[ResourceSample]) {
        let mut all = self.samples.lock().unwrap();
        all.extend(samples.iter().map(|s| (step.to_string(), s.clone())));
    }
}

pub fn shell(reference: &str, script: &str) -> PlannedStep {
    PlannedStep {
        reference: reference.into(),
        name: format!("step {reference}"),
        command: Some(StepCommand::Shell {
            shell: Vec::new(),
            script: script.into(),
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
    }
}

pub fn group(reference: &str, steps: Vec<PlannedStep>) -> PlannedStep {
    PlannedStep {
        command: None,
        steps,
        ..shell(reference, "")
    }
}

pub fn plan(steps: Vec<PlannedStep>) -> ExecutionPlan {
    ExecutionPlan {
        files: Vec::new(),
        git: None,
        env: Default::default(),
        working_dir: None,
        setup: Vec::new(),
        steps,
        after: Vec::new(),
        timeout: None,
        secrets: Vec::new(),
    }
}

pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Live (non-zombie) processes whose process group is `pgid`.
pub fn live_group_members(pgid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let state = fields[0];
        let pgrp: i32 = fields[2].parse().unwrap();
        if pgrp == pgid && state != "Z" && state != "X" {
            out.push(pid);
        }
    }
    out
}

/// Whether `pid` is a live (non-zombie) process.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let close = stat.rfind(')').unwrap();
            let state = stat[close + 1..].split_whitespace().next().unwrap();
            state != "Z" && state != "X"
        }
        Err(_) => false,
    }
}

/// Waits (bounded) until `path` exists with at least `lines` lines.
pub async fn wait_for_lines(path: &std::path::Path, lines: usize) -> Vec<String> {
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(path) {
            let got: Vec<String> = text.lines().map(str::to_string).collect();
            if got.len() >= lines {
                return got;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} never got {lines} lines", path.display());
}
