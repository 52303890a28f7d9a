//! The `Store` implementation, written once over [`Backend`]: every statement here is
//! plain SQL both SQLite and PostgreSQL accept, with `$n` placeholders.

mod audit;
mod executions;
mod identity;
mod oauth;
mod resources;
mod rows;
mod tenancy;
mod tokens;

use crate::backend::Backend;
use assay_core::audit::{ActorActivity, AuditCheckpoint, AuditEvent, AuditFilter};
use assay_core::execution::{
    Execution, ExecutionFilter, ExecutionStatus, ExecutionSummary, ResourceSample,
};
use assay_core::identity::{ApiTokenRecord, Membership, User};
use assay_core::oauth::{
    AuthorizationCode, BrowserSessionRecord, CodeRedemption, DeviceAuthorization, DeviceStatus,
    OAuthClient, OAuthGrant, RefreshRedemption, RefreshToken, SigningKeyRecord,
};
use assay_core::page::{Page, PageRequest};
use assay_core::ports::Store;
use assay_core::tenancy::{Environment, Organization};
use assay_core::workflow::{ResourceKind, WorkflowFilter, WorkflowRecord};
use assay_core::{Result, Timestamp};
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use uuid::Uuid;

/// A [`Store`] over a database backend; see [`crate::SqliteStore`] and
/// [`crate::PostgresStore`].
pub struct SqlStore<B: Backend> {
    db: B,
}

impl<B: Backend> SqlStore<B> {
    pub(crate) fn new(db: B) -> Self {
        Self { db }
    }

    pub(crate) fn backend(&self) -> &B {
        &self.db
    }

    /// Inserts many executions exactly as [`Store::insert_execution`] would (numbers,
    /// names, side tables), but in one transaction per call. Meant for the benchmark
    /// and for seeding test data quickly; the control plane uses `insert_execution`.
    pub async fn bulk_insert_executions(&self, executions: &mut [Execution]) -> Result<()> {
        executions::bulk_insert(&self.db, executions).await
    }
}

#[async_trait]
impl<B: Backend> Store for SqlStore<B> {
    async fn insert_org(&self, org: &Organization) -> Result<()> {
        tenancy::insert_org(&self.db, org).await
    }

    async fn find_org(&self, id_or_slug: &str) -> Result<Option<Organization>> {
        tenancy::find_org(&self.db, id_or_slug).await
    }

    async fn list_orgs(&self) -> Result<Vec<Organization>> {
        tenancy::list_orgs(&self.db).await
    }

    async fn insert_env(&self, env: &Environment) -> Result<()> {
        tenancy::insert_env(&self.db, env).await
    }

    async fn find_env(&self, org_id: Uuid, id_or_slug: &str) -> Result<Option<Environment>> {
        tenancy::find_env(&self.db, org_id, id_or_slug).await
    }

    async fn list_envs(&self, org_id: Uuid) -> Result<Vec<Environment>> {
        tenancy::list_envs(&self.db, org_id).await
    }

    async fn insert_user(&self, user: &User) -> Result<()> {
        identity::insert_user(&self.db, user).await
    }

    async fn find_user(&self, id: Uuid) -> Result<Option<User>> {
        identity::find_user(&self.db, id).await
    }

    async fn find_user_by_email(&self, email: &str) -> Result<Option<User>> {
        identity::find_user_by_email(&self.db, email).await
    }

    async fn upsert_membership(&self, membership: &Membership) -> Result<()> {
        identity::upsert_membership(&self.db, membership).await
    }

    async fn find_membership(&self, org_id: Uuid, user_id: Uuid) -> Result<Option<Membership>> {
        identity::find_membership(&self.db, org_id, user_id).await
    }

    async fn insert_api_token(&self, token: &ApiTokenRecord) -> Result<()> {
        tokens::insert(&self.db, token).await
    }

    async fn find_api_token_by_hash(&self, secret_hash: &str) -> Result<Option<ApiTokenRecord>> {
        tokens::find_by_hash(&self.db, secret_hash).await
    }

    async fn update_user(&self, user: &User) -> Result<()> {
        identity::update_user(&self.db, user).await
    }

