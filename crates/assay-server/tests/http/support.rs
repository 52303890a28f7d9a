//! `TestApp`: the real server (SQLite store, local executor, LocalControlPlane) on
//! 127.0.0.1:0 with a temp data dir, bootstrapped, plus helpers to call it.

use assay_control::{ControlPlaneConfig, LocalControlPlane};
use assay_core::ports::{Clock, ControlPlane, ExecutionFiles, Executor, Store, SystemClock};
use assay_exec::{FsExecutionFiles, LocalExecutor, LocalExecutorConfig};
use assay_server::{AppState, ServerConfig};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const PROBLEM: &str = "application/problem+json";

/// A running server and its clients.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub token: String,
    /// Sends the admin token on every request.
    pub client: reqwest::Client,
    /// Sends no credentials.
    pub anon: reqwest::Client,
    /// The server's store, for set-up no API offers (e.g. adding environments).
    pub store: Arc<dyn Store>,
    /// The bootstrapped organization (`default`).
    pub org_id: uuid::Uuid,
    /// The control plane itself, for its signing keys (OAuth access tokens).
    pub plane: Arc<LocalControlPlane>,
    /// The bootstrapped owner (`Bootstrap::owner_email`).
    pub owner_email: String,
    /// The bootstrapped owner's password (for the OAuth login pages).
    pub owner_password: String,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

pub fn http_client(token: Option<&str>) -> reqwest::Client {
    // reqwest is built without a TLS provider of its own; tests speak plain HTTP but a
    // client cannot be built without one.
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let mut headers = HeaderMap::new();
    if let Some(token) = token {
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
    }
    reqwest::Client::builder()
        .no_proxy()
        .default_headers(headers)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

pub type Server = (oneshot::Sender<()>, JoinHandle<std::io::Result<()>>);

/// A fresh loopback listener and the public URL it will answer at.
pub async fn listener() -> (tokio::net::TcpListener, SocketAddr, url::Url) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let url = url::Url::parse(&format!("http://{addr}/")).unwrap();
    (listener, addr, url)
}

/// Serves `state`'s router on `listener` until the returned sender fires.
pub fn spawn(listener: tokio::net::TcpListener, state: AppState) -> Server {
    let (tx, rx) = oneshot::channel::<()>();
    let router = assay_server::router(state);
    let server = tokio::spawn(assay_server::serve(listener, router, async {
        let _ = rx.await;
    }));
    (tx, server)
}

/// [`spawn`] over TLS.
pub fn spawn_tls(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: AppState,
) -> Server {
    let (tx, rx) = oneshot::channel::<()>();
    let router = assay_server::router(state);
    let server = tokio::spawn(assay_server::serve_tls(listener, tls, router, async {
        let _ = rx.await;
    }));
    (tx, server)
}

