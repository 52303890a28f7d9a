//! The `LocalControlPlane` value: its parts, start-up and shutdown.

use crate::ControlPlaneConfig;
use crate::access::{self, Scope};
use crate::audit::{self, Call};
use crate::audit_log::AuditLog;
use crate::auth::ApiTokenAuthenticator;
use crate::dispatcher::Dispatcher;
use crate::grant_cache::GrantCache;
use crate::oauth::AuthorizationServer;
use crate::scope_cache::{self, ScopeCache};
use crate::signing_keys::{self, Schedule, SigningKeys};
use crate::{recovery, retention, token_usage};
use assay_auth::jwt::KeyRing;
use assay_auth::key_seal::KeyEncryptionKey;
use assay_auth::metadata::PublicBase;
use assay_core::ports::{Authenticator, Clock, ExecutionFiles, Executor, Store};
use assay_core::{EnvRef, Error, Organization, Result};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Every operation a user can cause, performed here: resolve the environment, authorize,
/// act, audit. Use it as `Arc<LocalControlPlane>` (what [`LocalControlPlane::start`]
/// returns); it implements `assay_core::ports::ControlPlane`.
pub struct LocalControlPlane {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) executor: Arc<dyn Executor>,
    pub(crate) files: Arc<dyn ExecutionFiles>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) dispatcher: Arc<Dispatcher>,
    pub(crate) audit: Arc<AuditLog>,
    pub(crate) authenticator: Arc<ApiTokenAuthenticator>,
    /// The access-token signing keys (validation here, JWKS at the server).
    keys: Arc<SigningKeys>,
    /// The OAuth 2.1 authorization server (the server crate maps HTTP onto it).
    oauth: Arc<AuthorizationServer>,
    /// Environment resolution for `authorize` (short TTL, see `scope_cache`).
    scopes: ScopeCache,
    background: TaskTracker,
    stop: CancellationToken,
}

