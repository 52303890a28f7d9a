//! Ports: the traits through which the control plane reaches storage, executors and
//! files, and through which every front end (REST, MCP, CLI) reaches the control plane.

use crate::Timestamp;
use crate::actor::Actor;
use crate::audit::{
    ActorActivity, AuditCheckpoint, AuditEvent, AuditFilter, AuditSettings, AuditVerifyReport,
};
use crate::error::Result;
use crate::execution::*;
use crate::identity::{
    ApiTokenInfo, ApiTokenRecord, CreatedApiToken, Identity, MemberInfo, MemberUpdate, Membership,
    NewApiToken, NewMember, User,
};
use crate::oauth::GrantInfo;
use crate::oauth::{
    AuthorizationCode, BrowserSessionRecord, CodeRedemption, DeviceAuthorization, DeviceStatus,
    OAuthClient, OAuthGrant, RefreshRedemption, RefreshToken, SigningKeyRecord,
};
use crate::page::{Page, PageRequest};
use crate::tenancy::{EnvRef, Environment, Organization};
use crate::workflow::*;
use async_trait::async_trait;
use futures::stream::BoxStream;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Wall-clock time, injectable so retention and expiry can be tested.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        time::OffsetDateTime::now_utc()
    }
}

/// Persistence. Implemented for SQLite and PostgreSQL by `assay-store`; both pass one
/// contract suite. Errors: `NotFound`/`Conflict` where stated, `Unavailable` when the
/// database cannot be reached, `Internal` otherwise.
#[async_trait]
pub trait Store: Send + Sync {
    // --- tenancy -------------------------------------------------------------------
    /// `Conflict` when the slug is taken.
    async fn insert_org(&self, org: &Organization) -> Result<()>;
    async fn find_org(&self, id_or_slug: &str) -> Result<Option<Organization>>;
    async fn list_orgs(&self) -> Result<Vec<Organization>>;
    /// `Conflict` when the slug is taken within the organization.
    async fn insert_env(&self, env: &Environment) -> Result<()>;
    async fn find_env(&self, org_id: Uuid, id_or_slug: &str) -> Result<Option<Environment>>;
    async fn list_envs(&self, org_id: Uuid) -> Result<Vec<Environment>>;

    // --- identity ------------------------------------------------------------------
    /// `Conflict` when the email is taken.
    async fn insert_user(&self, user: &User) -> Result<()>;
    async fn find_user(&self, id: Uuid) -> Result<Option<User>>;
    async fn find_user_by_email(&self, email: &str) -> Result<Option<User>>;
    async fn upsert_membership(&self, membership: &Membership) -> Result<()>;
    async fn find_membership(&self, org_id: Uuid, user_id: Uuid) -> Result<Option<Membership>>;
    /// `Conflict` when the hash exists.
    async fn insert_api_token(&self, token: &ApiTokenRecord) -> Result<()>;
    /// Matches the current secret hash, or `previous_secret_hash` (the caller checks
    /// `previous_valid_until`).
    async fn find_api_token_by_hash(&self, secret_hash: &str) -> Result<Option<ApiTokenRecord>>;
    /// `NotFound` if absent; `Conflict` if the email is taken by another user.
    async fn update_user(&self, user: &User) -> Result<()>;
    async fn list_memberships(&self, org_id: Uuid) -> Result<Vec<Membership>>;
    /// Every organization the user belongs to, ordered by organization ID.
    async fn list_memberships_of_user(&self, user_id: Uuid) -> Result<Vec<Membership>>;
    /// Returns whether a membership was removed.
    async fn delete_membership(&self, org_id: Uuid, user_id: Uuid) -> Result<bool>;
    /// Every token of the organization, newest first.
    async fn list_api_tokens(&self, org_id: Uuid) -> Result<Vec<ApiTokenRecord>>;
    async fn get_api_token(&self, org_id: Uuid, id: Uuid) -> Result<Option<ApiTokenRecord>>;
    /// Replaces every mutable field (name, description, grants, secret hashes, expiry,
    /// revocation, last use) of (org, id); `NotFound` if absent.
    async fn update_api_token(&self, token: &ApiTokenRecord) -> Result<()>;
    /// Records last use for many tokens at once (batched by the authenticator):
    /// (token id, time, client IP). Unknown IDs are ignored; never moves last use backwards.
    async fn record_token_usage(&self, usages: &[(Uuid, Timestamp, Option<String>)]) -> Result<()>;
    /// Revokes every unrevoked token the user created in the organization; returns how many.
    async fn revoke_api_tokens_created_by(
        &self,
        org_id: Uuid,
        user_id: Uuid,
        at: Timestamp,
    ) -> Result<u64>;
    /// Sets the organization's audit retention (days ≥ 1); `NotFound` if absent.
    async fn set_audit_retention_days(&self, org_id: Uuid, days: u32) -> Result<()>;

