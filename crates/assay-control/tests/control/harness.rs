//! `TestApp`: a LocalControlPlane over a SQLite file and the local executor in a temp dir,
//! with two organizations ("acme" with envs "dev" and "staging", "other" with "dev").

use assay_auth::key_seal::KeyEncryptionKey;
use assay_control::{ControlPlaneConfig, LocalControlPlane};
use assay_core::actor::{Access, Actor, AuthMethod, ClientInfo, Principal, PrincipalKind};
use assay_core::audit::{ActorActivity, AuditCheckpoint, AuditEvent, AuditFilter};
use assay_core::execution::*;
use assay_core::identity::{ApiTokenRecord, Membership, OrgRole, User};
use assay_core::oauth::{
    AuthorizationCode, BrowserSessionRecord, CodeRedemption, DeviceAuthorization, DeviceStatus,
    OAuthClient, OAuthGrant, RefreshRedemption, RefreshToken, SigningKeyRecord,
};
use assay_core::page::{Page, PageRequest};
use assay_core::ports::{Clock, ControlPlane, ExecutionFiles, Store};
use assay_core::workflow::*;
use assay_core::{EnvRef, Environment, Error, Level, Organization, Result, Timestamp};
use assay_exec::{FsExecutionFiles, LocalExecutor, LocalExecutorConfig};
use assay_store::SqliteStore;
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

/// Real time plus an adjustable offset, so "later" can be simulated.
#[derive(Default)]
pub struct FakeClock {
    offset: Mutex<time::Duration>,
}

