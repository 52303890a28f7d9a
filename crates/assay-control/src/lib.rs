//! `LocalControlPlane`: the one place where an operation happens — resolve the
//! environment, authorize, act, audit — plus the background work that keeps executions
//! honest: the FIFO dispatcher with its concurrency limit, start-up recovery and workspace
//! retention.
//!
//! Layout: `access` (environment resolution + authorization), `audit` (one event per call,
//! committed before the result is returned), `resources` (workflows and templates), `runs`
//! (run, abort, tags), `insight` (health and metrics), `dispatcher` (queue and runner),
//! `events` (live execution state), `recovery`, `retention`, `auth` (bearer → principal),
//! `bootstrap` (first start), `tokens` (API token secrets), `permissions` (the level table).

mod access;
mod audit;
pub mod auth;
pub mod bootstrap;
mod config;
mod control_plane;
mod dispatcher;
mod events;
mod insight;
mod masking;
pub mod permissions;
mod plane;
mod recovery;
mod resources;
mod retention;
mod runs;
mod stamp;
pub mod suggest;
mod tags;
pub mod tokens;

pub use config::ControlPlaneConfig;
pub use plane::LocalControlPlane;
