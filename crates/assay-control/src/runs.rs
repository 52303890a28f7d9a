//! Executions: starting (plan → store → queue), aborting, tagging, and everything read
//! about one execution (logs, artifacts, metrics).

use crate::LocalControlPlane;
use crate::access::Scope;
use crate::audit::Call;
use crate::dispatcher::{AbortAction, QueuedJob};
use crate::events::{LiveExecution, wait_until_finished};
use crate::insight;
use crate::masking::recorded_plan;
use crate::tags;
use assay_core::actor::ActorRef;
use assay_core::error::FieldError;
use assay_core::execution::{
    Execution, ExecutionMetrics, ExecutionPlan, ExecutionStatus, ResourceHistoryEntry, RunRequest,
    WorkflowMetrics,
};
use assay_core::spec::{self, WorkflowDocument};
use assay_core::workflow::ResourceKind;
use assay_core::{Error, Result};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Templates may use templates, at most this deep.
const MAX_TEMPLATE_DEPTH: usize = 10;
/// Bound on template resolution work (diamond-shaped `use:` graphs are walked per path).
const MAX_TEMPLATE_VISITS: usize = 1000;
/// How long abort waits for a running execution's processes to be gone.
const ABORT_WAIT: Duration = Duration::from_secs(10);

const CANCELED_REASON: &str = "canceled before it started";
const AUDIT_CANCELED_REASON: &str =
    "not started: its audit event could not be recorded (audit log unavailable)";

/// A stored, registered execution not yet handed to the dispatcher.
pub(crate) struct PreparedRun {
    pub live: Arc<LiveExecution>,
    pub plan: ExecutionPlan,
}

impl LocalControlPlane {
    pub(crate) async fn prepare_run(
        &self,
        call: &mut Call<'_>,
        scope: &Scope,
        workflow: &str,
        request: &RunRequest,
    ) -> Result<PreparedRun> {
        if !self.dispatcher.accepting() {
            return Err(Error::Unavailable(
                "the server is shutting down and accepts no new executions".into(),
            ));
        }
        tags::validate(&request.tags)?;
        let record = self
            .find_resource(scope, ResourceKind::Workflow, workflow)
            .await?;
        let doc = spec::parse(&record.source, ResourceKind::Workflow)?;
        let templates = self.load_templates(scope, &doc).await?;
        let built = spec::build_plan(&doc, &templates, &request.config)?;

        let mut tags = doc.execution_tags();
        tags.extend(request.tags.clone());
        let mut execution = Execution {
            id: Uuid::now_v7(),
            env_id: scope.env.id,
            workflow_id: record.id,
            workflow_name: record.name.clone(),
            number: 0,
            name: String::new(),
            status: ExecutionStatus::Queued,
            config: built.config,
            tags,
            labels: record.labels.clone(),
            started_by: ActorRef::from(&call.actor.principal),
            queued_at: crate::stamp::now(self.clock.as_ref()),
            started_at: None,
            finished_at: None,
            duration_ms: None,
            steps: Vec::new(),
            junit: None,
            error: None,
            plan: recorded_plan(&built.plan),
            runner: None,
        };
        call.add(format!("execution:{}", execution.id));
        // Registered before it is stored, so an abort that finds it in the store always
        // finds it here too and can keep it from starting.
        let live = self.dispatcher.events.register(execution.clone());
        if let Err(e) = self.store.insert_execution(&mut execution).await {
            self.dispatcher.events.forget(execution.id);
            return Err(e);
        }
        live.modify(|e| {
            e.number = execution.number;
            e.name = execution.name.clone();
        });
        Ok(PreparedRun {
            live,
            plan: built.plan,
        })
    }

    /// Hands a prepared run to the queue (its audit event is committed).
    pub(crate) fn start_run(&self, prepared: PreparedRun) -> Execution {
        let execution = prepared.live.snapshot();
        self.dispatcher.enqueue(QueuedJob {
            live: prepared.live,
            plan: prepared.plan,
        });
        execution
    }

    /// A prepared run whose audit event could not be committed never runs.
    pub(crate) async fn discard_run(&self, prepared: PreparedRun) {
        let id = prepared.live.id();
        if let AbortAction::Canceled(live) = self.dispatcher.abort(id, AUDIT_CANCELED_REASON) {
            self.dispatcher.finish_canceled(live).await;
        }
    }