    // --- workflows and templates ---------------------------------------------------
    /// `Conflict` when (env, kind, name) exists.
    async fn insert_resource(&self, record: &WorkflowRecord) -> Result<()>;
    /// Replaces source, description, labels, updated_at of (env, kind, name); `NotFound` if absent.
    async fn update_resource(&self, record: &WorkflowRecord) -> Result<()>;
    /// Returns whether something was deleted.
    async fn delete_resource(&self, env_id: Uuid, kind: ResourceKind, name: &str) -> Result<bool>;
    async fn get_resource(
        &self,
        env_id: Uuid,
        kind: ResourceKind,
        name: &str,
    ) -> Result<Option<WorkflowRecord>>;
    /// Ordered by name.
    async fn list_resources(
        &self,
        env_id: Uuid,
        kind: ResourceKind,
        filter: &WorkflowFilter,
        page: &PageRequest,
    ) -> Result<Page<WorkflowRecord>>;
    /// Distinct label keys and their values across the environment's workflows.
    async fn label_values(&self, env_id: Uuid) -> Result<BTreeMap<String, BTreeSet<String>>>;

    // --- executions ----------------------------------------------------------------
    /// Assigns `number` (next for the workflow, starting at 1) and `name`
    /// (`<workflow>-<number>`) atomically, then stores the execution.
    async fn insert_execution(&self, execution: &mut Execution) -> Result<()>;
    /// Replaces the mutable fields (status, timestamps, steps, junit, error, tags, runner).
    async fn update_execution(&self, execution: &Execution) -> Result<()>;
    /// By ID or by name.
    async fn get_execution(&self, env_id: Uuid, id_or_name: &str) -> Result<Option<Execution>>;
    /// Newest first.
    async fn list_executions(
        &self,
        env_id: Uuid,
        filter: &ExecutionFilter,
        page: &PageRequest,
    ) -> Result<Page<ExecutionSummary>>;
    /// Every execution in one of `statuses`, in any environment, oldest first
    /// (start-up recovery and the queue).
    async fn executions_with_status(&self, statuses: &[ExecutionStatus]) -> Result<Vec<Execution>>;
    /// The last `limit` executions of a workflow, newest first.
    async fn recent_executions(
        &self,
        workflow_id: Uuid,
        limit: u32,
    ) -> Result<Vec<ExecutionSummary>>;
    /// [`Store::recent_executions`] for many workflows of one environment at once (one
    /// round trip for a page of workflows): at most `per_workflow` per workflow, newest
    /// first. Workflows without executions, and IDs of another environment, are absent.
    async fn recent_executions_for_workflows(
        &self,
        env_id: Uuid,
        workflow_ids: &[Uuid],
        per_workflow: u32,
    ) -> Result<HashMap<Uuid, Vec<ExecutionSummary>>>;
    async fn insert_resource_samples(
        &self,
        execution_id: Uuid,
        step: &str,
        samples: &[ResourceSample],
    ) -> Result<()>;
    /// (step, sample) in time order.
    async fn resource_samples(&self, execution_id: Uuid) -> Result<Vec<(String, ResourceSample)>>;

