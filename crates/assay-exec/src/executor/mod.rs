//! `LocalExecutor`: runs plans as local child processes.

mod env;
mod leaf;
mod run;

use crate::artifacts::collect::Collector;
use crate::config::LocalExecutorConfig;
use crate::files::FsExecutionFiles;
use crate::junit;
use crate::logs::mask::Masker;
use crate::logs::writer::LogWriter;
use crate::logs::{CONTENT_STEP, StepEntry};
use crate::workspace;
use assay_core::execution::{ExecutionStatus, RunnerInfo, StepResult};
use assay_core::ports::{ExecutionJob, ExecutionObserver, ExecutionOutcome, Executor};
use async_trait::async_trait;
use leaf::Sink;
use run::{Run, Tree};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// Runs each step as a child process in its own process group, with a scrubbed
/// environment, in a per-execution workspace under the data directory. Logs and artifacts
/// are written through the shared [`FsExecutionFiles`], which also serves them.
///
/// Every process a step leaves behind is ended when the step ends (SIGTERM, then SIGKILL
/// after 2 s); a step cannot keep a daemon running for later steps.
pub struct LocalExecutor {
    config: LocalExecutorConfig,
    files: Arc<FsExecutionFiles>,
    running: Arc<AtomicU32>,
}

impl LocalExecutor {
    pub fn new(config: LocalExecutorConfig, files: Arc<FsExecutionFiles>) -> Self {
        Self {
            config,
            files,
            running: Arc::new(AtomicU32::new(0)),
        }
    }
}

