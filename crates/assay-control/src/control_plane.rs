//! `ControlPlane` for `LocalControlPlane`. Every method has the same shape:
//!
//! ```text
//! let mut call = Call::new(actor, Operation::X)[.with(resource)];
//! let result = async { let scope = self.authorize(&mut call, env).await?; …act… }.await;
//! self.commit(call, result).await        // audit event committed, then the result
//! ```

use crate::LocalControlPlane;
use crate::audit::{self, Call};
use crate::permissions::Operation;
use crate::resources::resource_ref;
use assay_core::actor::Actor;
use assay_core::execution::*;
use assay_core::page::{Page, PageRequest};
use assay_core::ports::ControlPlane;
use assay_core::workflow::*;
use assay_core::{EnvRef, Result};
use async_trait::async_trait;
use futures::stream::BoxStream;
use std::collections::{BTreeMap, BTreeSet};

fn execution_ref(reference: &str) -> String {
    format!("execution:{reference}")
}

#[async_trait]
impl ControlPlane for LocalControlPlane {
    async fn list_workflows(
        &self,
        actor: &Actor,
        env: &EnvRef,
        filter: &WorkflowFilter,
        page: &PageRequest,
    ) -> Result<Page<WorkflowSummary>> {
        let mut call = Call::new(actor, Operation::ListWorkflows);
        let result = async {
            let scope = self.authorize(&mut call, env).await?;
            self.list_resources_in(&scope, ResourceKind::Workflow, filter, page)
                .await
        }
        .await;
        self.commit(call, result).await
    }

    async fn get_workflow(
        &self,
        actor: &Actor,
        env: &EnvRef,
        name: &str,
    ) -> Result<WorkflowDetail> {
        let mut call = Call::new(actor, Operation::GetWorkflow)
            .with(resource_ref(ResourceKind::Workflow, name));
        let result = async {
            let scope = self.authorize(&mut call, env).await?;
            self.get_resource_in(&scope, ResourceKind::Workflow, name)
                .await
        }
        .await;
        self.commit(call, result).await
    }

    async fn create_workflow(
        &self,
        actor: &Actor,
        env: &EnvRef,
        source: &str,
    ) -> Result<WorkflowDetail> {
        let mut call = Call::new(actor, Operation::CreateWorkflow);
        let result = async {
            let scope = self.authorize(&mut call, env).await?;
            self.create_resource_in(&mut call, &scope, ResourceKind::Workflow, source)
                .await
        }
        .await;
        self.commit(call, result).await
    }

    async fn update_workflow(
        &self,
        actor: &Actor,
        env: &EnvRef,
        name: &str,
        source: &str,
    ) -> Result<WorkflowDetail> {
        let mut call = Call::new(actor, Operation::UpdateWorkflow)
            .with(resource_ref(ResourceKind::Workflow, name));
        let result = async {
            let scope = self.authorize(&mut call, env).await?;
            self.update_resource_in(&scope, ResourceKind::Workflow, name, source)
                .await
        }
        .await;
        self.commit(call, result).await
    }

    async fn apply_workflow(
        &self,
        actor: &Actor,
        env: &EnvRef,
        source: &str,
    ) -> Result<ApplyResult> {
        let mut call = Call::new(actor, Operation::ApplyWorkflow);
        let result = async {
            let scope = self.authorize(&mut call, env).await?;
            self.apply_resource_in(&mut call, &scope, ResourceKind::Workflow, source)
                .await
        }
        .await;
        self.commit(call, result).await
    }

    async fn delete_workflow(&self, actor: &Actor, env: &EnvRef, name: &str) -> Result<()> {
        let mut call = Call::new(actor, Operation::DeleteWorkflow)
            .with(resource_ref(ResourceKind::Workflow, name));
        let result = async {
            let scope = self.authorize(&mut call, env).await?;
            self.delete_resource_in(&scope, ResourceKind::Workflow, name)
                .await
        }
        .await;
        self.commit(call, result).await
    }

    async fn list_templates(
        &self,
        actor: &Actor,
        env: &EnvRef,
        filter: &WorkflowFilter,
        page: &PageRequest,
    ) -> Result<Page<WorkflowSummary>> {
        let mut call = Call::new(actor, Operation::ListTemplates);
        let result = async {
            let scope = self.authorize(&mut call, env).await?;
            self.list_resources_in(&scope, ResourceKind::Template, filter, page)
                .await
        }
        .await;
        self.commit(call, result).await
    }

    async fn get_template(
        &self,
        actor: &Actor,
        env: &EnvRef,
        name: &str,
    ) -> Result<WorkflowDetail> {
        let mut call = Call::new(actor, Operation::GetTemplate)
            .with(resource_ref(ResourceKind::Template, name));
        let result = async {
            let scope = self.authorize(&mut call, env).await?;
            self.get_resource_in(&scope, ResourceKind::Template, name)
                .await
        }
        .await;
        self.commit(call, result).await
    }

