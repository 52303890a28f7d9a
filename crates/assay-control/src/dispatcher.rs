//! The execution queue: FIFO, at most `concurrency` running at once, each run driven to a
//! final state that is persisted before anyone is told.
//!
//! Plans (with their secrets) live only here, in memory: the store has a masked copy.

use crate::events::{ExecutionEvents, LiveExecution};
use crate::masking::{mask_steps, mask_text};
use assay_core::Timestamp;
use assay_core::execution::{
    Execution, ExecutionPlan, ExecutionStatus, ResourceSample, StepResult,
};
use assay_core::ports::{
    Clock, ExecutionFiles, ExecutionJob, ExecutionObserver, ExecutionOutcome, Executor, Store,
};
use async_trait::async_trait;
use futures::FutureExt;
use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

/// How long shutdown waits for aborted runs to record their final state.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// A queued execution and the plan it will run.
pub(crate) struct QueuedJob {
    pub live: Arc<LiveExecution>,
    pub plan: ExecutionPlan,
}

#[derive(Default)]
struct QueueState {
    queue: VecDeque<QueuedJob>,
    running: HashMap<Uuid, CancellationToken>,
}

/// What abort found.
pub(crate) enum AbortAction {
    /// It had not started: now canceled in memory; the caller persists it.
    Canceled(Arc<LiveExecution>),
    /// It was running: its cancel token fired; wait for the executor to stop it.
    Signalled,
    /// Not active in this process (finished, or orphaned).
    NotActive,
}

pub(crate) struct Dispatcher {
    store: Arc<dyn Store>,
    executor: Arc<dyn Executor>,
    files: Arc<dyn ExecutionFiles>,
    clock: Arc<dyn Clock>,
    pub(crate) events: ExecutionEvents,
    state: Mutex<QueueState>,
    wake: Notify,
    permits: Arc<Semaphore>,
    concurrency: u32,
    accepting: AtomicBool,
    runs: TaskTracker,
}

impl Dispatcher {
    pub(crate) fn new(
        concurrency: u32,
        store: Arc<dyn Store>,
        executor: Arc<dyn Executor>,
        files: Arc<dyn ExecutionFiles>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let concurrency = concurrency.max(1);
        Self {
            store,
            executor,
            files,
            clock,
            events: ExecutionEvents::default(),
            state: Mutex::new(QueueState::default()),
            wake: Notify::new(),
            permits: Arc::new(Semaphore::new(
                usize::try_from(concurrency).unwrap_or(usize::MAX),
            )),
            concurrency,
            accepting: AtomicBool::new(true),
            runs: TaskTracker::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn accepting(&self) -> bool {
        self.accepting.load(Ordering::SeqCst)
    }

    pub(crate) fn concurrency(&self) -> u32 {
        self.concurrency
    }

    /// (running, queued) right now.
    pub(crate) fn counts(&self) -> (u32, u32) {
        let state = self.lock();
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        (count(state.running.len()), count(state.queue.len()))
    }

    /// Appends a stored, registered execution to the queue. One that was canceled while
    /// being prepared (terminal already) is not queued.
    pub(crate) fn enqueue(&self, job: QueuedJob) {
        {
            let mut state = self.lock();
            if job.live.status().is_terminal() {
                return;
            }
            state.queue.push_back(job);
        }
        // Stores a permit when the loop is busy, so no wake-up is lost.
        self.wake.notify_one();
    }

    /// Takes the oldest queued job and marks it running, atomically w.r.t. abort.
    fn pop_next(&self) -> Option<(QueuedJob, CancellationToken)> {
        let mut state = self.lock();
        while let Some(job) = state.queue.pop_front() {
            if job.live.status().is_terminal() {
                continue;
            }
            let token = CancellationToken::new();
            state.running.insert(job.live.id(), token.clone());
            return Some((job, token));
        }
        None
    }

    /// Decides, under the queue lock, what aborting `id` means.
    pub(crate) fn abort(&self, id: Uuid, reason: &str) -> AbortAction {
        let now = crate::stamp::now(self.clock.as_ref());
        let mut state = self.lock();
        if let Some(pos) = state.queue.iter().position(|j| j.live.id() == id)
            && let Some(job) = state.queue.remove(pos)
        {
            job.live.modify(|e| cancel(e, now, reason));
            return AbortAction::Canceled(job.live);
        }
        if let Some(token) = state.running.get(&id) {
            token.cancel();
            return AbortAction::Signalled;
        }
        // Registered but neither queued nor running: being prepared (not yet handed to
        // the queue) or finishing. Canceling it here keeps it from ever starting.
        if let Some(live) = self.events.get(id) {
            let canceled = live.modify(|e| {
                if e.status.is_terminal() {
                    false
                } else {
                    cancel(e, now, reason);
                    true
                }
            });
            if canceled {
                return AbortAction::Canceled(live);
            }
        }
        AbortAction::NotActive
    }

    /// Persists and forgets an execution that was canceled before it ran.
    pub(crate) async fn finish_canceled(&self, live: Arc<LiveExecution>) -> Arc<Execution> {
        let id = live.id();
        let committed = match live.persist(&*self.store).await {
            Ok(committed) => committed,
            Err(e) => {
                tracing::error!(execution = %id, error = %e, "could not record cancellation");
                Arc::new(live.snapshot())
            }
        };
        if let Err(e) = self.files.close_logs(id).await {
            tracing::warn!(execution = %id, error = %e, "could not close logs");
        }
        self.events.forget(id);
        committed
    }

    /// The dispatcher loop: one permit, then the oldest job, then a run task.
    pub(crate) async fn run_loop(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            let permit = tokio::select! {
                _ = shutdown.cancelled() => return,
                permit = self.permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => return,
                },
            };
            let (job, token) = loop {
                if let Some(next) = self.pop_next() {
                    break next;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = self.wake.notified() => {}
                }
            };
            let me = self.clone();
            self.runs.spawn(async move {
                me.run(job, token).await;
                drop(permit);
            });
        }
    }

