//! A control plane that knows nothing, for unit tests of the HTTP layer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::{AppState, ServerConfig};
use assay_core::actor::{Access, AuthMethod};
use assay_core::audit::{ActorActivity, AuditEvent, AuditFilter, AuditSettings, AuditVerifyReport};
use assay_core::execution::*;
use assay_core::identity::{
    ApiTokenInfo, CreatedApiToken, MemberInfo, MemberUpdate, NewApiToken, NewMember,
};
use assay_core::page::{Page, PageRequest};
use assay_core::ports::{Authenticator, ControlPlane};
use assay_core::workflow::*;
use assay_core::{Actor, ClientInfo, EnvRef, Error, Principal, PrincipalKind, Result, Timestamp};
use async_trait::async_trait;
use futures::stream::BoxStream;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub const TOKEN: &str = "assay_test_token";

fn none<T>() -> Result<T> {
    Err(Error::not_found("fake", "nothing exists in the fake"))
}

pub struct Nothing;

#[async_trait]
impl Authenticator for Nothing {
    async fn authenticate(
        &self,
        bearer: &str,
        _: &ClientInfo,
        _: Option<&str>,
    ) -> Result<Principal> {
        if bearer != TOKEN {
            return Err(Error::Unauthenticated("unknown token".into()));
        }
        Ok(Principal {
            kind: PrincipalKind::ApiToken,
            id: uuid::Uuid::nil(),
            display_name: "test".into(),
            org_id: uuid::Uuid::nil(),
            access: Access::OrgAdmin,
            scope_cap: None,
            auth_method: AuthMethod::ApiToken,
            credential_id: None,
        })
    }
}

