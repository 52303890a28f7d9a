//! The HTTP API end to end: the real server on a loopback port over the real control
//! plane, store and executor (plus a scripted control plane for failure modes).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "http/support.rs"]
mod support;

#[path = "http/fake.rs"]
mod fake;

#[path = "http/auth.rs"]
mod auth;

#[path = "http/problems.rs"]
mod problems;

#[path = "http/workflows.rs"]
mod workflows;

#[path = "http/executions.rs"]
mod executions;

#[path = "http/system.rs"]
mod system;

#[path = "http/layers.rs"]
mod layers;

#[path = "http/org.rs"]
mod org;

#[path = "http/mcp.rs"]
mod mcp;

#[path = "http/mcp_concurrency.rs"]
mod mcp_concurrency;

#[path = "http/mcp_sessions.rs"]
mod mcp_sessions;

#[path = "http/discovery.rs"]
mod discovery;

#[path = "http/jwt_auth.rs"]
mod jwt_auth;

#[path = "http/oauth.rs"]
mod oauth;

#[path = "http/oauth_users.rs"]
mod oauth_users;

#[path = "http/grants.rs"]
mod grants;

#[path = "http/whoami.rs"]
mod whoami;

#[path = "http/tls.rs"]
mod tls;

#[path = "http/step_up.rs"]
mod step_up;

#[path = "http/upstream.rs"]
mod upstream;
