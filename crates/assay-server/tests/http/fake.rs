//! A scripted control plane for what the real one cannot be made to do on demand:
//! panic, fail internally, hang past the timeout, break a stream. Names select the
//! behaviour; everything else is "not found".

use super::support::{Server, http_client, listener, spawn};
use assay_core::actor::{Access, AuthMethod};
use assay_core::audit::{
    ActorActivity, AuditActor, AuditEvent, AuditFilter, AuditSettings, AuditVerifyReport, Outcome,
};
use assay_core::execution::*;
use assay_core::identity::{
    ApiTokenInfo, CreatedApiToken, MemberInfo, MemberUpdate, NewApiToken, NewMember,
};
use assay_core::page::{Page, PageRequest};
use assay_core::ports::{Authenticator, ControlPlane};
use assay_core::workflow::*;
use assay_core::{
    Actor, ClientInfo, EnvRef, Error, Level, Principal, PrincipalKind, Result, Timestamp,
};
use assay_server::{AppState, ServerConfig};
use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const GOOD_TOKEN: &str = "assay_fake_good";
/// Makes the authenticator report its backing store down.
pub const DOWN_TOKEN: &str = "assay_fake_down";
pub const SECRET: &str = "password=hunter2";

#[derive(Default)]
pub struct Scripted {
    /// The actor and source of the last control-plane call.
    pub last_actor: Mutex<Option<Actor>>,
    pub last_source: Mutex<Option<String>>,
    /// The organization the last authentication was told about (`None` = not called).
    pub last_auth_org: Mutex<Option<Option<String>>>,
    /// The filter of the last audit export.
    pub last_audit_filter: Mutex<Option<AuditFilter>>,
}

fn none<T>() -> Result<T> {
    Err(Error::not_found("thing", "fake"))
}

impl Scripted {
    fn saw(&self, actor: &Actor) {
        *self.last_actor.lock().unwrap() = Some(actor.clone());
    }

    async fn scripted<T>(&self, actor: &Actor, name: &str) -> Result<T> {
        self.saw(actor);
        match name {
            "slow" => {
                tokio::time::sleep(Duration::from_secs(3)).await;
                none()
            }
            "panic" => panic!("scripted panic in the control plane"),
            "internal" => Err(Error::Internal(format!("database said {SECRET}"))),
            "forbidden" => Err(Error::Forbidden {
                needed: Level::Write,
            }),
            "conflict" => Err(Error::Conflict("scripted conflict".into())),
            "unavailable" => Err(Error::Unavailable("database is down".into())),
            "too-large" => Err(Error::TooLarge("scripted".into())),
            "expired" => Err(Error::Unauthenticated("token expired".into())),
            _ => none(),
        }
    }
}

fn detail(name: &str, source: &str) -> WorkflowDetail {
    let now = time::OffsetDateTime::now_utc();
    WorkflowDetail {
        summary: WorkflowSummary {
            id: uuid::Uuid::nil(),
            kind: ResourceKind::Workflow,
            name: name.into(),
            description: String::new(),
            labels: BTreeMap::new(),
            created_at: now,
            updated_at: now,
            health: None,
            last_execution: None,
        },
        source: source.into(),
        definition: serde_json::Value::Null,
    }
}

/// An audit event whose every caller-supplied text is hostile.
pub fn hostile_event(seq: i64) -> AuditEvent {
    AuditEvent {
        id: uuid::Uuid::now_v7(),
        time: time::macros::datetime!(2025-01-02 03:04:05 UTC),
        org_id: uuid::Uuid::nil(),
        env_id: None,
        actor: AuditActor {
            kind: PrincipalKind::User,
            id: uuid::Uuid::nil(),
            name: "=1+2".into(),
            auth_method: AuthMethod::Session,
            credential_id: None,
        },
        client: ClientInfo {
            ip: Some("127.0.0.1".into()),
            user_agent: Some("a,\"b\"\nc\u{1b}".into()),
            mcp_client: None,
            request_id: Some(format!("r{seq}")),
        },
        action: "member.add".into(),
        resources: vec!["user:a".into(), "user:b".into()],
        outcome: Outcome::Success,
        reason: Some("@SUM(A1)".into()),
        seq,
        prev_hash: "0".repeat(64),
        hash: "f".repeat(64),
    }
}