impl LocalControlPlane {
    /// Recovers what the previous process left behind, then starts the dispatcher, the
    /// audit writer, the retention task (workspaces and audit events) and the API-token
    /// usage flusher. Must be called inside a Tokio runtime.
    pub async fn start(
        config: ControlPlaneConfig,
        store: Arc<dyn Store>,
        executor: Arc<dyn Executor>,
        files: Arc<dyn ExecutionFiles>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>> {
        let audit = Arc::new(AuditLog::start(store.clone(), config.audit));
        let dispatcher = Arc::new(Dispatcher::new(
            config.concurrency,
            store.clone(),
            executor.clone(),
            files.clone(),
            clock.clone(),
        ));
        recovery::recover(&dispatcher, &audit).await?;
        let keys = Arc::new(
            SigningKeys::load_or_create(
                store.as_ref(),
                clock.as_ref(),
                key_encryption_key(&config)?,
                Schedule {
                    rotation: config.oauth.signing_key_rotation,
                    previous_grace: config
                        .oauth
                        .access_token_ttl
                        .saturating_add(config.oauth.signing_key_reload_interval),
                },
            )
            .await?,
        );
        let public = config.public_url.as_ref().and_then(|url| {
            PublicBase::new(url)
                .inspect_err(|e| {
                    tracing::warn!(error = %e, "the public URL cannot be an issuer: OAuth access tokens are refused");
                })
                .ok()
        });
        let grants = Arc::new(GrantCache::new(config.oauth.grant_check_ttl));
        let authenticator = Arc::new(ApiTokenAuthenticator::new(
            store.clone(),
            clock.clone(),
            audit.clone(),
            keys.clone(),
            public.clone(),
            grants.clone(),
        ));
        let oauth = Arc::new(AuthorizationServer::new(
            store.clone(),
            clock.clone(),
            audit.clone(),
            keys.clone(),
            public,
            config.oauth.clone(),
            grants,
        ));
        oauth.ensure_first_party_client().await?;

        let stop = CancellationToken::new();
        let background = TaskTracker::new();
        background.spawn(dispatcher.clone().run_loop(stop.clone()));
        background.spawn(retention::run(
            dispatcher.clone(),
            audit.clone(),
            config.retention_interval,
            config.workspace_retention,
            stop.clone(),
        ));
        background.spawn(token_usage::run(
            authenticator.usage(),
            store.clone(),
            config.token_usage_flush_interval,
            stop.clone(),
        ));
        background.spawn(signing_keys::run(
            keys.clone(),
            store.clone(),
            clock.clone(),
            config.oauth.signing_key_reload_interval,
            stop.clone(),
        ));
        background.close();

        Ok(Arc::new(Self {
            authenticator,
            keys,
            oauth,
            scopes: ScopeCache::new(scope_cache::DEFAULT_CAPACITY, scope_cache::DEFAULT_TTL),
            audit,
            store,
            executor,
            files,
            clock,
            dispatcher,
            background,
            stop,
        }))
    }

    /// Stops accepting executions, stops the background tasks (writing pending API-token
    /// usage) and aborts running executions (their final state is recorded). Queued ones
    /// stay queued in the store.
    pub async fn shutdown(&self) {
        self.dispatcher.abort_all();
        self.stop.cancel();
        self.background.wait().await;
        self.dispatcher.shutdown().await;
    }

    /// Bearer credential → principal (API tokens and OAuth access tokens).
    pub fn authenticator(&self) -> Arc<dyn Authenticator> {
        self.authenticator.clone()
    }

    /// The OAuth 2.1 authorization server.
    pub fn oauth(&self) -> Arc<AuthorizationServer> {
        self.oauth.clone()
    }

    /// One sweep of expired OAuth records now (it otherwise runs with the retention
    /// sweep): codes, device authorizations, browser sessions, denied access tokens and
    /// unused registrations. Returns how many records were deleted.
    pub async fn purge_oauth(&self) -> u64 {
        retention::purge_oauth(self.store.as_ref(), self.clock.as_ref()).await
    }

    /// The access-token signing keys as they are now: current and previous. The server
    /// publishes their public halves as its JWKS.
    pub fn key_ring(&self) -> Arc<KeyRing> {
        self.keys.ring()
    }

    /// Makes a new current signing key now; tokens signed by the old current key stay
    /// valid (it becomes previous), any older key is retired. The schedule
    /// (`OAuthConfig::signing_key_rotation`) otherwise rotates on its own.
    pub async fn rotate_signing_key(&self) -> Result<()> {
        self.keys
            .rotate(self.store.as_ref(), self.clock.as_ref())
            .await
    }

    /// One signing-key pass now (it otherwise runs every
    /// `OAuthConfig::signing_key_reload_interval`): reload the keys from the store, rotate
    /// the current key when it is due, retire the previous one when its tokens are gone.
    pub async fn refresh_signing_keys(&self) -> Result<()> {
        self.keys
            .refresh(self.store.as_ref(), self.clock.as_ref())
            .await
    }

    /// Writes pending API-token last-use times now (they are otherwise written every few
    /// seconds and at shutdown); returns how many tokens were updated.
    pub async fn flush_token_usage(&self) -> Result<usize> {
        self.authenticator.flush_usage().await
    }

    /// One audit-retention sweep now (it otherwise runs every `retention_interval`);
    /// returns how many organizations had events purged.
    pub async fn purge_audit(&self) -> usize {
        retention::purge_audit(self.store.as_ref(), &self.audit, self.clock.as_ref()).await
    }

    pub(crate) async fn authorize(&self, call: &mut Call<'_>, env: &EnvRef) -> Result<Scope> {
        access::authorize(self.store.as_ref(), &self.scopes, call, env).await
    }

    pub(crate) async fn authorize_org(
        &self,
        call: &mut Call<'_>,
        org: &str,
    ) -> Result<Organization> {
        access::authorize_org(self.store.as_ref(), call, org).await
    }

    pub(crate) async fn commit<T>(&self, call: Call<'_>, result: Result<T>) -> Result<T> {
        audit::commit(&self.audit, self.clock.as_ref(), call, result).await
    }
}

impl Drop for LocalControlPlane {
    /// Dropped without `shutdown`: at least stop the background loops and the processes.
    fn drop(&mut self) {
        self.stop.cancel();
        self.dispatcher.abort_all();
    }
}

/// The configured KEK, or one for this process only (with a warning: what it seals cannot
/// be opened after a restart). Every plane of the process gets the same one, so planes
/// sharing a store (benchmarks, tests) open each other's sealed keys.
fn key_encryption_key(config: &ControlPlaneConfig) -> Result<KeyEncryptionKey> {
    static PROCESS_KEK: std::sync::OnceLock<KeyEncryptionKey> = std::sync::OnceLock::new();
    if let Some(kek) = &config.key_encryption_key {
        return Ok(kek.clone());
    }
    tracing::warn!(
        "no key-encryption key configured: the signing keys are sealed with a key that lives \
         in this process only and cannot be opened after a restart"
    );
    if let Some(kek) = PROCESS_KEK.get() {
        return Ok(kek.clone());
    }
    let kek = KeyEncryptionKey::generate()
        .map_err(|e| Error::Internal(format!("key-encryption key: {e}")))?;
    Ok(PROCESS_KEK.get_or_init(|| kek).clone())
}