    async fn run(&self, job: QueuedJob, cancel_token: CancellationToken) {
        let QueuedJob { live, plan } = job;
        let started = crate::stamp::now(self.clock.as_ref());
        let runner = self.executor.runner().id;
        live.modify(|e| {
            e.status = ExecutionStatus::Running;
            e.started_at = Some(started);
            e.runner = Some(runner);
        });
        let execution = live.snapshot();
        if let Err(e) = live.persist(&*self.store).await {
            tracing::warn!(execution = %execution.id, error = %e, "could not record start");
        }
        let secrets = plan.secrets.clone();
        let outcome = if cancel_token.is_cancelled() {
            ExecutionOutcome {
                status: ExecutionStatus::Aborted,
                steps: Vec::new(),
                junit: None,
                error: Some("aborted before it started".into()),
            }
        } else {
            self.execute(&live, &execution, plan, cancel_token).await
        };
        self.finish(&live, outcome, &secrets).await;
    }

    async fn execute(
        &self,
        live: &Arc<LiveExecution>,
        execution: &Execution,
        plan: ExecutionPlan,
        cancel_token: CancellationToken,
    ) -> ExecutionOutcome {
        let dirty = Arc::new(Notify::new());
        let stop = CancellationToken::new();
        let persister = tokio::spawn(persist_steps(
            live.clone(),
            self.store.clone(),
            dirty.clone(),
            stop.clone(),
        ));
        let observer = Arc::new(StepObserver {
            live: live.clone(),
            store: self.store.clone(),
            execution_id: execution.id,
            secrets: plan.secrets.clone(),
            dirty,
        });
        let job = ExecutionJob {
            execution_id: execution.id,
            env_id: execution.env_id,
            execution_name: execution.name.clone(),
            plan,
        };
        // An executor must not panic on job content; if it does anyway, the execution
        // still gets a final state and the concurrency permit is returned.
        let outcome = AssertUnwindSafe(self.executor.execute(job, observer, cancel_token))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| ExecutionOutcome {
                status: ExecutionStatus::Failed,
                steps: live.snapshot().steps,
                junit: None,
                error: Some("the executor crashed while running this execution".into()),
            });
        // The step writer must be done before the final write, or a stale step update
        // could land after it.
        stop.cancel();
        if let Err(e) = persister.await {
            tracing::error!(execution = %execution.id, error = %e, "step writer failed");
        }
        outcome
    }

    async fn finish(
        &self,
        live: &Arc<LiveExecution>,
        outcome: ExecutionOutcome,
        secrets: &[String],
    ) {
        let finished = crate::stamp::now(self.clock.as_ref());
        let mut outcome = outcome;
        if !outcome.status.is_terminal() {
            // An executor bug must not leave the execution looking alive forever.
            outcome.error = Some(format!(
                "the executor returned the non-final status {}; recorded as failed",
                outcome.status
            ));
            outcome.status = ExecutionStatus::Failed;
        }
        live.modify(|e| {
            e.status = outcome.status;
            e.steps = mask_steps(&outcome.steps, secrets);
            e.junit = outcome.junit.clone();
            e.error = outcome.error.as_deref().map(|m| mask_text(m, secrets));
            e.finished_at = Some(finished);
            e.duration_ms = e.started_at.map(|s| millis_between(s, finished));
        });
        let id = live.id();
        // The final state matters most: retry a few times before giving up.
        let mut delay = Duration::from_millis(200);
        for attempt in 1..=4 {
            match live.persist(&*self.store).await {
                Ok(_) => break,
                Err(e) if attempt < 4 => {
                    tracing::warn!(execution = %id, error = %e, attempt, "could not record final state; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 3;
                }
                Err(e) => {
                    tracing::error!(execution = %id, error = %e, "could not record final state");
                }
            }
        }
        if let Err(e) = self.files.close_logs(id).await {
            tracing::warn!(execution = %id, error = %e, "could not close logs");
        }
        self.lock().running.remove(&id);
        self.events.forget(id);
    }

    /// Stops taking new executions and aborts the running ones; waits (bounded) for their
    /// final states to be recorded. Queued executions stay queued in the store and are
    /// picked up by recovery at the next start.
    pub(crate) async fn shutdown(&self) {
        self.accepting.store(false, Ordering::SeqCst);
        self.abort_all();
        self.runs.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.runs.wait())
            .await
            .is_err()
        {
            tracing::warn!("executions did not stop within the shutdown grace period");
        }
    }

    pub(crate) fn abort_all(&self) {
        self.accepting.store(false, Ordering::SeqCst);
        for token in self.lock().running.values() {
            token.cancel();
        }
    }

    pub(crate) fn executor(&self) -> &Arc<dyn Executor> {
        &self.executor
    }

    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub(crate) fn files(&self) -> &Arc<dyn ExecutionFiles> {
        &self.files
    }
}

