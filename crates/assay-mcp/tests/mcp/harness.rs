//! `TestApp`: a real LocalControlPlane (SQLite file, local process executor, temp dir) with
//! one organization "acme" and its environments "dev" and "staging"; `Client`: an rmcp
//! client talking to `AssayMcp` over an in-memory duplex pipe, as a stdio client would.

use assay_control::{ControlPlaneConfig, LocalControlPlane};
use assay_core::actor::{Access, Actor, AuthMethod, ClientInfo, Principal, PrincipalKind};
use assay_core::ports::{ControlPlane, Store, SystemClock};
use assay_core::{EnvRef, Environment, Level, Organization};
use assay_exec::{FsExecutionFiles, LocalExecutor, LocalExecutorConfig};
use assay_mcp::{AssayMcp, AssayMcpConfig, McpCaller, serve_io};
use assay_store::SqliteStore;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
    ProgressNotificationParam, Tool,
};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

pub struct TestApp {
    pub dir: tempfile::TempDir,
    pub store: Arc<dyn Store>,
    pub plane: Arc<LocalControlPlane>,
    pub acme: Organization,
    pub dev: Environment,
    pub staging: Environment,
}

impl TestApp {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(&dir.path().join("assay.db"))
                .await
                .unwrap(),
        );
        let now = time::OffsetDateTime::now_utc();
        let acme = Organization {
            id: Uuid::now_v7(),
            slug: "acme".into(),
            name: "Acme".into(),
            audit_retention_days: 180,
            created_at: now,
        };
        let env = |slug: &str| Environment {
            id: Uuid::now_v7(),
            org_id: acme.id,
            slug: slug.into(),
            name: slug.into(),
            created_at: now,
        };
        let (dev, staging) = (env("dev"), env("staging"));
        store.insert_org(&acme).await.unwrap();
        store.insert_env(&dev).await.unwrap();
        store.insert_env(&staging).await.unwrap();

        let data_dir = dir.path().join("data");
        let files = Arc::new(FsExecutionFiles::new(data_dir.clone()));
        let executor = Arc::new(LocalExecutor::new(
            LocalExecutorConfig {
                data_dir,
                sample_interval: Duration::from_millis(100),
                concurrency: 2,
                ..LocalExecutorConfig::default()
            },
            files.clone(),
        ));
        let plane = LocalControlPlane::start(
            ControlPlaneConfig {
                concurrency: 2,
                ..ControlPlaneConfig::default()
            },
            store.clone(),
            executor,
            files,
            Arc::new(SystemClock),
        )
        .await
        .unwrap();
        Self {
            dir,
            store,
            plane,
            acme,
            dev,
            staging,
        }
    }

    pub fn dev_ref(&self) -> EnvRef {
        EnvRef::new("acme", "dev")
    }

    /// An organization admin (every tool).
    pub fn admin(&self) -> Actor {
        self.actor(Access::OrgAdmin)
    }

    /// A member with `level` on dev only.
    pub fn member(&self, level: Level) -> Actor {
        self.actor(Access::PerEnvironment {
            grants: [(self.dev.id, level)].into(),
        })
    }

    fn actor(&self, access: Access) -> Actor {
        Actor::new(
            Principal {
                kind: PrincipalKind::User,
                id: Uuid::now_v7(),
                display_name: "Ada".into(),
                org_id: self.acme.id,
                access,
                scope_cap: None,
                auth_method: AuthMethod::OAuth,
                credential_id: None,
            },
            ClientInfo::default(),
        )
    }

    pub fn mcp_in(&self, actor: Actor, env: EnvRef) -> AssayMcp {
        AssayMcp::with_caller(
            self.plane.clone() as Arc<dyn ControlPlane>,
            AssayMcpConfig {
                public_url: Some("https://assay.example.com".into()),
                ..AssayMcpConfig::default()
            },
            McpCaller { actor, env },
        )
    }

    /// A connected MCP client acting as `actor` in acme/dev.
    pub async fn client(&self, actor: Actor) -> Client {
        self.client_in(actor, self.dev_ref()).await
    }

    /// A connected MCP client acting as `actor` in `env`.
    pub async fn client_in(&self, actor: Actor, env: EnvRef) -> Client {
        let mcp = self.mcp_in(actor, env);
        let (server_side, client_side) = tokio::io::duplex(64 * 1024);
        let (read, write) = tokio::io::split(server_side);
        tokio::spawn(async move { serve_io(mcp, read, write).await });
        let recorder = Recorder::default();
        let progress = recorder.progress.clone();
        let service = recorder.serve(client_side).await.unwrap();
        Client { service, progress }
    }
}

/// Records progress notifications; identifies itself as "test-client/1.0".
#[derive(Clone, Default)]
pub struct Recorder {
    pub progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
}

impl ClientHandler for Recorder {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("test-client", "1.0"),
        )
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().unwrap().push(params);
    }
}

pub struct Client {
    pub service: RunningService<RoleClient, Recorder>,
    pub progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
}

impl Client {
    /// The progress notifications received so far, once there are at least `min`. rmcp
    /// handles notifications in spawned tasks, so they may trail the response a little and
    /// arrive in any order: sorted by progress here.
    pub async fn progress(&self, min: usize) -> Vec<ProgressNotificationParam> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let mut seen = self.progress.lock().unwrap().clone();
            if seen.len() >= min || tokio::time::Instant::now() > deadline {
                seen.sort_by(|a, b| a.progress.total_cmp(&b.progress));
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn tools(&self) -> Vec<Tool> {
        self.service.list_tools(None).await.unwrap().tools
    }

    pub async fn tool_names(&self) -> Vec<String> {
        self.tools()
            .await
            .into_iter()
            .map(|t| t.name.to_string())
            .collect()
    }

    pub async fn call(&self, name: &str, args: Value) -> CallToolResult {
        let Value::Object(args) = args else {
            panic!("arguments must be an object");
        };
        self.service
            .call_tool(CallToolRequestParams::new(name.to_owned()).with_arguments(args))
            .await
            .unwrap()
    }

    /// A successful call's structured content (fails the test on `isError`).
    pub async fn ok(&self, name: &str, args: Value) -> Value {
        let r = self.call(name, args).await;
        assert_eq!(r.is_error, Some(false), "{name} failed: {}", text(&r));
        r.structured_content.clone().unwrap()
    }

    /// A failed call's text (fails the test unless `isError`).
    pub async fn err(&self, name: &str, args: Value) -> String {
        let r = self.call(name, args).await;
        assert_eq!(
            r.is_error,
            Some(true),
            "{name} unexpectedly succeeded: {}",
            text(&r)
        );
        assert!(r.structured_content.is_none());
        text(&r)
    }
}

/// The text content of a result.
pub fn text(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A workflow with the given `spec` body (indented under `spec:`).
pub fn workflow(name: &str, spec: &str) -> String {
    let spec: String = spec.lines().map(|l| format!("  {l}\n")).collect();
    format!(
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata:\n  name: {name}\nspec:\n{spec}"
    )
}
