//! Tunables of the local control plane.

use crate::oauth::OAuthConfig;
use assay_auth::key_seal::KeyEncryptionKey;
use std::time::Duration;

/// Whether operations are audited. There is no production setting other than `On`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuditMode {
    /// Every operation is recorded, durably, before its result is returned.
    #[default]
    On,
    /// Nothing is recorded. ONLY for benchmarks that measure what auditing costs; never
    /// use it in a server (it removes the audit trail and its fail-closed guarantee).
    OffForBenchmarks,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlPlaneConfig {
    /// Executions running at once; further ones wait in FIFO order. `0` is treated as `1`.
    pub concurrency: u32,
    /// Execution workspaces older than this are removed (logs and artifacts stay).
    pub workspace_retention: Duration,
    /// How often the retention sweeps (workspaces, audit events) run.
    pub retention_interval: Duration,
    /// See [`AuditMode`]; always `On` outside benchmarks.
    pub audit: AuditMode,
    /// How often API-token last-use times are written (in one batch); also written at
    /// shutdown.
    pub token_usage_flush_interval: Duration,
    /// The server's public URL: the issuer and the resources an OAuth access token must
    /// name. `None` (or a URL that cannot be an issuer): access tokens are refused.
    pub public_url: Option<url::Url>,
    /// The OAuth authorization server's lifetimes, rate limits and fetch policy.
    pub oauth: OAuthConfig,
    /// Seals the signing keys in the store; it must never be kept in the database. `None`
    /// (tests, benchmarks): a key made for this process only, so keys sealed by it cannot
    /// be opened after a restart. `assay server` always sets one.
    pub key_encryption_key: Option<KeyEncryptionKey>,
}

impl Default for ControlPlaneConfig {
    fn default() -> Self {
        Self {
            concurrency: 4,
            workspace_retention: Duration::from_secs(24 * 60 * 60),
            retention_interval: Duration::from_secs(10 * 60),
            audit: AuditMode::On,
            token_usage_flush_interval: Duration::from_secs(5),
            public_url: None,
            oauth: OAuthConfig::default(),
            key_encryption_key: None,
        }
    }
}