/// Marks a not-yet-started execution canceled.
fn cancel(execution: &mut Execution, now: Timestamp, reason: &str) {
    execution.status = ExecutionStatus::Canceled;
    execution.finished_at = Some(now);
    execution.error = Some(reason.to_string());
}

pub(crate) fn millis_between(start: Timestamp, end: Timestamp) -> i64 {
    i64::try_from((end - start).whole_milliseconds().max(0)).unwrap_or(i64::MAX)
}

/// Writes step progress, coalesced: each wake-up writes the latest state, however many
/// changes came in meanwhile (a `Notify` holds at most one pending wake-up).
async fn persist_steps(
    live: Arc<LiveExecution>,
    store: Arc<dyn Store>,
    dirty: Arc<Notify>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            _ = dirty.notified() => {
                if let Err(e) = live.persist(&*store).await {
                    tracing::warn!(error = %e, "could not record step progress");
                }
            }
        }
    }
}

struct StepObserver {
    live: Arc<LiveExecution>,
    store: Arc<dyn Store>,
    execution_id: Uuid,
    secrets: Vec<String>,
    dirty: Arc<Notify>,
}

#[async_trait]
impl ExecutionObserver for StepObserver {
    async fn steps_changed(&self, steps: &[StepResult]) {
        let steps = mask_steps(steps, &self.secrets);
        self.live.modify(|e| e.steps = steps);
        self.dirty.notify_one();
    }

    async fn resource_samples(&self, step: &str, samples: &[ResourceSample]) {
        if let Err(e) = self
            .store
            .insert_resource_samples(self.execution_id, step, samples)
            .await
        {
            tracing::warn!(execution = %self.execution_id, error = %e, "could not record resource samples");
        }
    }
}
