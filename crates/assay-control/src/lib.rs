//! `LocalControlPlane`: the one place where an operation happens — resolve the
//! environment, authorize, act, audit — plus the background work that keeps executions
//! honest: the FIFO dispatcher with its concurrency limit, start-up recovery and workspace
//! retention.
//!
//! Layout: `access` (environment/organization resolution + authorization, with
//! `scope_cache`), `audit` (one event per call, committed before the result is returned)
//! over `audit_log` (the group-commit writer), `resources` (workflows and templates),
//! `runs` (run, abort, tags), `insight` (health and metrics), `dispatcher` (queue and
//! runner), `events` (live execution state), `recovery`, `retention` (workspaces, audit
//! events), `members`, `api_tokens` (lifecycle), `grants` (a user's own OAuth grants), `whoami` (the caller's organizations and levels), `audit_ops` (export, verify, activity,
//! settings), `auth` (bearer → principal) with `token_cache` and `token_usage`, and
//! `jwt_auth` (OAuth access tokens) over `signing_keys` (the JWT key ring) and
//! `grant_cache` (grant and session liveness, access-token principals), `oauth` (the OAuth 2.1 authorization server),
//! `bootstrap` (first start), `tokens` (API token secrets), `passwords`, `permissions`
//! (the requirement table); `ttl_map` is the bounded TTL map under both caches.

mod access;
mod api_tokens;
mod audit;
mod audit_log;
mod audit_ops;
pub mod auth;
pub mod bootstrap;
mod config;
mod control_plane;
mod dispatcher;
mod env_index;
mod events;
mod grant_cache;
mod grants;
mod insight;
pub mod jwt_auth;
mod masking;
mod members;
pub mod oauth;
pub mod passwords;
pub mod permissions;
mod plane;
mod recovery;
mod resources;
mod retention;
mod runs;
mod scope_cache;
mod signing_keys;
mod stamp;
pub mod suggest;
mod tags;
mod token_cache;
mod token_usage;
pub mod tokens;
mod ttl_map;
pub mod upstream_login;
mod whoami;

pub use api_tokens::{MAX_TOKEN_DESCRIPTION_CHARS, MAX_TOKEN_EXPIRY_DAYS, MAX_TOKEN_NAME_CHARS};
pub use audit_ops::{MAX_RETENTION_DAYS, MIN_RETENTION_DAYS};
pub use config::{AuditMode, ControlPlaneConfig};
pub use plane::LocalControlPlane;
