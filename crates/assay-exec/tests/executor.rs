//! Integration tests of the local executor: real processes, real files, real git.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "executor/common.rs"]
mod common;

#[path = "executor/artifacts.rs"]
mod artifacts;
#[path = "executor/env.rs"]
mod env;
#[path = "executor/flow.rs"]
mod flow;
#[path = "executor/git.rs"]
mod git;
#[path = "executor/junit.rs"]
mod junit;
#[path = "executor/kill.rs"]
mod kill;
#[path = "executor/logs.rs"]
mod logs;
#[path = "executor/metrics.rs"]
mod metrics;