    async fn list_memberships(&self, org_id: Uuid) -> Result<Vec<Membership>> {
        identity::list_memberships(&self.db, org_id).await
    }

    async fn list_memberships_of_user(&self, user_id: Uuid) -> Result<Vec<Membership>> {
        identity::list_memberships_of_user(&self.db, user_id).await
    }

    async fn delete_membership(&self, org_id: Uuid, user_id: Uuid) -> Result<bool> {
        identity::delete_membership(&self.db, org_id, user_id).await
    }

    async fn list_api_tokens(&self, org_id: Uuid) -> Result<Vec<ApiTokenRecord>> {
        tokens::list(&self.db, org_id).await
    }

    async fn get_api_token(&self, org_id: Uuid, id: Uuid) -> Result<Option<ApiTokenRecord>> {
        tokens::get(&self.db, org_id, id).await
    }

    async fn update_api_token(&self, token: &ApiTokenRecord) -> Result<()> {
        tokens::update(&self.db, token).await
    }

    async fn record_token_usage(&self, usages: &[(Uuid, Timestamp, Option<String>)]) -> Result<()> {
        tokens::record_usage(&self.db, usages).await
    }

    async fn revoke_api_tokens_created_by(
        &self,
        org_id: Uuid,
        user_id: Uuid,
        at: Timestamp,
    ) -> Result<u64> {
        tokens::revoke_created_by(&self.db, org_id, user_id, at).await
    }

    async fn set_audit_retention_days(&self, org_id: Uuid, days: u32) -> Result<()> {
        tenancy::set_audit_retention_days(&self.db, org_id, days).await
    }

    async fn insert_resource(&self, record: &WorkflowRecord) -> Result<()> {
        resources::insert(&self.db, record).await
    }

    async fn update_resource(&self, record: &WorkflowRecord) -> Result<()> {
        resources::update(&self.db, record).await
    }

    async fn delete_resource(&self, env_id: Uuid, kind: ResourceKind, name: &str) -> Result<bool> {
        resources::delete(&self.db, env_id, kind, name).await
    }

    async fn get_resource(
        &self,
        env_id: Uuid,
        kind: ResourceKind,
        name: &str,
    ) -> Result<Option<WorkflowRecord>> {
        resources::get(&self.db, env_id, kind, name).await
    }

    async fn list_resources(
        &self,
        env_id: Uuid,
        kind: ResourceKind,
        filter: &WorkflowFilter,
        page: &PageRequest,
    ) -> Result<Page<WorkflowRecord>> {
        resources::list(&self.db, env_id, kind, filter, page).await
    }

    async fn label_values(&self, env_id: Uuid) -> Result<BTreeMap<String, BTreeSet<String>>> {
        resources::label_values(&self.db, env_id).await
    }

    async fn insert_execution(&self, execution: &mut Execution) -> Result<()> {
        executions::insert(&self.db, execution).await
    }

    async fn update_execution(&self, execution: &Execution) -> Result<()> {
        executions::update(&self.db, execution).await
    }

    async fn get_execution(&self, env_id: Uuid, id_or_name: &str) -> Result<Option<Execution>> {
        executions::get(&self.db, env_id, id_or_name).await
    }

    async fn list_executions(
        &self,
        env_id: Uuid,
        filter: &ExecutionFilter,
        page: &PageRequest,
    ) -> Result<Page<ExecutionSummary>> {
        executions::list(&self.db, env_id, filter, page).await
    }

    async fn executions_with_status(&self, statuses: &[ExecutionStatus]) -> Result<Vec<Execution>> {
        executions::with_status(&self.db, statuses).await
    }

    async fn recent_executions(
        &self,
        workflow_id: Uuid,
        limit: u32,
    ) -> Result<Vec<ExecutionSummary>> {
        executions::recent(&self.db, workflow_id, limit).await
    }

    async fn recent_executions_for_workflows(
        &self,
        env_id: Uuid,
        workflow_ids: &[Uuid],
        per_workflow: u32,
    ) -> Result<HashMap<Uuid, Vec<ExecutionSummary>>> {
        executions::recent_for_workflows(&self.db, env_id, workflow_ids, per_workflow).await
    }