fn line(number: u64) -> LogLine {
    LogLine {
        number,
        step: "1".into(),
        time: time::OffsetDateTime::now_utc(),
        text: format!("line {number}"),
    }
}

#[async_trait]
impl Authenticator for Scripted {
    async fn authenticate(
        &self,
        bearer: &str,
        _: &ClientInfo,
        org: Option<&str>,
    ) -> Result<Principal> {
        *self.last_auth_org.lock().unwrap() = Some(org.map(str::to_owned));
        match bearer {
            GOOD_TOKEN => Ok(Principal {
                kind: PrincipalKind::ApiToken,
                id: uuid::Uuid::nil(),
                display_name: "fake".into(),
                org_id: uuid::Uuid::nil(),
                access: Access::OrgAdmin,
                scope_cap: None,
                auth_method: AuthMethod::ApiToken,
                credential_id: None,
            }),
            DOWN_TOKEN => Err(Error::Unavailable("token store unreachable".into())),
            _ => Err(Error::Unauthenticated("unknown or revoked token".into())),
        }
    }
}

#[async_trait]
impl ControlPlane for Scripted {
    async fn list_workflows(
        &self,
        a: &Actor,
        _: &EnvRef,
        _: &WorkflowFilter,
        _: &PageRequest,
    ) -> Result<Page<WorkflowSummary>> {
        self.saw(a);
        Ok(Page {
            items: Vec::new(),
            total: 0,
            next_cursor: None,
        })
    }
    async fn get_workflow(&self, a: &Actor, _: &EnvRef, name: &str) -> Result<WorkflowDetail> {
        self.scripted(a, name).await
    }
    async fn create_workflow(&self, a: &Actor, _: &EnvRef, source: &str) -> Result<WorkflowDetail> {
        self.saw(a);
        *self.last_source.lock().unwrap() = Some(source.to_owned());
        Ok(detail("echo", source))
    }
    async fn update_workflow(
        &self,
        a: &Actor,
        _: &EnvRef,
        name: &str,
        _: &str,
    ) -> Result<WorkflowDetail> {
        self.scripted(a, name).await
    }
    async fn apply_workflow(&self, a: &Actor, _: &EnvRef, _: &str) -> Result<ApplyResult> {
        self.scripted(a, "").await
    }
    async fn delete_workflow(&self, a: &Actor, _: &EnvRef, name: &str) -> Result<()> {
        self.scripted(a, name).await
    }
    async fn list_templates(
        &self,
        a: &Actor,
        _: &EnvRef,
        _: &WorkflowFilter,
        _: &PageRequest,
    ) -> Result<Page<WorkflowSummary>> {
        self.scripted(a, "").await
    }
    async fn get_template(&self, a: &Actor, _: &EnvRef, name: &str) -> Result<WorkflowDetail> {
        self.scripted(a, name).await
    }
    async fn create_template(&self, a: &Actor, _: &EnvRef, _: &str) -> Result<WorkflowDetail> {
        self.scripted(a, "").await
    }
    async fn update_template(
        &self,
        a: &Actor,
        _: &EnvRef,
        name: &str,
        _: &str,
    ) -> Result<WorkflowDetail> {
        self.scripted(a, name).await
    }
    async fn apply_template(&self, a: &Actor, _: &EnvRef, _: &str) -> Result<ApplyResult> {
        self.scripted(a, "").await
    }
    async fn delete_template(&self, a: &Actor, _: &EnvRef, name: &str) -> Result<()> {
        self.scripted(a, name).await
    }
    async fn run_workflow(
        &self,
        a: &Actor,
        _: &EnvRef,
        name: &str,
        _: &RunRequest,
    ) -> Result<Execution> {
        self.scripted(a, name).await
    }
    async fn list_executions(
        &self,
        a: &Actor,
        _: &EnvRef,
        _: &ExecutionFilter,
        _: &PageRequest,
    ) -> Result<Page<ExecutionSummary>> {
        self.scripted(a, "").await
    }
    async fn get_execution(&self, a: &Actor, _: &EnvRef, e: &str) -> Result<Execution> {
        self.scripted(a, e).await
    }
    async fn wait_for_execution(
        &self,
        a: &Actor,
        _: &EnvRef,
        e: &str,
        _: std::time::Duration,
    ) -> Result<Execution> {
        self.scripted(a, e).await
    }
    async fn abort_execution(&self, a: &Actor, _: &EnvRef, e: &str) -> Result<Execution> {
        self.scripted(a, e).await
    }
    async fn update_execution_tags(
        &self,
        a: &Actor,
        _: &EnvRef,
        e: &str,
        _: &BTreeMap<String, String>,
    ) -> Result<Execution> {
        self.scripted(a, e).await
    }
    async fn execution_logs(
        &self,
        a: &Actor,
        _: &EnvRef,
        e: &str,
        _: &LogQuery,
    ) -> Result<LogPage> {
        self.scripted(a, e).await
    }
    /// "slow-stream": three lines 400 ms apart; "broken-stream": one line, then an error.
    async fn follow_execution_logs(
        &self,
        a: &Actor,
        _: &EnvRef,
        e: &str,
        _: Option<String>,
        _: u64,
    ) -> Result<BoxStream<'static, Result<LogLine>>> {
        self.saw(a);
        match e {
            "slow-stream" => Ok(futures::stream::iter(1..=3)
                .then(|n| async move {
                    tokio::time::sleep(Duration::from_millis(400)).await;
                    Ok(line(n))
                })
                .boxed()),
            "broken-stream" => Ok(futures::stream::iter([1, 2])
                .then(|n| async move {
                    if n == 1 {
                        return Ok(line(1));
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Err(Error::Internal("log file vanished".into()))
                })
                .boxed()),
            other => self.scripted(a, other).await,
        }
    }
    async fn list_artifacts(&self, a: &Actor, _: &EnvRef, e: &str) -> Result<Vec<Artifact>> {
        self.scripted(a, e).await
    }
    async fn read_artifact(
        &self,
        a: &Actor,
        _: &EnvRef,
        e: &str,
        _: &str,
        _: &ArtifactQuery,
    ) -> Result<ArtifactContent> {
        self.scripted(a, e).await
    }
    /// "slow-download": two chunks 400 ms apart.
    async fn download_artifact(
        &self,
        a: &Actor,
        _: &EnvRef,
        e: &str,
        path: &str,
    ) -> Result<(Artifact, BoxStream<'static, Result<Vec<u8>>>)> {
        self.saw(a);
        if e != "slow-download" {
            return self.scripted(a, e).await;
        }
        let artifact = Artifact {
            path: path.into(),
            size: 10,
            step: "1".into(),
            content_type: Some("text/html".into()),
        };
        let chunks = futures::stream::iter([b"hello".to_vec(), b"world".to_vec()])
            .then(|c| async move {
                tokio::time::sleep(Duration::from_millis(400)).await;
                Ok(c)
            })
            .boxed();
        Ok((artifact, chunks))
    }
    async fn workflow_metrics(
        &self,
        a: &Actor,
        _: &EnvRef,
        w: &str,
        _: u32,
    ) -> Result<WorkflowMetrics> {
        self.scripted(a, w).await
    }
    async fn execution_metrics(&self, a: &Actor, _: &EnvRef, e: &str) -> Result<ExecutionMetrics> {
        self.scripted(a, e).await
    }
    async fn resource_history(
        &self,
        a: &Actor,
        _: &EnvRef,
        w: &str,
        _: u32,
    ) -> Result<Vec<ResourceHistoryEntry>> {
        self.scripted(a, w).await
    }
    async fn list_labels(
        &self,
        a: &Actor,
        _: &EnvRef,
    ) -> Result<BTreeMap<String, BTreeSet<String>>> {
        self.scripted(a, "").await
    }
    async fn list_runners(&self, a: &Actor, _: &EnvRef) -> Result<Vec<RunnerInfo>> {
        self.scripted(a, "").await
    }
    async fn list_members(&self, a: &Actor, org: &str) -> Result<Vec<MemberInfo>> {
        self.scripted(a, org).await
    }
    async fn add_member(&self, a: &Actor, org: &str, _: &NewMember) -> Result<MemberInfo> {
        self.scripted(a, org).await
    }
    async fn update_member(
        &self,
        a: &Actor,
        _: &str,
        user: &str,
        _: &MemberUpdate,
    ) -> Result<MemberInfo> {
        self.scripted(a, user).await
    }
    async fn remove_member(&self, a: &Actor, _: &str, user: &str) -> Result<()> {
        self.scripted(a, user).await
    }
    async fn create_api_token(
        &self,
        a: &Actor,
        org: &str,
        _: &NewApiToken,
    ) -> Result<CreatedApiToken> {
        self.scripted(a, org).await
    }
    async fn list_api_tokens(&self, a: &Actor, org: &str) -> Result<Vec<ApiTokenInfo>> {
        self.scripted(a, org).await
    }
    async fn get_api_token(&self, a: &Actor, org: &str, _: uuid::Uuid) -> Result<ApiTokenInfo> {
        self.scripted(a, org).await
    }
    async fn rotate_api_token(
        &self,
        a: &Actor,
        org: &str,
        _: uuid::Uuid,
        _: Option<u64>,
    ) -> Result<CreatedApiToken> {
        self.scripted(a, org).await
    }
    async fn revoke_api_token(&self, a: &Actor, org: &str, _: uuid::Uuid) -> Result<ApiTokenInfo> {
        self.scripted(a, org).await
    }
    async fn list_my_grants(
        &self,
        a: &Actor,
        org: &str,
    ) -> Result<Vec<assay_core::oauth::GrantInfo>> {
        self.scripted(a, org).await
    }
    async fn whoami(&self, a: &Actor) -> Result<assay_core::identity::Identity> {
        self.scripted(a, "").await
    }
    async fn revoke_my_grant(&self, a: &Actor, org: &str, _: uuid::Uuid) -> Result<()> {
        self.scripted(a, org).await
    }
    /// Organization "hostile": three hostile events; "broken-export": one event, then an
    /// error; anything else is scripted by name.
    async fn export_audit(
        &self,
        a: &Actor,
        org: &str,
        filter: &AuditFilter,
    ) -> Result<BoxStream<'static, Result<AuditEvent>>> {
        self.saw(a);
        *self.last_audit_filter.lock().unwrap() = Some(filter.clone());
        match org {
            "hostile" => Ok(futures::stream::iter((1..=3).map(|s| Ok(hostile_event(s)))).boxed()),
            "broken-export" => Ok(futures::stream::iter([1, 2])
                .then(|n| async move {
                    if n == 1 {
                        return Ok(hostile_event(1));
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Err(Error::Unavailable("audit store went away".into()))
                })
                .boxed()),
            other => self.scripted(a, other).await,
        }
    }
    async fn verify_audit(&self, a: &Actor, org: &str) -> Result<AuditVerifyReport> {
        self.scripted(a, org).await
    }
    async fn audit_actors(
        &self,
        a: &Actor,
        org: &str,
        _: Timestamp,
        _: Timestamp,
    ) -> Result<Vec<ActorActivity>> {
        self.scripted(a, org).await
    }
    async fn audit_settings(&self, a: &Actor, org: &str) -> Result<AuditSettings> {
        self.scripted(a, org).await
    }
    async fn set_audit_settings(
        &self,
        a: &Actor,
        org: &str,
        _: &AuditSettings,
    ) -> Result<AuditSettings> {
        self.scripted(a, org).await
    }
}