/// Counts an execution as running for as long as it lives.
struct RunningGuard(Arc<AtomicU32>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl Executor for LocalExecutor {
    fn runner(&self) -> RunnerInfo {
        RunnerInfo {
            id: "local".into(),
            name: "local".into(),
            kind: "local".into(),
            capabilities: ["runner", "logs", "artifacts", "junit", "metrics"]
                .map(String::from)
                .to_vec(),
            concurrency: self.config.concurrency,
            running: self.running.load(Ordering::SeqCst),
            queued: 0,
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }

    async fn execute(
        &self,
        job: ExecutionJob,
        observer: Arc<dyn ExecutionObserver>,
        cancel: CancellationToken,
    ) -> ExecutionOutcome {
        self.running.fetch_add(1, Ordering::SeqCst);
        let _guard = RunningGuard(Arc::clone(&self.running));
        let id = job.execution_id;
        let outcome = self.execute_job(job, observer, cancel).await;
        if let Err(e) = assay_core::ports::ExecutionFiles::close_logs(&*self.files, id).await {
            tracing::warn!(execution = %id, "closing the log failed: {e}");
        }
        outcome
    }

    async fn reap_orphans(&self, execution_id: uuid::Uuid) -> usize {
        let entry = format!("ASSAY_EXECUTION_ID={execution_id}");
        let groups =
            tokio::task::spawn_blocking(move || crate::procfs::groups_with_env_entry(&entry))
                .await
                .unwrap_or_default();
        let own = nix::unistd::getpgrp().as_raw();
        let mut stopped = 0;
        for pgid in groups.into_iter().filter(|g| *g != own) {
            if crate::process::terminate_group(pgid, std::time::Duration::from_secs(2)).await {
                stopped += 1;
            } else {
                tracing::warn!(execution = %execution_id, pgid, "an orphaned process group survived SIGKILL");
            }
        }
        stopped
    }
}

impl LocalExecutor {
    async fn execute_job(
        &self,
        job: ExecutionJob,
        observer: Arc<dyn ExecutionObserver>,
        cancel: CancellationToken,
    ) -> ExecutionOutcome {
        let id = job.execution_id;
        let plan = job.plan;
        let tree = match Tree::new(&plan) {
            Ok(tree) => tree,
            Err(e) => return failed(Vec::new(), e),
        };
        let skipped_all = |error: &str| {
            let mut steps = run::initial_results(&tree);
            for s in &mut steps {
                s.status = ExecutionStatus::Skipped;
            }
            failed(steps, error.to_string())
        };

        let layout = self.files.layout(id);
        let workspace = {
            let (ws, artifacts) = (layout.workspace(), layout.artifacts());
            let prepared = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
                std::fs::create_dir_all(ws.join(".tmp"))?;
                std::fs::create_dir_all(&artifacts)?;
                std::fs::canonicalize(&ws)
            })
            .await;
            match prepared {
                Ok(Ok(ws)) => ws,
                Ok(Err(e)) => return skipped_all(&format!("cannot create the workspace: {e}")),
                Err(e) => return skipped_all(&format!("cannot create the workspace: {e}")),
            }
        };

        let mut table: Vec<StepEntry> = tree
            .nodes
            .iter()
            .map(|n| StepEntry {
                reference: n.step.reference.clone(),
                name: n.step.name.clone(),
                parent: n.parent,
            })
            .collect();
        table.push(StepEntry {
            reference: CONTENT_STEP.into(),
            name: CONTENT_STEP.into(),
            parent: None,
        });
        let mut secrets = plan.secrets.clone();
        if let Some(userinfo) = plan
            .git
            .as_ref()
            .and_then(|g| workspace::credentials(&g.uri))
        {
            secrets.push(userinfo.to_string());
            if let Some((_, password)) = userinfo.split_once(':') {
                secrets.push(password.to_string());
            }
        }
        let masker = Arc::new(Masker::new(&secrets));
        let notify = self.files.live().register(id);
        let writer = {
            let (dir, masker) = (layout.logs(), Arc::clone(&masker));
            tokio::task::spawn_blocking(move || LogWriter::create(&dir, &table, masker, notify))
                .await
        };
        let writer = match writer {
            Ok(Ok(w)) => w,
            Ok(Err(e)) => return skipped_all(&format!("cannot create the execution log: {e}")),
            Err(e) => return skipped_all(&format!("cannot create the execution log: {e}")),
        };
        let sink = Sink {
            log: Arc::new(Mutex::new(writer)),
            masker,
            observer,
            sample_interval: self.config.sample_interval,
        };
        let collector = Arc::new(Mutex::new(Collector::new(
            workspace.clone(),
            layout.workspace(),
            layout.artifacts(),
            layout.artifact_index(),
            self.config.max_artifact_bytes,
            self.config.max_artifacts_total_bytes,
        )));
        let mut run = Run::new(
            id,
            plan,
            tree,
            workspace,
            layout.workspace(),
            sink.clone(),
            Arc::clone(&collector),
            cancel,
        );
        sink.observer.steps_changed(&run.results).await;

        let mut content_error = None;
        if (run.plan.git.is_some() || !run.plan.files.is_empty())
            && let Err(e) = run.prepare_content().await
        {
            leaf::message(&sink, run.content_step(), &format!("assay: error: {e}")).await;
            content_error = Some(e);
        }
        let (setup, main, after) = (
            run.tree.setup.clone(),
            run.tree.main.clone(),
            run.tree.after.clone(),
        );
        if content_error.is_some() {
            let why = if run.aborted {
                "not run: the execution was aborted"
            } else {
                "not run: workspace preparation failed"
            };
            run.skip_all(&setup, why).await;
            run.skip_all(&main, why).await;
        } else {
            run.run_list(&setup, false).await;
            run.run_list(&main, false).await;
        }
        if run.aborted || run.cancel.is_cancelled() {
            run.aborted = true;
            run.skip_all(&after, "not run: the execution was aborted")
                .await;
        } else {
            run.run_after().await;
        }

        let junit = {
            let root = layout.artifacts();
            let artifacts = collector
                .lock()
                .map(|c| c.artifacts().to_vec())
                .unwrap_or_default();
            tokio::task::spawn_blocking(move || junit::summarize(&root, &artifacts))
                .await
                .unwrap_or(None)
        };
        let flushed = {
            let log = Arc::clone(&sink.log);
            tokio::task::spawn_blocking(move || {
                log.lock().map(|mut w| w.flush().is_ok()).unwrap_or(false)
            })
            .await
        };
        if !matches!(flushed, Ok(true)) {
            tracing::warn!(execution = %id, "flushing the execution log failed");
        }

        let (status, error) = if run.aborted {
            (ExecutionStatus::Aborted, Some("aborted".to_string()))
        } else if run.timed_out {
            let budget = run.plan.timeout.unwrap_or_default();
            (
                ExecutionStatus::Timeout,
                Some(format!("execution timed out after {}", run::human(budget))),
            )
        } else if let Some(e) = content_error {
            (ExecutionStatus::Failed, Some(e))
        } else if run.failed() {
            let error = run
                .failure_summary()
                .unwrap_or_else(|| "a step failed".to_string());
            (ExecutionStatus::Failed, Some(error))
        } else {
            (ExecutionStatus::Passed, None)
        };
        ExecutionOutcome {
            status,
            steps: run.results,
            junit,
            error,
        }
    }
}

fn failed(steps: Vec<StepResult>, error: String) -> ExecutionOutcome {
    ExecutionOutcome {
        status: ExecutionStatus::Failed,
        steps,
        junit: None,
        error: Some(error),
    }
}
