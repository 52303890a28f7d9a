//! Integration tests of `LocalControlPlane` over the real SQLite store and the real local
//! executor (real processes, real files). One binary; submodules under `control/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

mod access;
mod audit;
mod auth;
mod bootstrap;
mod recovery;
mod resources;
mod retention;
mod runs;