    async fn insert_resource_samples(
        &self,
        execution_id: Uuid,
        step: &str,
        samples: &[ResourceSample],
    ) -> Result<()> {
        executions::insert_samples(&self.db, execution_id, step, samples).await
    }

    async fn resource_samples(&self, execution_id: Uuid) -> Result<Vec<(String, ResourceSample)>> {
        executions::samples(&self.db, execution_id).await
    }

    async fn append_audit(&self, event: &mut AuditEvent) -> Result<()> {
        audit::append(&self.db, event).await
    }

    async fn audit_events(
        &self,
        org_id: Uuid,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<AuditEvent>> {
        audit::events(&self.db, org_id, after_seq, limit).await
    }

    async fn append_audit_batch(&self, events: &mut [AuditEvent]) -> Result<()> {
        audit::append_batch(&self.db, events).await
    }

    async fn query_audit(
        &self,
        org_id: Uuid,
        filter: &AuditFilter,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<AuditEvent>> {
        audit::query(&self.db, org_id, filter, after_seq, limit).await
    }

    async fn purge_audit_before(
        &self,
        org_id: Uuid,
        before: Timestamp,
        now: Timestamp,
    ) -> Result<Option<AuditCheckpoint>> {
        audit::purge_before(&self.db, org_id, before, now).await
    }

    async fn audit_checkpoint(&self, org_id: Uuid) -> Result<Option<AuditCheckpoint>> {
        audit::checkpoint(&self.db, org_id).await
    }

    async fn audit_head(&self, org_id: Uuid) -> Result<Option<(i64, String)>> {
        audit::head(&self.db, org_id).await
    }

    async fn audit_actors(
        &self,
        org_id: Uuid,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<ActorActivity>> {
        audit::actors(&self.db, org_id, since, until).await
    }

    // --- OAuth 2.1 authorization server ----------------------------------------------

    async fn insert_oauth_client(&self, client: &OAuthClient) -> Result<()> {
        oauth::insert_client(&self.db, client).await
    }

    async fn get_oauth_client(&self, id: &str) -> Result<Option<OAuthClient>> {
        oauth::get_client(&self.db, id).await
    }

    async fn touch_oauth_client(&self, id: &str, at: Timestamp) -> Result<bool> {
        oauth::touch_client(&self.db, id, at).await
    }

    async fn delete_expired_oauth_clients(&self, now: Timestamp) -> Result<u64> {
        oauth::delete_expired_clients(&self.db, now).await
    }

    async fn upsert_oauth_grant(&self, grant: &OAuthGrant) -> Result<OAuthGrant> {
        oauth::upsert_grant(&self.db, grant).await
    }

    async fn get_oauth_grant(&self, id: Uuid) -> Result<Option<OAuthGrant>> {
        oauth::get_grant(&self.db, id).await
    }

    async fn list_oauth_grants(&self, user_id: Uuid) -> Result<Vec<OAuthGrant>> {
        oauth::list_grants(&self.db, user_id).await
    }

    async fn revoke_oauth_grant(&self, id: Uuid, at: Timestamp, reason: &str) -> Result<bool> {
        oauth::revoke_grant(&self.db, id, at, reason).await
    }

    async fn revoke_oauth_grants_of_user(
        &self,
        user_id: Uuid,
        org_id: Option<Uuid>,
        at: Timestamp,
        reason: &str,
    ) -> Result<u64> {
        oauth::revoke_grants_of_user(&self.db, user_id, org_id, at, reason).await
    }

    async fn insert_authorization_code(&self, code: &AuthorizationCode) -> Result<()> {
        oauth::insert_code(&self.db, code).await
    }

    async fn consume_authorization_code(
        &self,
        code_hash: &str,
        now: Timestamp,
    ) -> Result<Option<CodeRedemption>> {
        oauth::consume_code(&self.db, code_hash, now).await
    }

    async fn insert_refresh_token(&self, token: &RefreshToken) -> Result<()> {
        oauth::insert_refresh(&self.db, token).await
    }

    async fn use_refresh_token(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<RefreshRedemption>> {
        oauth::use_refresh(&self.db, token_hash, now).await
    }

    async fn find_refresh_token(&self, token_hash: &str) -> Result<Option<RefreshToken>> {
        oauth::find_refresh(&self.db, token_hash).await
    }

    async fn revoke_refresh_family(&self, family_id: Uuid, at: Timestamp) -> Result<u64> {
        oauth::revoke_family(&self.db, family_id, at).await
    }

    async fn revoke_refresh_tokens_of_grant(&self, grant_id: Uuid, at: Timestamp) -> Result<u64> {
        oauth::revoke_refresh_of_grant(&self.db, grant_id, at).await
    }

    async fn is_refresh_family_live(&self, family_id: Uuid) -> Result<bool> {
        oauth::is_family_live(&self.db, family_id).await
    }

    async fn revoke_access_token(&self, jti: &str, expires_at: Timestamp) -> Result<()> {
        oauth::revoke_access_token(&self.db, jti, expires_at).await
    }

    async fn is_access_token_revoked(&self, jti: &str) -> Result<bool> {
        oauth::is_access_token_revoked(&self.db, jti).await
    }

    async fn purge_revoked_access_tokens(&self, now: Timestamp) -> Result<u64> {
        oauth::purge_revoked_access_tokens(&self.db, now).await
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<()> {
        oauth::insert_signing_key(&self.db, key).await
    }

    async fn list_signing_keys(&self, retired_after: Timestamp) -> Result<Vec<SigningKeyRecord>> {
        oauth::list_signing_keys(&self.db, retired_after).await
    }

    async fn retire_signing_key(&self, kid: &str, at: Timestamp) -> Result<bool> {
        oauth::retire_signing_key(&self.db, kid, at).await
    }

    async fn update_signing_key_private(&self, kid: &str, private: &[u8]) -> Result<bool> {
        oauth::update_signing_key_private(&self.db, kid, private).await
    }

    async fn insert_device_authorization(&self, auth: &DeviceAuthorization) -> Result<()> {
        oauth::insert_device(&self.db, auth).await
    }

    async fn get_device_authorization(
        &self,
        device_code_hash: &str,
    ) -> Result<Option<DeviceAuthorization>> {
        oauth::get_device(&self.db, device_code_hash).await
    }

    async fn find_pending_device_authorization(
        &self,
        user_code: &str,
        now: Timestamp,
    ) -> Result<Option<DeviceAuthorization>> {
        oauth::find_pending_device(&self.db, user_code, now).await
    }

    async fn set_device_status(
        &self,
        device_code_hash: &str,
        status: DeviceStatus,
    ) -> Result<bool> {
        oauth::set_device_status(&self.db, device_code_hash, status).await
    }

    async fn record_device_poll(
        &self,
        device_code_hash: &str,
        now: Timestamp,
    ) -> Result<Option<DeviceAuthorization>> {
        oauth::record_device_poll(&self.db, device_code_hash, now).await
    }

    async fn purge_expired_device_authorizations(&self, now: Timestamp) -> Result<u64> {
        oauth::purge_expired_devices(&self.db, now).await
    }

    async fn set_device_interval(
        &self,
        device_code_hash: &str,
        interval_secs: u32,
    ) -> Result<bool> {
        oauth::set_device_interval(&self.db, device_code_hash, interval_secs).await
    }

    async fn take_approved_device_authorization(&self, device_code_hash: &str) -> Result<bool> {
        oauth::take_approved_device(&self.db, device_code_hash).await
    }

    async fn purge_expired_authorization_codes(&self, now: Timestamp) -> Result<u64> {
        oauth::purge_expired_codes(&self.db, now).await
    }

    async fn insert_browser_session(&self, session: &BrowserSessionRecord) -> Result<()> {
        oauth::insert_session(&self.db, session).await
    }

    async fn find_browser_session(
        &self,
        secret_hash: &str,
        now: Timestamp,
    ) -> Result<Option<BrowserSessionRecord>> {
        oauth::find_session(&self.db, secret_hash, now).await
    }

    async fn delete_browser_session(&self, secret_hash: &str) -> Result<bool> {
        oauth::delete_session(&self.db, secret_hash).await
    }

    async fn purge_expired_browser_sessions(&self, now: Timestamp) -> Result<u64> {
        oauth::purge_expired_sessions(&self.db, now).await
    }
}