#[async_trait]
impl ControlPlane for Nothing {
    async fn list_workflows(
        &self,
        _: &Actor,
        _: &EnvRef,
        _: &WorkflowFilter,
        _: &PageRequest,
    ) -> Result<Page<WorkflowSummary>> {
        none()
    }
    async fn get_workflow(&self, _: &Actor, _: &EnvRef, _: &str) -> Result<WorkflowDetail> {
        none()
    }
    async fn create_workflow(&self, _: &Actor, _: &EnvRef, _: &str) -> Result<WorkflowDetail> {
        none()
    }
    async fn update_workflow(
        &self,
        _: &Actor,
        _: &EnvRef,
        _: &str,
        _: &str,
    ) -> Result<WorkflowDetail> {
        none()
    }
    async fn apply_workflow(&self, _: &Actor, _: &EnvRef, _: &str) -> Result<ApplyResult> {
        none()
    }
    async fn delete_workflow(&self, _: &Actor, _: &EnvRef, _: &str) -> Result<()> {
        none()
    }
    async fn list_templates(
        &self,
        _: &Actor,
        _: &EnvRef,
        _: &WorkflowFilter,
        _: &PageRequest,
    ) -> Result<Page<WorkflowSummary>> {
        none()
    }
    async fn get_template(&self, _: &Actor, _: &EnvRef, _: &str) -> Result<WorkflowDetail> {
        none()
    }
    async fn create_template(&self, _: &Actor, _: &EnvRef, _: &str) -> Result<WorkflowDetail> {
        none()
    }
    async fn update_template(
        &self,
        _: &Actor,
        _: &EnvRef,
        _: &str,
        _: &str,
    ) -> Result<WorkflowDetail> {
        none()
    }
    async fn apply_template(&self, _: &Actor, _: &EnvRef, _: &str) -> Result<ApplyResult> {
        none()
    }
    async fn delete_template(&self, _: &Actor, _: &EnvRef, _: &str) -> Result<()> {
        none()
    }
    async fn run_workflow(
        &self,
        _: &Actor,
        _: &EnvRef,
        _: &str,
        _: &RunRequest,
    ) -> Result<Execution> {
        none()
    }
    async fn list_executions(
        &self,
        _: &Actor,
        _: &EnvRef,
        _: &ExecutionFilter,
        _: &PageRequest,
    ) -> Result<Page<ExecutionSummary>> {
        none()
    }
    async fn get_execution(&self, _: &Actor, _: &EnvRef, _: &str) -> Result<Execution> {
        none()
    }
    async fn wait_for_execution(
        &self,
        _: &Actor,
        _: &EnvRef,
        _: &str,
        _: std::time::Duration,
    ) -> Result<Execution> {
        none()
    }
    async fn abort_execution(&self, _: &Actor, _: &EnvRef, _: &str) -> Result<Execution> {
        none()
    }
    async fn update_execution_tags(
        &self,
        _: &Actor,
        _: &EnvRef,
        _: &str,
        _: &BTreeMap<String, String>,
    ) -> Result<Execution> {
        none()
    }
    async fn execution_logs(
        &self,
        _: &Actor,
        _: &EnvRef,
        _: &str,
        _: &LogQuery,
    ) -> Result<LogPage> {
        none()
    }
    async fn follow_execution_logs(
        &self,
        _: &Actor,
        _: &EnvRef,
        _: &str,
        _: Option<String>,
        _: u64,
    ) -> Result<BoxStream<'static, Result<LogLine>>> {
        none()
    }
    async fn list_artifacts(&self, _: &Actor, _: &EnvRef, _: &str) -> Result<Vec<Artifact>> {
        none()
    }
    async fn read_artifact(
        &self,
        _: &Actor,
        _: &EnvRef,
        _: &str,
        _: &str,
        _: &ArtifactQuery,
    ) -> Result<ArtifactContent> {
        none()
    }
    async fn download_artifact(
        &self,
        _: &Actor,
        _: &EnvRef,
        _: &str,
        _: &str,
    ) -> Result<(Artifact, BoxStream<'static, Result<Vec<u8>>>)> {
        none()
    }
    async fn workflow_metrics(
        &self,
        _: &Actor,
        _: &EnvRef,
        _: &str,
        _: u32,
    ) -> Result<WorkflowMetrics> {
        none()
    }
    async fn execution_metrics(&self, _: &Actor, _: &EnvRef, _: &str) -> Result<ExecutionMetrics> {
        none()
    }
    async fn resource_history(
        &self,
        _: &Actor,
        _: &EnvRef,
        _: &str,
        _: u32,
    ) -> Result<Vec<ResourceHistoryEntry>> {
        none()
    }
    async fn list_labels(
        &self,
        _: &Actor,
        _: &EnvRef,
    ) -> Result<BTreeMap<String, BTreeSet<String>>> {
        none()
    }
    async fn list_runners(&self, _: &Actor, _: &EnvRef) -> Result<Vec<RunnerInfo>> {
        none()
    }
    async fn list_members(&self, _: &Actor, _: &str) -> Result<Vec<MemberInfo>> {
        none()
    }
    async fn add_member(&self, _: &Actor, _: &str, _: &NewMember) -> Result<MemberInfo> {
        none()
    }
    async fn update_member(
        &self,
        _: &Actor,
        _: &str,
        _: &str,
        _: &MemberUpdate,
    ) -> Result<MemberInfo> {
        none()
    }
    async fn remove_member(&self, _: &Actor, _: &str, _: &str) -> Result<()> {
        none()
    }
    async fn create_api_token(
        &self,
        _: &Actor,
        _: &str,
        _: &NewApiToken,
    ) -> Result<CreatedApiToken> {
        none()
    }
    async fn list_api_tokens(&self, _: &Actor, _: &str) -> Result<Vec<ApiTokenInfo>> {
        none()
    }
    async fn get_api_token(&self, _: &Actor, _: &str, _: uuid::Uuid) -> Result<ApiTokenInfo> {
        none()
    }
    async fn rotate_api_token(
        &self,
        _: &Actor,
        _: &str,
        _: uuid::Uuid,
        _: Option<u64>,
    ) -> Result<CreatedApiToken> {
        none()
    }
    async fn revoke_api_token(&self, _: &Actor, _: &str, _: uuid::Uuid) -> Result<ApiTokenInfo> {
        none()
    }
    async fn list_my_grants(
        &self,
        _: &Actor,
        _: &str,
    ) -> Result<Vec<assay_core::oauth::GrantInfo>> {
        none()
    }
    async fn whoami(&self, _: &Actor) -> Result<assay_core::identity::Identity> {
        none()
    }
    async fn revoke_my_grant(&self, _: &Actor, _: &str, _: uuid::Uuid) -> Result<()> {
        none()
    }
    async fn export_audit(
        &self,
        _: &Actor,
        _: &str,
        _: &AuditFilter,
    ) -> Result<BoxStream<'static, Result<AuditEvent>>> {
        none()
    }
    async fn verify_audit(&self, _: &Actor, _: &str) -> Result<AuditVerifyReport> {
        none()
    }
    async fn audit_actors(
        &self,
        _: &Actor,
        _: &str,
        _: Timestamp,
        _: Timestamp,
    ) -> Result<Vec<ActorActivity>> {
        none()
    }
    async fn audit_settings(&self, _: &Actor, _: &str) -> Result<AuditSettings> {
        none()
    }
    async fn set_audit_settings(
        &self,
        _: &Actor,
        _: &str,
        _: &AuditSettings,
    ) -> Result<AuditSettings> {
        none()
    }
}

/// The full router over [`Nothing`], always ready.
pub fn app() -> axum::Router {
    let nothing = Arc::new(Nothing);
    crate::router(AppState {
        control: nothing.clone(),
        auth: nothing,
        ready: Arc::new(|| Box::pin(async { true })),
        config: ServerConfig::new(url::Url::parse("http://127.0.0.1:1/").unwrap()),
    })
}
