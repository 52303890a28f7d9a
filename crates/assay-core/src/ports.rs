//! Ports: the traits through which the control plane reaches storage, executors and
//! files, and through which every front end (REST, MCP, CLI) reaches the control plane.

use crate::Timestamp;
use crate::actor::Actor;
use crate::audit::AuditEvent;
use crate::error::Result;
use crate::execution::*;
use crate::identity::{ApiTokenRecord, Membership, User};
use crate::page::{Page, PageRequest};
use crate::tenancy::{EnvRef, Environment, Organization};
use crate::workflow::*;
use async_trait::async_trait;
use futures::stream::BoxStream;
use std::collections::{BTreeMap, BTreeSet};
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
    async fn find_api_token_by_hash(&self, secret_hash: &str) -> Result<Option<ApiTokenRecord>>;

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
}

/// Turns a bearer credential into a principal (API tokens now; JWTs with the OAuth issue).
/// Failures are `Unauthenticated` with a reason fit for the caller, and are audited.
#[async_trait]
pub trait Authenticator: Send + Sync {
    async fn authenticate(
        &self,
        bearer: &str,
        client: &crate::actor::ClientInfo,
    ) -> Result<crate::actor::Principal>;
}
