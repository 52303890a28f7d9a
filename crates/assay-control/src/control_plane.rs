//! `ControlPlane` for `LocalControlPlane`. Every method has the same shape:
//!
//! ```text
//! let mut call = Call::new(actor, Operation::X)[.with(resource)];
//! let result = async { let scope = self.authorize(&mut call, env).await?; …act… }.await;
//! self.commit(call, result).await        // audit event committed, then the result
//! ```
//!
//! Organization operations (members, API tokens, audit) are the same with
//! `authorize_org` in place of `authorize`.

use crate::LocalControlPlane;
use crate::audit::{self, Call};
use crate::audit_ops::export_stream;
use crate::grants::grant_ref;
use crate::permissions::Operation;
use crate::resources::resource_ref;
use assay_core::actor::Actor;
use assay_core::audit::{ActorActivity, AuditEvent, AuditFilter, AuditSettings, AuditVerifyReport};
use assay_core::execution::*;
use assay_core::identity::{
    ApiTokenInfo, CreatedApiToken, Identity, MemberInfo, MemberUpdate, NewApiToken, NewMember,
};
use assay_core::oauth::GrantInfo;
use assay_core::page::{Page, PageRequest};
use assay_core::ports::ControlPlane;
use assay_core::workflow::*;
use assay_core::{EnvRef, Result, Timestamp};
use async_trait::async_trait;
use futures::stream::BoxStream;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

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
        let recorded = audit::record(&self.audit, self.clock.as_ref(), &call, outcome)
            .await
            .map(|_| ());
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

    async fn wait_for_execution(
        &self,
        actor: &Actor,
        env: &EnvRef,
        execution: &str,
        timeout: std::time::Duration,
    ) -> Result<Execution> {
        let mut call = Call::new(actor, Operation::WaitExecution).with(execution_ref(execution));
        let result = async {
            let scope = self.authorize(&mut call, env).await?;
            self.wait_in(&mut call, &scope, execution, timeout).await
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

    async fn list_members(&self, actor: &Actor, org: &str) -> Result<Vec<MemberInfo>> {
        let mut call = Call::new(actor, Operation::ListMembers);
        let result = async {
            let org = self.authorize_org(&mut call, org).await?;
            self.list_members_in(&org).await
        }
        .await;
        self.commit(call, result).await
    }

    async fn add_member(&self, actor: &Actor, org: &str, member: &NewMember) -> Result<MemberInfo> {
        let mut call = Call::new(actor, Operation::AddMember);
        let result = async {
            let org = self.authorize_org(&mut call, org).await?;
            self.add_member_in(&mut call, &org, member).await
        }
        .await;
        self.commit(call, result).await
    }

    async fn update_member(
        &self,
        actor: &Actor,
        org: &str,
        user: &str,
        update: &MemberUpdate,
    ) -> Result<MemberInfo> {
        let mut call = Call::new(actor, Operation::UpdateMember);
        let result = async {
            let org = self.authorize_org(&mut call, org).await?;
            self.update_member_in(&mut call, &org, user, update).await
        }
        .await;
        self.commit(call, result).await
    }

    async fn remove_member(&self, actor: &Actor, org: &str, user: &str) -> Result<()> {
        let mut call = Call::new(actor, Operation::RemoveMember);
        let result = async {
            let org = self.authorize_org(&mut call, org).await?;
            self.remove_member_in(&mut call, &org, user).await
        }
        .await;
        self.commit(call, result).await
    }

    async fn create_api_token(
        &self,
        actor: &Actor,
        org: &str,
        request: &NewApiToken,
    ) -> Result<CreatedApiToken> {
        let mut call = Call::new(actor, Operation::CreateApiToken);
        let result = async {
            let org = self.authorize_org(&mut call, org).await?;
            self.create_api_token_in(&mut call, &org, request).await
        }
        .await;
        self.commit(call, result).await
    }

    async fn list_api_tokens(&self, actor: &Actor, org: &str) -> Result<Vec<ApiTokenInfo>> {
        let mut call = Call::new(actor, Operation::ListApiTokens);
        let result = async {
            let org = self.authorize_org(&mut call, org).await?;
            self.list_api_tokens_in(&call, &org).await
        }
        .await;
        self.commit(call, result).await
    }

    async fn get_api_token(&self, actor: &Actor, org: &str, id: Uuid) -> Result<ApiTokenInfo> {
        let mut call = Call::new(actor, Operation::GetApiToken).with(token_ref(id));
        let result = async {
            let org = self.authorize_org(&mut call, org).await?;
            self.get_api_token_in(&mut call, &org, id).await
        }
        .await;
        self.commit(call, result).await
    }

    async fn rotate_api_token(
        &self,
        actor: &Actor,
        org: &str,
        id: Uuid,
        grace_secs: Option<u64>,
    ) -> Result<CreatedApiToken> {
        let mut call = Call::new(actor, Operation::RotateApiToken).with(token_ref(id));
        if let Some(grace) = grace_secs {
            call.add(format!("grace_secs:{grace}"));
        }
        let result = async {
            let org = self.authorize_org(&mut call, org).await?;
            self.rotate_api_token_in(&mut call, &org, id, grace_secs)
                .await
        }
        .await;
        self.commit(call, result).await
    }

    async fn revoke_api_token(&self, actor: &Actor, org: &str, id: Uuid) -> Result<ApiTokenInfo> {
        let mut call = Call::new(actor, Operation::RevokeApiToken).with(token_ref(id));
        let result = async {
            let org = self.authorize_org(&mut call, org).await?;
            self.revoke_api_token_in(&mut call, &org, id).await
        }
        .await;
        self.commit(call, result).await
    }

    async fn list_my_grants(&self, actor: &Actor, org: &str) -> Result<Vec<GrantInfo>> {
        let mut call = Call::new(actor, Operation::ListMyGrants);
        let result = async {
            let org = self.authorize_org(&mut call, org).await?;
            self.list_my_grants_in(&call, &org).await
        }
        .await;
        self.commit(call, result).await
    }

    async fn revoke_my_grant(&self, actor: &Actor, org: &str, id: Uuid) -> Result<()> {
        let mut call = Call::new(actor, Operation::RevokeMyGrant).with(grant_ref(id));
        let result = async {
            let org = self.authorize_org(&mut call, org).await?;
            self.revoke_my_grant_in(&mut call, &org, id).await
        }
        .await;
        self.commit(call, result).await
    }

    async fn whoami(&self, actor: &Actor) -> Result<Identity> {
        self.whoami_audited(actor).await
    }

    /// The export's own event is committed first (durable before anything is returned);
    /// the stream then reads up to, not including, that event.
    async fn export_audit(
        &self,
        actor: &Actor,
        org: &str,
        filter: &AuditFilter,
    ) -> Result<BoxStream<'static, Result<AuditEvent>>> {
        let mut call = Call::new(actor, Operation::ExportAudit);
        let prepared = async {
            let org = self.authorize_org(&mut call, org).await?;
            let filter = self.export_filter(&mut call, &org, filter).await?;
            Ok((org.id, filter))
        }
        .await;
        let outcome = audit::outcome_of(&call, &prepared);
        let appended = audit::record(&self.audit, self.clock.as_ref(), &call, outcome).await?;
        let (org_id, filter) = prepared?;
        Ok(export_stream(
            self.store.clone(),
            org_id,
            filter,
            appended.map(|a| a.seq),
        ))
    }

    /// Reads first, then records the verification (so it is not part of what it checked).
    async fn verify_audit(&self, actor: &Actor, org: &str) -> Result<AuditVerifyReport> {
        let mut call = Call::new(actor, Operation::VerifyAudit);
        let result = async {
            let org = self.authorize_org(&mut call, org).await?;
            self.verify_chain(org.id).await
        }
        .await;
        if let Ok(report) = &result
            && let Some(broken) = &report.broken
        {
            call.add(format!("broken_seq:{}", broken.seq));
        }
        self.commit(call, result).await
    }

    async fn audit_actors(
        &self,
        actor: &Actor,
        org: &str,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<ActorActivity>> {
        let mut call = Call::new(actor, Operation::AuditActors);
        let result = async {
            let org = self.authorize_org(&mut call, org).await?;
            self.audit_actors_in(&org, since, until).await
        }
        .await;
        self.commit(call, result).await
    }

    async fn audit_settings(&self, actor: &Actor, org: &str) -> Result<AuditSettings> {
        let mut call = Call::new(actor, Operation::AuditSettings);
        let result = async {
            let org = self.authorize_org(&mut call, org).await?;
            Ok(AuditSettings {
                retention_days: org.audit_retention_days,
            })
        }
        .await;
        self.commit(call, result).await
    }

    async fn set_audit_settings(
        &self,
        actor: &Actor,
        org: &str,
        settings: &AuditSettings,
    ) -> Result<AuditSettings> {
        let mut call = Call::new(actor, Operation::SetAuditSettings);
        let result = async {
            let org = self.authorize_org(&mut call, org).await?;
            self.set_audit_settings_in(&mut call, &org, settings).await
        }
        .await;
        self.commit(call, result).await
    }
}

fn token_ref(id: Uuid) -> String {
    format!("token:{id}")
}