/// The real router over [`Scripted`], with a short request timeout.
pub struct FakeApp {
    pub base: String,
    pub client: reqwest::Client,
    pub fake: Arc<Scripted>,
    pub ready: Arc<std::sync::atomic::AtomicBool>,
    _server: Server,
}

pub const FAKE_TIMEOUT: Duration = Duration::from_millis(500);

impl FakeApp {
    pub async fn start() -> Self {
        let fake = Arc::new(Scripted::default());
        let ready = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (listener, addr, public_url) = listener().await;
        let mut config = ServerConfig::new(public_url);
        config.request_timeout = FAKE_TIMEOUT;
        let probe = ready.clone();
        let state = AppState {
            control: fake.clone(),
            auth: fake.clone(),
            ready: Arc::new(move || {
                let up = probe.load(std::sync::atomic::Ordering::SeqCst);
                Box::pin(async move { up })
            }),
            config,
        };
        Self {
            base: format!("http://{addr}"),
            client: http_client(Some(GOOD_TOKEN)),
            fake,
            ready,
            _server: spawn(listener, state),
        }
    }

    pub fn env_url(&self, rest: &str) -> String {
        format!("{}/v1/organizations/acme/environments/dev{rest}", self.base)
    }

    pub fn org_url(&self, org: &str, rest: &str) -> String {
        format!("{}/v1/organizations/{org}{rest}", self.base)
    }
}