    async fn create_template(
        &self,
        actor: &Actor,
        env: &EnvRef,
        source: &str,
    ) -> Result<WorkflowDetail> {
        let mut call = Call::new(actor, Operation::CreateTemplate);
        let result = async {
            let scope = self.authorize(&mut call, env).await?;
            self.create_resource_in(&mut call, &scope, ResourceKind::Template, source)
                .await
        }
        .await;
        self.commit(call, result).await
    }

    async fn update_template(
        &self,
        actor: &Actor,
        env: &EnvRef,
        name: &str,
        source: &str,
    ) -> Result<WorkflowDetail> {
        let mut call = Call::new(actor, Operation::UpdateTemplate)
            .with(resource_ref(ResourceKind::Template, name));
        let result = async {
            let scope = self.authorize(&mut call, env).await?;
            self.update_resource_in(&scope, ResourceKind::Template, name, source)
                .await
        }
        .await;
        self.commit(call, result).await
    }

    async fn apply_template(
        &self,
        actor: &Actor,
        env: &EnvRef,
        source: &str,
    ) -> Result<ApplyResult> {
        let mut call = Call::new(actor, Operation::ApplyTemplate);
        let result = async {
            let scope = self.authorize(&mut call, env).await?;
            self.apply_resource_in(&mut call, &scope, ResourceKind::Template, source)
                .await
        }
        .await;
        self.commit(call, result).await
    }

    async fn delete_template(&self, actor: &Actor, env: &EnvRef, name: &str) -> Result<()> {
        let mut call = Call::new(actor, Operation::DeleteTemplate)
            .with(resource_ref(ResourceKind::Template, name));
        let result = async {
            let scope = self.authorize(&mut call, env).await?;
            self.delete_resource_in(&scope, ResourceKind::Template, name)
                .await
        }
        .await;
        self.commit(call, result).await
    }

    /// Audited before it takes effect: the execution is stored first (so the event can
    /// name it) but only queued once its event is committed; otherwise it is canceled.
    async fn run_workflow(
        &self,
        actor: &Actor,
        env: &EnvRef,
        workflow: &str,
        request: &RunRequest,
    ) -> Result<Execution> {
        let mut call = Call::new(actor, Operation::RunWorkflow)
            .with(resource_ref(ResourceKind::Workflow, workflow));
        let prepared = async {
            let scope = self.authorize(&mut call, env).await?;
            self.prepare_run(&mut call, &scope, workflow, request).await
        }
        .await;
        let outcome = audit::outcome_of(&call, &prepared);
        let recorded =
            audit::record(self.store.as_ref(), self.clock.as_ref(), &call, outcome).await;
        match (prepared, recorded) {
            (Ok(prepared), Ok(())) => Ok(self.start_run(prepared)),
            (Ok(prepared), Err(unavailable)) => {
                self.discard_run(prepared).await;
                Err(unavailable)
            }
            (Err(_), Err(unavailable)) => Err(unavailable),
            (Err(e), Ok(())) => Err(e),
        }
    }

    async fn list_executions(
        &self,
        actor: &Actor,
        env: &EnvRef,
        filter: &ExecutionFilter,
        page: &PageRequest,
    ) -> Result<Page<ExecutionSummary>> {
        let mut call = Call::new(actor, Operation::ListExecutions);
        let result = async {
            let scope = self.authorize(&mut call, env).await?;
            self.store.list_executions(scope.env.id, filter, page).await
        }
        .await;
        self.commit(call, result).await
    }

    async fn get_execution(
        &self,
        actor: &Actor,
        env: &EnvRef,
        execution: &str,
    ) -> Result<Execution> {
        let mut call = Call::new(actor, Operation::GetExecution).with(execution_ref(execution));
        let result = async {
            let scope = self.authorize(&mut call, env).await?;
            self.find_execution(&mut call, &scope, execution).await
        }
        .await;
        self.commit(call, result).await
    }

    async fn abort_execution(
        &self,
        actor: &Actor,
        env: &EnvRef,
        execution: &str,
    ) -> Result<Execution> {
        let mut call = Call::new(actor, Operation::AbortExecution).with(execution_ref(execution));
        let result = async {
            let scope = self.authorize(&mut call, env).await?;
            self.abort_in(&mut call, &scope, execution).await
        }
        .await;
        self.commit(call, result).await
    }

    async fn update_execution_tags(
        &self,
        actor: &Actor,
        env: &EnvRef,
        execution: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<Execution> {
        let mut call =
            Call::new(actor, Operation::UpdateExecutionTags).with(execution_ref(execution));
        let result = async {
            let scope = self.authorize(&mut call, env).await?;
            self.update_tags_in(&mut call, &scope, execution, tags)
                .await
        }
        .await;
        self.commit(call, result).await
    }

    async fn execution_logs(
        &self,
        actor: &Actor,
        env: &EnvRef,
        execution: &str,
        query: &LogQuery,
    ) -> Result<LogPage> {
        let mut call = Call::new(actor, Operation::ExecutionLogs).with(execution_ref(execution));
        let result = async {
            let scope = self.authorize(&mut call, env).await?;
            let found = self.find_execution(&mut call, &scope, execution).await?;
            self.files.read_logs(found.id, query).await
        }
        .await;
        self.commit(call, result).await
    }

    async fn follow_execution_logs(
        &self,
        actor: &Actor,
        env: &EnvRef,
        execution: &str,
        step: Option<String>,
        after_line: u64,
    ) -> Result<BoxStream<'static, Result<LogLine>>> {
        let mut call =
            Call::new(actor, Operation::FollowExecutionLogs).with(execution_ref(execution));
        let result = async {
            let scope = self.authorize(&mut call, env).await?;
            let found = self.find_execution(&mut call, &scope, execution).await?;
            Ok(self.files.follow_logs(found.id, step, after_line))
        }
        .await;
        self.commit(call, result).await
    }

