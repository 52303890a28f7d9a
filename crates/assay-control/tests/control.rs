//! Integration tests of `LocalControlPlane` over the real SQLite store and the real local
//! executor (real processes, real files). One binary; submodules under `control/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "control/harness.rs"]
mod harness;

#[path = "control/access.rs"]
mod access;
#[path = "control/audit.rs"]
mod audit;
#[path = "control/audit_trail.rs"]
mod audit_trail;
#[path = "control/auth.rs"]
mod auth;
#[path = "control/bootstrap.rs"]
mod bootstrap;
#[path = "control/grants.rs"]
mod grants;
#[path = "control/members.rs"]
mod members;
#[path = "control/oauth.rs"]
mod oauth;
#[path = "control/rbac.rs"]
mod rbac;
#[path = "control/recovery.rs"]
mod recovery;
#[path = "control/resources.rs"]
mod resources;
#[path = "control/retention.rs"]
mod retention;
#[path = "control/runs.rs"]
mod runs;
#[path = "control/tokens.rs"]
mod tokens;
#[path = "control/upstream.rs"]
mod upstream;