    // --- audit -----------------------------------------------------------------------
    /// Appends to the organization's chain, assigning `seq`, `prev_hash` and `hash`
    /// in one transaction. Durable when this returns.
    async fn append_audit(&self, event: &mut AuditEvent) -> Result<()>;
    /// Events of an organization in chain order, from `after_seq` (exclusive).
    async fn audit_events(
        &self,
        org_id: Uuid,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<AuditEvent>>;
    /// Group commit: appends many events (any organizations) in ONE transaction, assigning
    /// each its chain position in slice order. All or nothing.
    async fn append_audit_batch(&self, events: &mut [AuditEvent]) -> Result<()>;
    /// Filtered events of an organization in chain order after `after_seq` (for export:
    /// callers page by the last seq they saw). Uses indexes on (org, seq), (org, time).
    async fn query_audit(
        &self,
        org_id: Uuid,
        filter: &AuditFilter,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<AuditEvent>>;
    /// Retention: deletes the organization's events with `time < before` that form a prefix
    /// of the chain (stops at the first newer event), and in the same transaction records a
    /// checkpoint (seq and hash of the last deleted event). `None` when nothing was purged.
    async fn purge_audit_before(
        &self,
        org_id: Uuid,
        before: Timestamp,
        now: Timestamp,
    ) -> Result<Option<AuditCheckpoint>>;
    /// The latest retention checkpoint of the organization.
    async fn audit_checkpoint(&self, org_id: Uuid) -> Result<Option<AuditCheckpoint>>;
    /// The chain head the store keeps apart from the events: (seq, hash) of the last
    /// appended event, so verification notices events deleted from the end.
    async fn audit_head(&self, org_id: Uuid) -> Result<Option<(i64, String)>>;
    /// Distinct actors with events in [since, until], with counts and first/last seen.
    async fn audit_actors(
        &self,
        org_id: Uuid,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<ActorActivity>>;

    // --- OAuth 2.1 authorization server (issue 5) -----------------------------------
    // Secrets are looked up by their hex SHA-256 only. The redeeming operations
    // (`consume_authorization_code`, `use_refresh_token`, `record_device_poll`) are
    // atomic: of two concurrent callers exactly one sees the first use.

    /// `Conflict` when the client ID is taken.
    async fn insert_oauth_client(&self, client: &OAuthClient) -> Result<()>;
    async fn get_oauth_client(&self, id: &str) -> Result<Option<OAuthClient>>;
    /// Records a use (never moves `last_used_at` backwards). `false` when no such client.
    async fn touch_oauth_client(&self, id: &str, at: Timestamp) -> Result<bool>;
    /// Deletes clients whose `expires_at` is at or before `now` and that were never used
    /// (no `last_used_at`, no grant, no device authorization). Returns how many.
    async fn delete_expired_oauth_clients(&self, now: Timestamp) -> Result<u64>;

    /// Records consent: inserts `grant`, or, when a live grant for the same (user,
    /// client, resource) exists, replaces that grant's scope (keeping its ID, org and
    /// creation time). Returns the grant as stored. `Conflict` when the user, org or
    /// client does not exist.
    async fn upsert_oauth_grant(&self, grant: &OAuthGrant) -> Result<OAuthGrant>;
    async fn get_oauth_grant(&self, id: Uuid) -> Result<Option<OAuthGrant>>;
    /// The user's live grants, newest first.
    async fn list_oauth_grants(&self, user_id: Uuid) -> Result<Vec<OAuthGrant>>;
    /// Revokes a live grant and, in the same transaction, its refresh tokens. `false`
    /// when there is no such live grant.
    async fn revoke_oauth_grant(&self, id: Uuid, at: Timestamp, reason: &str) -> Result<bool>;
    /// Revokes every live grant of the user (in `org_id` only, when given: a removed
    /// membership) and their refresh tokens. Returns how many grants.
    async fn revoke_oauth_grants_of_user(
        &self,
        user_id: Uuid,
        org_id: Option<Uuid>,
        at: Timestamp,
        reason: &str,
    ) -> Result<u64>;

    /// `Conflict` when the hash exists or the grant does not.
    async fn insert_authorization_code(&self, code: &AuthorizationCode) -> Result<()>;
    /// Consumes the code if it is live at `now`; `None` when unknown.
    async fn consume_authorization_code(
        &self,
        code_hash: &str,
        now: Timestamp,
    ) -> Result<Option<CodeRedemption>>;

    /// `Conflict` when the hash exists or the grant does not.
    async fn insert_refresh_token(&self, token: &RefreshToken) -> Result<()>;
    /// Marks the token used if it is live at `now`; `None` when unknown.
    async fn use_refresh_token(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<RefreshRedemption>>;
    /// The token as stored, without using it (revocation must not make a later
    /// presentation look like reuse).
    async fn find_refresh_token(&self, token_hash: &str) -> Result<Option<RefreshToken>>;
    /// Revokes the family's unrevoked tokens; returns how many.
    async fn revoke_refresh_family(&self, family_id: Uuid, at: Timestamp) -> Result<u64>;
    /// Revokes the grant's unrevoked refresh tokens; returns how many.
    async fn revoke_refresh_tokens_of_grant(&self, grant_id: Uuid, at: Timestamp) -> Result<u64>;
    /// Whether the family (one sign-in session) still has a token that is not revoked.
    /// Revoking a family, its grant or its user's grants marks every token of it
    /// revoked; rotation and expiry revoke nothing. `false` for an unknown family.
    async fn is_refresh_family_live(&self, family_id: Uuid) -> Result<bool>;
    /// Denies an access token (by `jti`) until it would expire anyway. Idempotent.
    async fn revoke_access_token(&self, jti: &str, expires_at: Timestamp) -> Result<()>;
    async fn is_access_token_revoked(&self, jti: &str) -> Result<bool>;
    /// Forgets denied tokens that expired at or before `now`; returns how many.
    async fn purge_revoked_access_tokens(&self, now: Timestamp) -> Result<u64>;

    /// `Conflict` when the kid is taken.
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<()>;
    /// Keys not retired, or retired after `retired_after` (so tokens signed by the
    /// previous key still verify), newest first: the JWKS, current key first.
    async fn list_signing_keys(&self, retired_after: Timestamp) -> Result<Vec<SigningKeyRecord>>;
    /// `false` when no such unretired key.
    async fn retire_signing_key(&self, kid: &str, at: Timestamp) -> Result<bool>;
    /// Replaces a key's stored private half (re-sealing a key written before sealing
    /// existed); `false` when no such key.
    async fn update_signing_key_private(&self, kid: &str, private: &[u8]) -> Result<bool>;

    /// `Conflict` when the device code hash exists, or the user code is already held by
    /// a pending authorization (the caller draws another).
    async fn insert_device_authorization(&self, auth: &DeviceAuthorization) -> Result<()>;
    async fn get_device_authorization(
        &self,
        device_code_hash: &str,
    ) -> Result<Option<DeviceAuthorization>>;
    /// The pending authorization holding `user_code` that is unexpired at `now`.
    async fn find_pending_device_authorization(
        &self,
        user_code: &str,
        now: Timestamp,
    ) -> Result<Option<DeviceAuthorization>>;
    /// Moves a pending authorization to `status` (approved or denied), once. `false` when
    /// it is unknown or no longer pending.
    async fn set_device_status(&self, device_code_hash: &str, status: DeviceStatus)
    -> Result<bool>;
    /// Records a poll at `now` and returns the authorization as it was before it (its
    /// previous `last_poll_at` tells the caller whether to answer `slow_down`).
    async fn record_device_poll(
        &self,
        device_code_hash: &str,
        now: Timestamp,
    ) -> Result<Option<DeviceAuthorization>>;
    /// Deletes device authorizations that expired at or before `now`; returns how many.
    async fn purge_expired_device_authorizations(&self, now: Timestamp) -> Result<u64>;
    /// Sets the minimum poll interval of a pending authorization (RFC 8628 `slow_down`
    /// raises it for good). `false` when it is unknown or no longer pending.
    async fn set_device_interval(&self, device_code_hash: &str, interval_secs: u32)
    -> Result<bool>;
    /// Deletes an approved authorization so its tokens are issued once: of concurrent
    /// callers exactly one gets `true`. `false` when unknown or not approved.
    async fn take_approved_device_authorization(&self, device_code_hash: &str) -> Result<bool>;
    /// Deletes authorization codes that expired at or before `now` (consumed or not);
    /// returns how many.
    async fn purge_expired_authorization_codes(&self, now: Timestamp) -> Result<u64>;

    /// `Conflict` when the hash exists; `Conflict` when the user does not.
    async fn insert_browser_session(&self, session: &BrowserSessionRecord) -> Result<()>;
    /// The session with this secret hash that is unexpired at `now`.
    async fn find_browser_session(
        &self,
        secret_hash: &str,
        now: Timestamp,
    ) -> Result<Option<BrowserSessionRecord>>;
    /// `false` when no such session.
    async fn delete_browser_session(&self, secret_hash: &str) -> Result<bool>;
    /// Deletes sessions that expired at or before `now`; returns how many.
    async fn purge_expired_browser_sessions(&self, now: Timestamp) -> Result<u64>;
}

/// What an executor is told to run.
#[derive(Debug, Clone)]
pub struct ExecutionJob {
    pub execution_id: Uuid,
    pub env_id: Uuid,
    pub execution_name: String,
    pub plan: ExecutionPlan,
}

/// How an execution ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionOutcome {
    pub status: ExecutionStatus,
    pub steps: Vec<StepResult>,
    pub junit: Option<JunitSummary>,
    pub error: Option<String>,
}

/// Receives progress while an executor runs a job.
#[async_trait]
pub trait ExecutionObserver: Send + Sync {
    /// The full list of step results so far, after any step changed state.
    async fn steps_changed(&self, steps: &[StepResult]);
    /// Resource samples of a step's process tree.
    async fn resource_samples(&self, step: &str, samples: &[ResourceSample]);
}

/// Runs plans: local processes by default, Kubernetes Jobs at scale.
#[async_trait]
pub trait Executor: Send + Sync {
    fn runner(&self) -> RunnerInfo;
    /// Runs the job to completion. Cancelling `cancel` aborts it (status `aborted`), killing
    /// every process it started. Never panics on job content; failures become outcomes.
    async fn execute(
        &self,
        job: ExecutionJob,
        observer: Arc<dyn ExecutionObserver>,
        cancel: CancellationToken,
    ) -> ExecutionOutcome;
    /// Stops whatever an earlier server process left running for this execution when it
    /// died (orphaned step processes). Called by start-up recovery; returns how many
    /// process groups were stopped.
    async fn reap_orphans(&self, execution_id: Uuid) -> usize {
        let _ = execution_id;
        0
    }
}

/// Logs and artifacts of executions. The executor writes them; the control plane reads
/// them through this port. Nothing here loads a whole log or artifact into memory.
#[async_trait]
pub trait ExecutionFiles: Send + Sync {
    async fn read_logs(&self, execution_id: Uuid, query: &LogQuery) -> Result<LogPage>;
    /// Lines numbered above `after_line` (optionally of one step), as they are written;
    /// the stream ends once the execution's log is closed.
    fn follow_logs(
        &self,
        execution_id: Uuid,
        step: Option<String>,
        after_line: u64,
    ) -> BoxStream<'static, Result<LogLine>>;
    /// Marks the log finished (followers end). Idempotent; used by recovery too.
    async fn close_logs(&self, execution_id: Uuid) -> Result<()>;
    async fn list_artifacts(&self, execution_id: Uuid) -> Result<Vec<Artifact>>;
    /// `path` is untrusted: traversal in any spelling is `NotFound`/`Invalid`, never a read.
    async fn read_artifact(
        &self,
        execution_id: Uuid,
        path: &str,
        query: &ArtifactQuery,
    ) -> Result<ArtifactContent>;
    /// Raw bytes for download, in chunks.
    async fn open_artifact(
        &self,
        execution_id: Uuid,
        path: &str,
    ) -> Result<(Artifact, BoxStream<'static, Result<Vec<u8>>>)>;
    /// Removes everything kept for the execution (retention).
    async fn remove(&self, execution_id: Uuid) -> Result<()>;
    /// Execution workspaces on disk with their last modification time (workspace retention).
    async fn workspaces(&self) -> Result<Vec<(Uuid, Timestamp)>>;
    /// Removes an execution's workspace only; logs and artifacts stay.
    async fn remove_workspace(&self, execution_id: Uuid) -> Result<()>;
}

/// Everything a user can cause. Implemented once by `LocalControlPlane` (authorize →
/// act → audit) and remotely by `assay-client` over REST.
#[async_trait]
pub trait ControlPlane: Send + Sync {
    // workflows
    async fn list_workflows(
        &self,
        actor: &Actor,
        env: &EnvRef,
        filter: &WorkflowFilter,
        page: &PageRequest,
    ) -> Result<Page<WorkflowSummary>>;
    async fn get_workflow(&self, actor: &Actor, env: &EnvRef, name: &str)
    -> Result<WorkflowDetail>;
    async fn create_workflow(
        &self,
        actor: &Actor,
        env: &EnvRef,
        source: &str,
    ) -> Result<WorkflowDetail>;
    /// The document's name must equal `name` (renames are delete + create).
    async fn update_workflow(
        &self,
        actor: &Actor,
        env: &EnvRef,
        name: &str,
        source: &str,
    ) -> Result<WorkflowDetail>;
    /// Create or update by the document's own name.
    async fn apply_workflow(
        &self,
        actor: &Actor,
        env: &EnvRef,
        source: &str,
    ) -> Result<ApplyResult>;
    async fn delete_workflow(&self, actor: &Actor, env: &EnvRef, name: &str) -> Result<()>;

    // templates
    async fn list_templates(
        &self,
        actor: &Actor,
        env: &EnvRef,
        filter: &WorkflowFilter,
        page: &PageRequest,
    ) -> Result<Page<WorkflowSummary>>;
    async fn get_template(&self, actor: &Actor, env: &EnvRef, name: &str)
    -> Result<WorkflowDetail>;
    async fn create_template(
        &self,
        actor: &Actor,
        env: &EnvRef,
        source: &str,
    ) -> Result<WorkflowDetail>;
    async fn update_template(
        &self,
        actor: &Actor,
        env: &EnvRef,
        name: &str,
        source: &str,
    ) -> Result<WorkflowDetail>;
    async fn apply_template(
        &self,
        actor: &Actor,
        env: &EnvRef,
        source: &str,
    ) -> Result<ApplyResult>;
    async fn delete_template(&self, actor: &Actor, env: &EnvRef, name: &str) -> Result<()>;

    // executions
    async fn run_workflow(
        &self,
        actor: &Actor,
        env: &EnvRef,
        workflow: &str,
        request: &RunRequest,
    ) -> Result<Execution>;
    async fn list_executions(
        &self,
        actor: &Actor,
        env: &EnvRef,
        filter: &ExecutionFilter,
        page: &PageRequest,
    ) -> Result<Page<ExecutionSummary>>;
    /// By ID or name.
    async fn get_execution(
        &self,
        actor: &Actor,
        env: &EnvRef,
        execution: &str,
    ) -> Result<Execution>;
    /// Waits, event-driven, until the execution reaches a terminal status or `timeout`
    /// passes, and returns it as it is then (check `status`).
    async fn wait_for_execution(
        &self,
        actor: &Actor,
        env: &EnvRef,
        execution: &str,
        timeout: std::time::Duration,
    ) -> Result<Execution>;
    async fn abort_execution(
        &self,
        actor: &Actor,
        env: &EnvRef,
        execution: &str,
    ) -> Result<Execution>;
    /// Replaces the execution's tags.
    async fn update_execution_tags(
        &self,
        actor: &Actor,
        env: &EnvRef,
        execution: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<Execution>;
    async fn execution_logs(
        &self,
        actor: &Actor,
        env: &EnvRef,
        execution: &str,
        query: &LogQuery,
    ) -> Result<LogPage>;
    /// Live lines after `after_line`, ending when the execution finishes.
    async fn follow_execution_logs(
        &self,
        actor: &Actor,
        env: &EnvRef,
        execution: &str,
        step: Option<String>,
        after_line: u64,
    ) -> Result<BoxStream<'static, Result<LogLine>>>;
    async fn list_artifacts(
        &self,
        actor: &Actor,
        env: &EnvRef,
        execution: &str,
    ) -> Result<Vec<Artifact>>;
    async fn read_artifact(
        &self,
        actor: &Actor,
        env: &EnvRef,
        execution: &str,
        path: &str,
        query: &ArtifactQuery,
    ) -> Result<ArtifactContent>;
    async fn download_artifact(
        &self,
        actor: &Actor,
        env: &EnvRef,
        execution: &str,
        path: &str,
    ) -> Result<(Artifact, BoxStream<'static, Result<Vec<u8>>>)>;

    // insight
    async fn workflow_metrics(
        &self,
        actor: &Actor,
        env: &EnvRef,
        workflow: &str,
        last_n: u32,
    ) -> Result<WorkflowMetrics>;
    async fn execution_metrics(
        &self,
        actor: &Actor,
        env: &EnvRef,
        execution: &str,
    ) -> Result<ExecutionMetrics>;
    async fn resource_history(
        &self,
        actor: &Actor,
        env: &EnvRef,
        workflow: &str,
        last_n: u32,
    ) -> Result<Vec<ResourceHistoryEntry>>;
    async fn list_labels(
        &self,
        actor: &Actor,
        env: &EnvRef,
    ) -> Result<BTreeMap<String, BTreeSet<String>>>;
    async fn list_runners(&self, actor: &Actor, env: &EnvRef) -> Result<Vec<RunnerInfo>>;

    // --- the caller ----------------------------------------------------------------
    /// Who the actor is and, per organization it belongs to, its role, principal and the
    /// environments it can reach with their levels. A user authenticated by a JWT sees
    /// every organization they are a member of; an API token, its own. Audited as
    /// `identity.whoami` in each listed organization's chain.
    async fn whoami(&self, actor: &Actor) -> Result<Identity>;

    // --- organization: members (org admins) -----------------------------------------
    // `org` is an organization ID or slug. An organization the actor does not belong to
    // is `NotFound`, like a missing one.
    async fn list_members(&self, actor: &Actor, org: &str) -> Result<Vec<MemberInfo>>;
    async fn add_member(&self, actor: &Actor, org: &str, member: &NewMember) -> Result<MemberInfo>;
    /// `user` is a user ID or email.
    async fn update_member(
        &self,
        actor: &Actor,
        org: &str,
        user: &str,
        update: &MemberUpdate,
    ) -> Result<MemberInfo>;
    /// Ends every token and grant of the user in the organization at once.
    async fn remove_member(&self, actor: &Actor, org: &str, user: &str) -> Result<()>;

    // --- organization: API tokens ---------------------------------------------------
    // Anyone may manage their own tokens, never with more power than they have; org
    // admins manage everyone's.
    async fn create_api_token(
        &self,
        actor: &Actor,
        org: &str,
        request: &NewApiToken,
    ) -> Result<CreatedApiToken>;
    /// Admins see every token; others see their own.
    async fn list_api_tokens(&self, actor: &Actor, org: &str) -> Result<Vec<ApiTokenInfo>>;
    async fn get_api_token(&self, actor: &Actor, org: &str, id: Uuid) -> Result<ApiTokenInfo>;
    /// New secret; the old one stops at once, or after `grace_secs` (≤ 24 h).
    async fn rotate_api_token(
        &self,
        actor: &Actor,
        org: &str,
        id: Uuid,
        grace_secs: Option<u64>,
    ) -> Result<CreatedApiToken>;
    async fn revoke_api_token(&self, actor: &Actor, org: &str, id: Uuid) -> Result<ApiTokenInfo>;

    // --- the caller's own OAuth grants (users only) -----------------------------------
    // What the user consented to, per client and resource, in the organization `org`. An
    // API token has no grants: `Refused`. Another user's grant, or one of another
    // organization, is `NotFound`, like a missing one.
    /// The caller's live grants in the organization, newest first.
    async fn list_my_grants(&self, actor: &Actor, org: &str) -> Result<Vec<GrantInfo>>;
    /// Revokes one of the caller's grants, its refresh tokens and (through the `gid`
    /// claim) its access tokens.
    async fn revoke_my_grant(&self, actor: &Actor, org: &str, id: Uuid) -> Result<()>;

    // --- organization: audit (org admins) --------------------------------------------
    /// Streams matching events in chain order with bounded memory.
    async fn export_audit(
        &self,
        actor: &Actor,
        org: &str,
        filter: &AuditFilter,
    ) -> Result<BoxStream<'static, Result<AuditEvent>>>;
    /// Walks the whole chain (from the retention checkpoint) and reports the first break.
    async fn verify_audit(&self, actor: &Actor, org: &str) -> Result<AuditVerifyReport>;
    /// Distinct users and tokens active in [since, until] (seat tracking).
    async fn audit_actors(
        &self,
        actor: &Actor,
        org: &str,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<ActorActivity>>;
    async fn audit_settings(&self, actor: &Actor, org: &str) -> Result<AuditSettings>;
    /// Minimum 1 day.
    async fn set_audit_settings(
        &self,
        actor: &Actor,
        org: &str,
        settings: &AuditSettings,
    ) -> Result<AuditSettings>;
}

/// Turns a bearer credential into a principal (API tokens now; JWTs with the OAuth issue).
/// Failures are `Unauthenticated` with a reason fit for the caller, and are audited.
#[async_trait]
pub trait Authenticator: Send + Sync {
    /// `org` is the organization (ID or slug) the request addresses, when its URL names one:
    /// a credential of another organization is `Unauthenticated`, and failures are audited
    /// into that organization's chain (or into the unscoped chain, org ID nil, when no
    /// organization can be attributed). Without one (the route names none, or its `{org}`
    /// could not be read) an OAuth access token is `Unauthenticated`: it acts only within an
    /// organization, except through [`Self::authenticate_orgless`].
    async fn authenticate(
        &self,
        bearer: &str,
        client: &crate::actor::ClientInfo,
        org: Option<&str>,
    ) -> Result<crate::actor::Principal>;

    /// [`Self::authenticate`] for a request to an MCP endpoint: `resource` is that
    /// endpoint's resource URL (RFC 8707), which an OAuth access token may name as its
    /// audience besides the server's base resource. API tokens ignore it.
    async fn authenticate_for_resource(
        &self,
        bearer: &str,
        client: &crate::actor::ClientInfo,
        org: Option<&str>,
        resource: Option<&str>,
    ) -> Result<crate::actor::Principal> {
        let _ = resource;
        self.authenticate(bearer, client, org).await
    }

    /// [`Self::authenticate`] at the one authenticated route that addresses no organization
    /// by design (`GET /v1/me`): an OAuth access token yields its user in no organization
    /// (org ID nil, no environment), which reaches nothing organization-scoped. The default
    /// is `authenticate` without an organization, which refuses access tokens: an
    /// implementor that accepts them here must say so.
    async fn authenticate_orgless(
        &self,
        bearer: &str,
        client: &crate::actor::ClientInfo,
    ) -> Result<crate::actor::Principal> {
        self.authenticate(bearer, client, None).await
    }
}