    async fn list_artifacts(
        &self,
        actor: &Actor,
        env: &EnvRef,
        execution: &str,
    ) -> Result<Vec<Artifact>> {
        let mut call = Call::new(actor, Operation::ListArtifacts).with(execution_ref(execution));
        let result = async {
            let scope = self.authorize(&mut call, env).await?;
            let found = self.find_execution(&mut call, &scope, execution).await?;
            self.files.list_artifacts(found.id).await
        }
        .await;
        self.commit(call, result).await
    }

    async fn read_artifact(
        &self,
        actor: &Actor,
        env: &EnvRef,
        execution: &str,
        path: &str,
        query: &ArtifactQuery,
    ) -> Result<ArtifactContent> {
        let mut call = Call::new(actor, Operation::ReadArtifact)
            .with(execution_ref(execution))
            .with(format!("artifact:{path}"));
        let result = async {
            let scope = self.authorize(&mut call, env).await?;
            let found = self.find_execution(&mut call, &scope, execution).await?;
            self.files.read_artifact(found.id, path, query).await
        }
        .await;
        self.commit(call, result).await
    }

    async fn download_artifact(
        &self,
        actor: &Actor,
        env: &EnvRef,
        execution: &str,
        path: &str,
    ) -> Result<(Artifact, BoxStream<'static, Result<Vec<u8>>>)> {
        let mut call = Call::new(actor, Operation::DownloadArtifact)
            .with(execution_ref(execution))
            .with(format!("artifact:{path}"));
        let result = async {
            let scope = self.authorize(&mut call, env).await?;
            let found = self.find_execution(&mut call, &scope, execution).await?;
            self.files.open_artifact(found.id, path).await
        }
        .await;
        self.commit(call, result).await
    }

    async fn workflow_metrics(
        &self,
        actor: &Actor,
        env: &EnvRef,
        workflow: &str,
        last_n: u32,
    ) -> Result<WorkflowMetrics> {
        let mut call = Call::new(actor, Operation::WorkflowMetrics)
            .with(resource_ref(ResourceKind::Workflow, workflow));
        let result = async {
            let scope = self.authorize(&mut call, env).await?;
            self.workflow_metrics_in(&scope, workflow, last_n).await
        }
        .await;
        self.commit(call, result).await
    }

    async fn execution_metrics(
        &self,
        actor: &Actor,
        env: &EnvRef,
        execution: &str,
    ) -> Result<ExecutionMetrics> {
        let mut call = Call::new(actor, Operation::ExecutionMetrics).with(execution_ref(execution));
        let result = async {
            let scope = self.authorize(&mut call, env).await?;
            self.execution_metrics_in(&mut call, &scope, execution)
                .await
        }
        .await;
        self.commit(call, result).await
    }

    async fn resource_history(
        &self,
        actor: &Actor,
        env: &EnvRef,
        workflow: &str,
        last_n: u32,
    ) -> Result<Vec<ResourceHistoryEntry>> {
        let mut call = Call::new(actor, Operation::ResourceHistory)
            .with(resource_ref(ResourceKind::Workflow, workflow));
        let result = async {
            let scope = self.authorize(&mut call, env).await?;
            self.resource_history_in(&scope, workflow, last_n).await
        }
        .await;
        self.commit(call, result).await
    }

    async fn list_labels(
        &self,
        actor: &Actor,
        env: &EnvRef,
    ) -> Result<BTreeMap<String, BTreeSet<String>>> {
        let mut call = Call::new(actor, Operation::ListLabels);
        let result = async {
            let scope = self.authorize(&mut call, env).await?;
            self.store.label_values(scope.env.id).await
        }
        .await;
        self.commit(call, result).await
    }

    async fn list_runners(&self, actor: &Actor, env: &EnvRef) -> Result<Vec<RunnerInfo>> {
        let mut call = Call::new(actor, Operation::ListRunners);
        let result = async {
            self.authorize(&mut call, env).await?;
            let mut runner = self.executor.runner();
            let (running, queued) = self.dispatcher.counts();
            runner.running = running;
            runner.queued = queued;
            // The control plane's queue is what limits concurrency.
            runner.concurrency = self.dispatcher.concurrency();
            Ok(vec![runner])
        }
        .await;
        self.commit(call, result).await
    }
}