impl TestApp {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tune: impl FnOnce(&mut ServerConfig)) -> Self {
        Self::start_configured(|_| {}, tune).await
    }

    /// Like [`TestApp::start_with`], also tuning the control plane (e.g. OAuth lifetimes).
    pub async fn start_configured(
        tune_control: impl FnOnce(&mut ControlPlaneConfig),
        tune: impl FnOnce(&mut ServerConfig),
    ) -> Self {
        Self::start_serving(tune_control, tune, None).await
    }

    /// The server over HTTPS with `tls` (`assay_server::serve_tls`); its public URL (and
    /// `base`) is `https://127.0.0.1:<port>`. `client` and `anon` do not trust the test
    /// CA: callers bring their own client.
    pub async fn start_tls(tls: Arc<rustls::ServerConfig>) -> Self {
        Self::start_serving(|_| {}, |_| {}, Some(tls)).await
    }

    async fn start_serving(
        tune_control: impl FnOnce(&mut ControlPlaneConfig),
        tune: impl FnOnce(&mut ServerConfig),
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let store: Arc<dyn Store> = Arc::new(
            assay_store::SqliteStore::open(&dir.path().join("assay.db"))
                .await
                .unwrap(),
        );
        let data_dir = dir.path().join("data");
        let files = Arc::new(FsExecutionFiles::new(data_dir.clone()));
        let executor: Arc<dyn Executor> = Arc::new(LocalExecutor::new(
            LocalExecutorConfig {
                data_dir,
                sample_interval: Duration::from_millis(200),
                ..LocalExecutorConfig::default()
            },
            files.clone(),
        ));
        let files: Arc<dyn ExecutionFiles> = files;
        let boot = assay_control::bootstrap::bootstrap(&*store, &*clock)
            .await
            .unwrap()
            .expect("a fresh database bootstraps");
        let (listener, addr, mut public_url) = listener().await;
        if tls.is_some() {
            public_url = url::Url::parse(&format!("https://{addr}/")).unwrap();
        }
        let mut control_config = ControlPlaneConfig {
            public_url: Some(public_url.clone()),
            ..ControlPlaneConfig::default()
        };
        tune_control(&mut control_config);
        let control =
            LocalControlPlane::start(control_config, store.clone(), executor, files, clock)
                .await
                .unwrap();
        let auth = control.authenticator();
        let plane = control.clone();
        let keys = control.clone();
        let control: Arc<dyn ControlPlane> = control;
        let probe_store = store.clone();
        let mut config = ServerConfig::new(public_url.clone());
        config.jwks = Some(assay_server::jwks::JwksSource(Arc::new(move || {
            keys.key_ring().jwks()
        })));
        config.oauth = Some(assay_server::oauth::OAuthServer(plane.oauth()));
        tune(&mut config);
        let state = AppState {
            control,
            auth,
            ready: Arc::new(move || {
                let store = probe_store.clone();
                Box::pin(async move { store.list_orgs().await.is_ok() })
            }),
            config,
        };
        let (shutdown, server) = match tls {
            Some(tls) => spawn_tls(listener, tls, state),
            None => spawn(listener, state),
        };
        let token = boot.admin_token;
        Self {
            addr,
            base: public_url.as_str().trim_end_matches('/').to_owned(),
            client: http_client(Some(&token)),
            anon: http_client(None),
            store,
            org_id: boot.org.id,
            plane,
            owner_email: boot.owner_email.clone(),
            owner_password: boot.owner_password.clone(),
            token,
            shutdown: Some(shutdown),
            server: Some(server),
            _dir: dir,
        }
    }

    /// A URL under the bootstrapped environment (`default`/`dev`).
    pub fn env_url(&self, rest: &str) -> String {
        format!(
            "{}/v1/organizations/default/environments/dev{rest}",
            self.base
        )
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Creates a workflow from YAML; panics unless 201.
    pub async fn create_workflow(&self, yaml: &str) -> Value {
        let res = self
            .client
            .post(self.env_url("/workflows"))
            .header("content-type", "text/yaml")
            .body(yaml.to_owned())
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, 201, "{body}");
        body
    }

    /// Starts an execution; panics unless 201.
    pub async fn run(&self, workflow: &str) -> Value {
        let res = self
            .client
            .post(self.env_url(&format!("/workflows/{workflow}/executions")))
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, 201, "{body}");
        body
    }

    /// Polls an execution until its status is terminal (60 s at most).
    pub async fn wait_finished(&self, execution: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let e: Value = self
                .client
                .get(self.env_url(&format!("/executions/{execution}")))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let status = e["status"].as_str().unwrap_or("").to_owned();
            if !matches!(status.as_str(), "queued" | "running") {
                return e;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "execution still {status}: {e}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let result = tokio::time::timeout(Duration::from_secs(15), server)
                .await
                .expect("server stops after shutdown")
                .unwrap();
            assert!(result.is_ok(), "{result:?}");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Checks a response is the problem it should be and returns its body.
pub async fn expect_problem(res: reqwest::Response, status: u16, kind: &str) -> Value {
    assert_eq!(res.status().as_u16(), status, "status of {}", res.url());
    assert_eq!(
        res.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some(PROBLEM),
        "content-type of {}",
        res.url()
    );
    let header_id = res
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["type"], format!("urn:assay:problem:{kind}"), "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert!(body["title"].is_string(), "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    assert_eq!(body["request_id"].as_str(), header_id.as_deref(), "{body}");
    body
}

/// A raw HTTP/1.1 exchange, for request targets a URL library would normalize
/// (`%2e%2e`, `..`, `//`). Returns (status, headers lower-cased, body).
pub async fn raw_get(addr: SocketAddr, target: &str, token: &str) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// Everything logged on this thread while the guard lives (the test runtime is
/// single-threaded, so the server's tasks log here too).
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Starts capturing every level, without colour codes.
    pub fn start() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Self::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        // tracing-core computes a callsite's interest from the hitting thread's default
        // alone while exactly one dispatcher is registered: a concurrent test thread
        // without a subscriber would cache "never" for the server's spans and events and
        // hide them from this capture. A second, never-dropped dispatcher makes it ask
        // every registered dispatcher instead.
        static SECOND_DISPATCHER: std::sync::OnceLock<tracing::Dispatch> =
            std::sync::OnceLock::new();
        SECOND_DISPATCHER
            .get_or_init(|| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()));
        (logs, tracing::subscriber::set_default(subscriber))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