    /// Every template the workflow uses, transitively, keyed by name. Cycles and nesting
    /// deeper than `MAX_TEMPLATE_DEPTH` are rejected.
    async fn load_templates(
        &self,
        scope: &Scope,
        doc: &WorkflowDocument,
    ) -> Result<BTreeMap<String, WorkflowDocument>> {
        let mut loaded: BTreeMap<String, WorkflowDocument> = BTreeMap::new();
        // Depth-first over paths, so a cycle always shows up as a name already on its path.
        let mut pending: Vec<(String, Vec<String>)> = doc
            .template_names()
            .into_iter()
            .rev()
            .map(|name| (name, Vec::new()))
            .collect();
        let mut visits = 0usize;
        while let Some((name, path)) = pending.pop() {
            visits += 1;
            if visits > MAX_TEMPLATE_VISITS {
                return Err(Error::invalid(
                    "use",
                    "templates are referenced too many times; simplify the use: graph",
                ));
            }
            if path.contains(&name) {
                let cycle: Vec<&str> = path
                    .iter()
                    .map(String::as_str)
                    .chain([name.as_str()])
                    .collect();
                return Err(Error::invalid(
                    "use",
                    format!("templates use each other in a cycle: {}", cycle.join(" → ")),
                ));
            }
            if path.len() >= MAX_TEMPLATE_DEPTH {
                return Err(Error::invalid(
                    "use",
                    format!(
                        "templates are nested more than {MAX_TEMPLATE_DEPTH} levels deep: {} → {name}",
                        path.join(" → ")
                    ),
                ));
            }
            if !loaded.contains_key(&name) {
                let template = self.load_template(scope, &name).await?;
                loaded.insert(name.clone(), template);
            }
            let children = loaded
                .get(&name)
                .map(WorkflowDocument::template_names)
                .unwrap_or_default();
            let mut child_path = path;
            child_path.push(name);
            for child in children.into_iter().rev() {
                pending.push((child, child_path.clone()));
            }
        }
        Ok(loaded)
    }

    async fn load_template(&self, scope: &Scope, name: &str) -> Result<WorkflowDocument> {
        let Some(record) = self
            .store
            .get_resource(scope.env.id, ResourceKind::Template, name)
            .await?
        else {
            return Err(Error::invalid(
                "use",
                format!("template {name:?} does not exist in this environment"),
            ));
        };
        spec::parse(&record.source, ResourceKind::Template).map_err(|e| match e {
            Error::Invalid(errors) => Error::Invalid(
                errors
                    .into_iter()
                    .map(|f| FieldError {
                        path: format!("templates[{name}].{}", f.path),
                        message: f.message,
                    })
                    .collect(),
            ),
            other => other,
        })
    }

    /// The execution by ID or name within the scope's environment, else `NotFound`.
    pub(crate) async fn find_execution(
        &self,
        call: &mut Call<'_>,
        scope: &Scope,
        reference: &str,
    ) -> Result<Execution> {
        match self.store.get_execution(scope.env.id, reference).await? {
            Some(execution) if execution.env_id == scope.env.id => {
                call.refine(
                    &format!("execution:{reference}"),
                    format!("execution:{}", execution.id),
                );
                Ok(execution)
            }
            _ => Err(Error::not_found("execution", reference)),
        }
    }

    /// Woken by the execution's committed state changes, never by polling. An execution
    /// that is not active in this process is already final (or never ran here): its stored
    /// state is the answer.
    pub(crate) async fn wait_in(
        &self,
        call: &mut Call<'_>,
        scope: &Scope,
        reference: &str,
        timeout: std::time::Duration,
    ) -> Result<Execution> {
        let execution = self.find_execution(call, scope, reference).await?;
        if execution.status.is_terminal() {
            return Ok(execution);
        }
        match self.dispatcher.events.subscribe(execution.id) {
            Some(receiver) => Ok((*wait_until_finished(receiver, timeout).await).clone()),
            // It finished between the read and the subscription.
            None => self.reload(scope, execution).await,
        }
    }