impl FakeClock {
    pub fn advance(&self, by: Duration) {
        *self.offset.lock().unwrap() += time::Duration::try_from(by).unwrap();
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Timestamp {
        time::OffsetDateTime::now_utc() + *self.offset.lock().unwrap()
    }
}

/// A store that delegates everything but can be told to fail audit appends, and counts
/// the calls tests reason about.
pub struct SwitchableAudit {
    pub inner: Arc<dyn Store>,
    pub fail_audit: AtomicBool,
    /// Calls of `find_api_token_by_hash`, to prove what is rejected without a lookup.
    pub token_lookups: AtomicUsize,
    /// Calls of `record_token_usage`, and the entries they carried.
    pub usage_calls: AtomicUsize,
    pub usage_entries: AtomicUsize,
    /// Calls of `append_audit_batch`, and the events they carried.
    pub audit_batches: AtomicUsize,
    pub audit_batched_events: AtomicUsize,
    /// Sizes of the audit batches, in order.
    pub batch_sizes: Mutex<Vec<usize>>,
    /// Milliseconds each audit batch waits before it is written (a slow disk).
    pub audit_delay_ms: AtomicU64,
    /// Refuses execution updates: the process using this store is "dead" (crash tests
    /// keep the old plane alive; this stops it from writing after its death).
    pub frozen: AtomicBool,
}

#[async_trait]
impl Store for SwitchableAudit {
    async fn insert_org(&self, org: &Organization) -> Result<()> {
        self.inner.insert_org(org).await
    }
    async fn find_org(&self, id_or_slug: &str) -> Result<Option<Organization>> {
        self.inner.find_org(id_or_slug).await
    }
    async fn list_orgs(&self) -> Result<Vec<Organization>> {
        self.inner.list_orgs().await
    }
    async fn insert_env(&self, env: &Environment) -> Result<()> {
        self.inner.insert_env(env).await
    }
    async fn find_env(&self, org_id: Uuid, id_or_slug: &str) -> Result<Option<Environment>> {
        self.inner.find_env(org_id, id_or_slug).await
    }
    async fn list_envs(&self, org_id: Uuid) -> Result<Vec<Environment>> {
        self.inner.list_envs(org_id).await
    }
    async fn insert_user(&self, user: &User) -> Result<()> {
        self.inner.insert_user(user).await
    }
    async fn find_user(&self, id: Uuid) -> Result<Option<User>> {
        self.inner.find_user(id).await
    }
    async fn find_user_by_email(&self, email: &str) -> Result<Option<User>> {
        self.inner.find_user_by_email(email).await
    }
    async fn upsert_membership(&self, membership: &Membership) -> Result<()> {
        self.inner.upsert_membership(membership).await
    }
    async fn find_membership(&self, org_id: Uuid, user_id: Uuid) -> Result<Option<Membership>> {
        self.inner.find_membership(org_id, user_id).await
    }
    async fn insert_api_token(&self, token: &ApiTokenRecord) -> Result<()> {
        self.inner.insert_api_token(token).await
    }
    async fn find_api_token_by_hash(&self, secret_hash: &str) -> Result<Option<ApiTokenRecord>> {
        self.token_lookups.fetch_add(1, Ordering::SeqCst);
        self.inner.find_api_token_by_hash(secret_hash).await
    }
    async fn insert_resource(&self, record: &WorkflowRecord) -> Result<()> {
        self.inner.insert_resource(record).await
    }
    async fn update_resource(&self, record: &WorkflowRecord) -> Result<()> {
        self.inner.update_resource(record).await
    }
    async fn delete_resource(&self, env_id: Uuid, kind: ResourceKind, name: &str) -> Result<bool> {
        self.inner.delete_resource(env_id, kind, name).await
    }
    async fn get_resource(
        &self,
        env_id: Uuid,
        kind: ResourceKind,
        name: &str,
    ) -> Result<Option<WorkflowRecord>> {
        self.inner.get_resource(env_id, kind, name).await
    }
    async fn list_resources(
        &self,
        env_id: Uuid,
        kind: ResourceKind,
        filter: &WorkflowFilter,
        page: &PageRequest,
    ) -> Result<Page<WorkflowRecord>> {
        self.inner.list_resources(env_id, kind, filter, page).await
    }
    async fn label_values(&self, env_id: Uuid) -> Result<BTreeMap<String, BTreeSet<String>>> {
        self.inner.label_values(env_id).await
    }
    async fn insert_execution(&self, execution: &mut Execution) -> Result<()> {
        self.inner.insert_execution(execution).await
    }
    async fn update_execution(&self, execution: &Execution) -> Result<()> {
        if self.frozen.load(Ordering::SeqCst) {
            return Err(Error::Unavailable("this process is gone (test)".into()));
        }
        self.inner.update_execution(execution).await
    }
    async fn get_execution(&self, env_id: Uuid, id_or_name: &str) -> Result<Option<Execution>> {
        self.inner.get_execution(env_id, id_or_name).await
    }
    async fn list_executions(
        &self,
        env_id: Uuid,
        filter: &ExecutionFilter,
        page: &PageRequest,
    ) -> Result<Page<ExecutionSummary>> {
        self.inner.list_executions(env_id, filter, page).await
    }
    async fn executions_with_status(&self, statuses: &[ExecutionStatus]) -> Result<Vec<Execution>> {
        self.inner.executions_with_status(statuses).await
    }
    async fn recent_executions(
        &self,
        workflow_id: Uuid,
        limit: u32,
    ) -> Result<Vec<ExecutionSummary>> {
        self.inner.recent_executions(workflow_id, limit).await
    }
    async fn recent_executions_for_workflows(
        &self,
        env_id: Uuid,
        workflow_ids: &[Uuid],
        per_workflow: u32,
    ) -> Result<HashMap<Uuid, Vec<ExecutionSummary>>> {
        self.inner
            .recent_executions_for_workflows(env_id, workflow_ids, per_workflow)
            .await
    }
    async fn insert_resource_samples(
        &self,
        execution_id: Uuid,
        step: &str,
        samples: &[ResourceSample],
    ) -> Result<()> {
        self.inner
            .insert_resource_samples(execution_id, step, samples)
            .await
    }
    async fn resource_samples(&self, execution_id: Uuid) -> Result<Vec<(String, ResourceSample)>> {
        self.inner.resource_samples(execution_id).await
    }
    async fn append_audit(&self, event: &mut AuditEvent) -> Result<()> {
        if self.fail_audit.load(Ordering::SeqCst) {
            return Err(Error::Unavailable("database is locked (test)".into()));
        }
        self.inner.append_audit(event).await
    }
    async fn audit_events(
        &self,
        org_id: Uuid,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<AuditEvent>> {
        self.inner.audit_events(org_id, after_seq, limit).await
    }
    async fn update_user(&self, user: &User) -> Result<()> {
        self.inner.update_user(user).await
    }
    async fn list_memberships(&self, org_id: Uuid) -> Result<Vec<Membership>> {
        self.inner.list_memberships(org_id).await
    }
    async fn list_memberships_of_user(&self, user_id: Uuid) -> Result<Vec<Membership>> {
        self.inner.list_memberships_of_user(user_id).await
    }
    async fn delete_membership(&self, org_id: Uuid, user_id: Uuid) -> Result<bool> {
        self.inner.delete_membership(org_id, user_id).await
    }
    async fn list_api_tokens(&self, org_id: Uuid) -> Result<Vec<ApiTokenRecord>> {
        self.inner.list_api_tokens(org_id).await
    }
    async fn get_api_token(&self, org_id: Uuid, id: Uuid) -> Result<Option<ApiTokenRecord>> {
        self.inner.get_api_token(org_id, id).await
    }
    async fn update_api_token(&self, token: &ApiTokenRecord) -> Result<()> {
        self.inner.update_api_token(token).await
    }
    async fn record_token_usage(&self, usages: &[(Uuid, Timestamp, Option<String>)]) -> Result<()> {
        self.usage_calls.fetch_add(1, Ordering::SeqCst);
        self.usage_entries.fetch_add(usages.len(), Ordering::SeqCst);
        self.inner.record_token_usage(usages).await
    }
    async fn revoke_api_tokens_created_by(
        &self,
        org_id: Uuid,
        user_id: Uuid,
        at: Timestamp,
    ) -> Result<u64> {
        self.inner
            .revoke_api_tokens_created_by(org_id, user_id, at)
            .await
    }
    async fn set_audit_retention_days(&self, org_id: Uuid, days: u32) -> Result<()> {
        self.inner.set_audit_retention_days(org_id, days).await
    }
    async fn append_audit_batch(&self, events: &mut [AuditEvent]) -> Result<()> {
        if self.fail_audit.load(Ordering::SeqCst) {
            return Err(Error::Unavailable("database is locked (test)".into()));
        }
        self.audit_batches.fetch_add(1, Ordering::SeqCst);
        self.audit_batched_events
            .fetch_add(events.len(), Ordering::SeqCst);
        self.batch_sizes.lock().unwrap().push(events.len());
        let delay = self.audit_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        self.inner.append_audit_batch(events).await
    }
    async fn query_audit(
        &self,
        org_id: Uuid,
        filter: &AuditFilter,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<AuditEvent>> {
        self.inner
            .query_audit(org_id, filter, after_seq, limit)
            .await
    }
    async fn purge_audit_before(
        &self,
        org_id: Uuid,
        before: Timestamp,
        now: Timestamp,
    ) -> Result<Option<AuditCheckpoint>> {
        self.inner.purge_audit_before(org_id, before, now).await
    }
    async fn audit_checkpoint(&self, org_id: Uuid) -> Result<Option<AuditCheckpoint>> {
        self.inner.audit_checkpoint(org_id).await
    }
    async fn audit_head(&self, org_id: Uuid) -> Result<Option<(i64, String)>> {
        self.inner.audit_head(org_id).await
    }
    async fn audit_actors(
        &self,
        org_id: Uuid,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<ActorActivity>> {
        self.inner.audit_actors(org_id, since, until).await
    }

    // OAuth: plain delegation.
    async fn insert_oauth_client(&self, client: &OAuthClient) -> Result<()> {
        self.inner.insert_oauth_client(client).await
    }

    async fn get_oauth_client(&self, id: &str) -> Result<Option<OAuthClient>> {
        self.inner.get_oauth_client(id).await
    }

    async fn touch_oauth_client(&self, id: &str, at: Timestamp) -> Result<bool> {
        self.inner.touch_oauth_client(id, at).await
    }

    async fn delete_expired_oauth_clients(&self, now: Timestamp) -> Result<u64> {
        self.inner.delete_expired_oauth_clients(now).await
    }

    async fn upsert_oauth_grant(&self, grant: &OAuthGrant) -> Result<OAuthGrant> {
        self.inner.upsert_oauth_grant(grant).await
    }

    async fn get_oauth_grant(&self, id: Uuid) -> Result<Option<OAuthGrant>> {
        self.inner.get_oauth_grant(id).await
    }

    async fn list_oauth_grants(&self, user_id: Uuid) -> Result<Vec<OAuthGrant>> {
        self.inner.list_oauth_grants(user_id).await
    }

    async fn revoke_oauth_grant(&self, id: Uuid, at: Timestamp, reason: &str) -> Result<bool> {
        self.inner.revoke_oauth_grant(id, at, reason).await
    }

    async fn revoke_oauth_grants_of_user(
        &self,
        user_id: Uuid,
        org_id: Option<Uuid>,
        at: Timestamp,
        reason: &str,
    ) -> Result<u64> {
        self.inner
            .revoke_oauth_grants_of_user(user_id, org_id, at, reason)
            .await
    }

    async fn insert_authorization_code(&self, code: &AuthorizationCode) -> Result<()> {
        self.inner.insert_authorization_code(code).await
    }

    async fn consume_authorization_code(
        &self,
        code_hash: &str,
        now: Timestamp,
    ) -> Result<Option<CodeRedemption>> {
        self.inner.consume_authorization_code(code_hash, now).await
    }

    async fn insert_refresh_token(&self, token: &RefreshToken) -> Result<()> {
        self.inner.insert_refresh_token(token).await
    }

    async fn use_refresh_token(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<RefreshRedemption>> {
        self.inner.use_refresh_token(token_hash, now).await
    }

    async fn revoke_refresh_family(&self, family_id: Uuid, at: Timestamp) -> Result<u64> {
        self.inner.revoke_refresh_family(family_id, at).await
    }

    async fn revoke_refresh_tokens_of_grant(&self, grant_id: Uuid, at: Timestamp) -> Result<u64> {
        self.inner
            .revoke_refresh_tokens_of_grant(grant_id, at)
            .await
    }

    async fn revoke_access_token(&self, jti: &str, expires_at: Timestamp) -> Result<()> {
        self.inner.revoke_access_token(jti, expires_at).await
    }

    async fn find_refresh_token(&self, token_hash: &str) -> Result<Option<RefreshToken>> {
        self.inner.find_refresh_token(token_hash).await
    }

    async fn is_refresh_family_live(&self, family_id: Uuid) -> Result<bool> {
        self.inner.is_refresh_family_live(family_id).await
    }

    async fn is_access_token_revoked(&self, jti: &str) -> Result<bool> {
        self.inner.is_access_token_revoked(jti).await
    }

    async fn purge_revoked_access_tokens(&self, now: Timestamp) -> Result<u64> {
        self.inner.purge_revoked_access_tokens(now).await
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<()> {
        self.inner.insert_signing_key(key).await
    }

    async fn list_signing_keys(&self, retired_after: Timestamp) -> Result<Vec<SigningKeyRecord>> {
        self.inner.list_signing_keys(retired_after).await
    }

    async fn retire_signing_key(&self, kid: &str, at: Timestamp) -> Result<bool> {
        self.inner.retire_signing_key(kid, at).await
    }

    async fn update_signing_key_private(&self, kid: &str, private: &[u8]) -> Result<bool> {
        self.inner.update_signing_key_private(kid, private).await
    }

    async fn insert_device_authorization(&self, auth: &DeviceAuthorization) -> Result<()> {
        self.inner.insert_device_authorization(auth).await
    }

    async fn get_device_authorization(
        &self,
        device_code_hash: &str,
    ) -> Result<Option<DeviceAuthorization>> {
        self.inner.get_device_authorization(device_code_hash).await
    }

    async fn find_pending_device_authorization(
        &self,
        user_code: &str,
        now: Timestamp,
    ) -> Result<Option<DeviceAuthorization>> {
        self.inner
            .find_pending_device_authorization(user_code, now)
            .await
    }

    async fn set_device_status(
        &self,
        device_code_hash: &str,
        status: DeviceStatus,
    ) -> Result<bool> {
        self.inner.set_device_status(device_code_hash, status).await
    }

    async fn record_device_poll(
        &self,
        device_code_hash: &str,
        now: Timestamp,
    ) -> Result<Option<DeviceAuthorization>> {
        self.inner.record_device_poll(device_code_hash, now).await
    }

    async fn purge_expired_device_authorizations(&self, now: Timestamp) -> Result<u64> {
        self.inner.purge_expired_device_authorizations(now).await
    }

    async fn set_device_interval(
        &self,
        device_code_hash: &str,
        interval_secs: u32,
    ) -> Result<bool> {
        self.inner
            .set_device_interval(device_code_hash, interval_secs)
            .await
    }

    async fn take_approved_device_authorization(&self, device_code_hash: &str) -> Result<bool> {
        self.inner
            .take_approved_device_authorization(device_code_hash)
            .await
    }

    async fn purge_expired_authorization_codes(&self, now: Timestamp) -> Result<u64> {
        self.inner.purge_expired_authorization_codes(now).await
    }

    async fn insert_browser_session(&self, session: &BrowserSessionRecord) -> Result<()> {
        self.inner.insert_browser_session(session).await
    }

    async fn find_browser_session(
        &self,
        secret_hash: &str,
        now: Timestamp,
    ) -> Result<Option<BrowserSessionRecord>> {
        self.inner.find_browser_session(secret_hash, now).await
    }

    async fn delete_browser_session(&self, secret_hash: &str) -> Result<bool> {
        self.inner.delete_browser_session(secret_hash).await
    }

    async fn purge_expired_browser_sessions(&self, now: Timestamp) -> Result<u64> {
        self.inner.purge_expired_browser_sessions(now).await
    }
}

pub struct Tenancy {
    pub acme: Organization,
    pub dev: Environment,
    pub staging: Environment,
    pub other: Organization,
    pub other_dev: Environment,
}

pub struct TestApp {
    pub dir: tempfile::TempDir,
    pub store: Arc<SwitchableAudit>,
    pub files: Arc<FsExecutionFiles>,
    pub clock: Arc<FakeClock>,
    pub plane: Arc<LocalControlPlane>,
    pub config: ControlPlaneConfig,
    pub t: Tenancy,
}

pub fn config(concurrency: u32) -> ControlPlaneConfig {
    ControlPlaneConfig {
        concurrency,
        ..ControlPlaneConfig::default()
    }
}

impl TestApp {
    pub async fn start(concurrency: u32) -> Self {
        Self::start_with(config(concurrency)).await
    }

    pub async fn start_with(mut config: ControlPlaneConfig) -> Self {
        // One KEK for the life of the app, so `reopen` can open the keys it sealed.
        if config.key_encryption_key.is_none() {
            config.key_encryption_key = Some(KeyEncryptionKey::generate().unwrap());
        }
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path()).await;
        let t = seed(store.as_ref()).await;
        let clock = Arc::new(FakeClock::default());
        let (files, plane) = start_plane(dir.path(), store.clone(), clock.clone(), &config).await;
        Self {
            dir,
            store,
            files,
            clock,
            plane,
            config,
            t,
        }
    }

    /// Starts a new plane on the same files without shutting the old one down (simulates a
    /// crash: whatever the store says is what the new process finds).
    pub async fn reopen(&mut self) {
        self.store = open_store(self.dir.path()).await;
        let (files, plane) = start_plane(
            self.dir.path(),
            self.store.clone(),
            self.clock.clone(),
            &self.config,
        )
        .await;
        self.files = files;
        self.plane = plane;
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn dev(&self) -> EnvRef {
        EnvRef::new("acme", "dev")
    }

    pub fn staging(&self) -> EnvRef {
        EnvRef::new("acme", "staging")
    }

    /// An org admin user of acme.
    pub fn admin(&self) -> Actor {
        actor(user(self.t.acme.id, Access::OrgAdmin))
    }

    pub fn member(&self, grants: &[(Uuid, Level)]) -> Actor {
        actor(user(
            self.t.acme.id,
            Access::PerEnvironment {
                grants: grants.iter().copied().collect(),
            },
        ))
    }

    /// A stored user with a membership in acme (role and grants as given), as an actor
    /// whose principal matches what is stored.
    pub async fn person(&self, email: &str, role: OrgRole, grants: &[(Uuid, Level)]) -> Actor {
        let user = User {
            id: Uuid::now_v7(),
            email: email.into(),
            display_name: email.into(),
            password_hash: None,
            disabled: false,
            created_at: time::OffsetDateTime::now_utc(),
        };
        self.store.insert_user(&user).await.unwrap();
        let grants: BTreeMap<Uuid, Level> = grants.iter().copied().collect();
        self.store
            .upsert_membership(&Membership {
                org_id: self.t.acme.id,
                user_id: user.id,
                role,
                grants: grants.clone(),
            })
            .await
            .unwrap();
        let access = match role {
            OrgRole::Owner | OrgRole::Admin => Access::OrgAdmin,
            OrgRole::Member => Access::PerEnvironment { grants },
        };
        let mut principal = user_principal(self.t.acme.id, access);
        principal.id = user.id;
        principal.display_name = email.into();
        actor(principal)
    }

    /// The principal a bearer token stands for, as an actor (panics if refused).
    pub async fn bearer(&self, secret: &str) -> Actor {
        let principal = self
            .plane
            .authenticator()
            .authenticate(secret, &ClientInfo::default(), Some("acme"))
            .await
            .unwrap();
        actor(principal)
    }

    pub async fn create(&self, yaml: &str) -> WorkflowDetail {
        self.plane
            .create_workflow(&self.admin(), &self.dev(), yaml)
            .await
            .unwrap()
    }

    pub async fn run(&self, workflow: &str, config: &[(&str, serde_json::Value)]) -> Execution {
        let request = RunRequest {
            config: config
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            tags: BTreeMap::new(),
        };
        self.plane
            .run_workflow(&self.admin(), &self.dev(), workflow, &request)
            .await
            .unwrap()
    }

    pub async fn get(&self, id: Uuid) -> Execution {
        self.store
            .get_execution(self.t.dev.id, &id.to_string())
            .await
            .unwrap()
            .unwrap()
    }

    /// Polls the store until the execution reaches `pred` (60 s at most).
    pub async fn wait_for(
        &self,
        id: Uuid,
        what: &str,
        pred: impl Fn(&Execution) -> bool,
    ) -> Execution {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let e = self.get(id).await;
            if pred(&e) {
                return e;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; last state: {e:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn finished(&self, id: Uuid) -> Execution {
        self.wait_for(id, "a final status", |e| e.status.is_terminal())
            .await
    }

    pub async fn running(&self, id: Uuid) -> Execution {
        self.wait_for(id, "status running", |e| {
            e.status == ExecutionStatus::Running
        })
        .await
    }

    /// The whole log as "step: text" lines.
    pub async fn log(&self, id: Uuid) -> Vec<String> {
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

    /// The SQLite file under test.
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("assay.db")
    }

    pub async fn audit(&self, org: Uuid) -> Vec<AuditEvent> {
        self.store.audit_events(org, 0, 10_000).await.unwrap()
    }
}

async fn open_store(dir: &Path) -> Arc<SwitchableAudit> {
    let sqlite = SqliteStore::open(&dir.join("assay.db")).await.unwrap();
    Arc::new(SwitchableAudit {
        inner: Arc::new(sqlite),
        fail_audit: AtomicBool::new(false),
        token_lookups: AtomicUsize::new(0),
        usage_calls: AtomicUsize::new(0),
        usage_entries: AtomicUsize::new(0),
        audit_batches: AtomicUsize::new(0),
        audit_batched_events: AtomicUsize::new(0),
        batch_sizes: Mutex::new(Vec::new()),
        audit_delay_ms: AtomicU64::new(0),
        frozen: AtomicBool::new(false),
    })
}

async fn start_plane(
    dir: &Path,
    store: Arc<SwitchableAudit>,
    clock: Arc<FakeClock>,
    config: &ControlPlaneConfig,
) -> (Arc<FsExecutionFiles>, Arc<LocalControlPlane>) {
    let data_dir = dir.join("data");
    let files = Arc::new(FsExecutionFiles::new(data_dir.clone()));
    let executor = Arc::new(LocalExecutor::new(
        LocalExecutorConfig {
            data_dir,
            sample_interval: Duration::from_millis(100),
            concurrency: config.concurrency,
            ..LocalExecutorConfig::default()
        },
        files.clone(),
    ));
    let plane = LocalControlPlane::start(config.clone(), store, executor, files.clone(), clock)
        .await
        .unwrap();
    (files, plane)
}

async fn seed(store: &dyn Store) -> Tenancy {
    let now = time::OffsetDateTime::now_utc();
    let org = |slug: &str| Organization {
        id: Uuid::now_v7(),
        slug: slug.into(),
        name: slug.into(),
        audit_retention_days: assay_core::tenancy::DEFAULT_AUDIT_RETENTION_DAYS,
        created_at: now,
    };
    let env = |org: &Organization, slug: &str| Environment {
        id: Uuid::now_v7(),
        org_id: org.id,
        slug: slug.into(),
        name: slug.into(),
        created_at: now,
    };
    let acme = org("acme");
    let other = org("other");
    let dev = env(&acme, "dev");
    let staging = env(&acme, "staging");
    let other_dev = env(&other, "dev");
    store.insert_org(&acme).await.unwrap();
    store.insert_org(&other).await.unwrap();
    for e in [&dev, &staging, &other_dev] {
        store.insert_env(e).await.unwrap();
    }
    Tenancy {
        acme,
        dev,
        staging,
        other,
        other_dev,
    }
}

pub fn user(org_id: Uuid, access: Access) -> Principal {
    user_principal(org_id, access)
}

fn user_principal(org_id: Uuid, access: Access) -> Principal {
    Principal {
        kind: PrincipalKind::User,
        id: Uuid::now_v7(),
        display_name: "Ada".into(),
        org_id,
        access,
        scope_cap: None,
        auth_method: AuthMethod::OAuth,
        credential_id: Some("client-1".into()),
    }
}

pub fn actor(principal: Principal) -> Actor {
    Actor::new(
        principal,
        ClientInfo {
            ip: Some("203.0.113.7".into()),
            user_agent: Some("assay-tests/1".into()),
            mcp_client: None,
            request_id: Some("req-1".into()),
        },
    )
}

/// A workflow document with the given `spec` body (indented under `spec:`).
pub fn workflow(name: &str, spec: &str) -> String {
    let spec: String = spec.lines().map(|l| format!("  {l}\n")).collect();
    format!(
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata:\n  name: {name}\nspec:\n{spec}"
    )
}

/// A workflow with one shell step.
pub fn shell_workflow(name: &str, script: &str) -> String {
    workflow(
        name,
        &format!(
            "steps:\n- name: main\n  shell: {}",
            serde_json::to_string(script).unwrap()
        ),
    )
}

/// A script that blocks until `release` exists (absolute path).
pub fn wait_for_file(release: &Path) -> String {
    format!(
        "while [ ! -f '{}' ]; do sleep 0.05; done",
        release.display()
    )
}