    pub(crate) async fn abort_in(
        &self,
        call: &mut Call<'_>,
        scope: &Scope,
        reference: &str,
    ) -> Result<Execution> {
        let execution = self.find_execution(call, scope, reference).await?;
        match self.dispatcher.abort(execution.id, CANCELED_REASON) {
            AbortAction::Canceled(live) => {
                Ok((*self.dispatcher.finish_canceled(live).await).clone())
            }
            AbortAction::Signalled => {
                if let Some(receiver) = self.dispatcher.events.subscribe(execution.id) {
                    wait_until_finished(receiver, ABORT_WAIT).await;
                }
                self.reload(scope, execution).await
            }
            AbortAction::NotActive => {
                let current = self.reload(scope, execution).await?;
                if current.status.is_terminal() {
                    return Err(Error::Conflict(format!(
                        "execution {:?} already finished with status {}",
                        current.name, current.status
                    )));
                }
                // Not active in this process although the store says otherwise: nothing
                // can finish it any more, so record it as aborted.
                let mut orphan = current;
                let now = crate::stamp::now(self.clock.as_ref());
                orphan.status = ExecutionStatus::Aborted;
                orphan.error = Some("aborted; no server was running it".into());
                orphan.finished_at = Some(now);
                orphan.duration_ms = orphan
                    .started_at
                    .map(|s| crate::dispatcher::millis_between(s, now));
                self.store.update_execution(&orphan).await?;
                if let Err(e) = self.files.close_logs(orphan.id).await {
                    tracing::warn!(execution = %orphan.id, error = %e, "could not close logs");
                }
                Ok(orphan)
            }
        }
    }

    async fn reload(&self, scope: &Scope, execution: Execution) -> Result<Execution> {
        Ok(self
            .store
            .get_execution(scope.env.id, &execution.id.to_string())
            .await?
            .unwrap_or(execution))
    }

    pub(crate) async fn update_tags_in(
        &self,
        call: &mut Call<'_>,
        scope: &Scope,
        reference: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<Execution> {
        tags::validate(tags)?;
        let mut execution = self.find_execution(call, scope, reference).await?;
        // An active execution is written from its live copy, so the runner's next write
        // carries the new tags instead of overwriting them.
        if let Some(live) = self.dispatcher.events.get(execution.id) {
            live.modify(|e| e.tags = tags.clone());
            return Ok((*live.persist(self.store.as_ref()).await?).clone());
        }
        execution.tags = tags.clone();
        self.store.update_execution(&execution).await?;
        Ok(execution)
    }

    pub(crate) async fn workflow_metrics_in(
        &self,
        scope: &Scope,
        workflow: &str,
        last_n: u32,
    ) -> Result<WorkflowMetrics> {
        let record = self
            .find_resource(scope, ResourceKind::Workflow, workflow)
            .await?;
        let recent = self
            .store
            .recent_executions(record.id, insight::metrics_window(last_n))
            .await?;
        Ok(insight::workflow_metrics(&record.name, &recent))
    }

    pub(crate) async fn execution_metrics_in(
        &self,
        call: &mut Call<'_>,
        scope: &Scope,
        reference: &str,
    ) -> Result<ExecutionMetrics> {
        let execution = self.find_execution(call, scope, reference).await?;
        let samples = self.store.resource_samples(execution.id).await?;
        Ok(ExecutionMetrics {
            execution_id: execution.id,
            steps: insight::step_metrics(samples),
        })
    }

    pub(crate) async fn resource_history_in(
        &self,
        scope: &Scope,
        workflow: &str,
        last_n: u32,
    ) -> Result<Vec<ResourceHistoryEntry>> {
        let record = self
            .find_resource(scope, ResourceKind::Workflow, workflow)
            .await?;
        let recent = self
            .store
            .recent_executions(record.id, insight::history_window(last_n))
            .await?;
        let mut history = Vec::with_capacity(recent.len());
        for execution in recent {
            let samples = self.store.resource_samples(execution.id).await?;
            history.push(ResourceHistoryEntry {
                execution_id: execution.id,
                execution_name: execution.name,
                status: execution.status,
                duration_ms: execution.duration_ms,
                cpu_max_millicores: samples
                    .iter()
                    .map(|(_, s)| s.cpu_millicores)
                    .max()
                    .unwrap_or(0),
                memory_max_bytes: samples
                    .iter()
                    .map(|(_, s)| s.memory_bytes)
                    .max()
                    .unwrap_or(0),
            });
        }
        Ok(history)
    }
}
