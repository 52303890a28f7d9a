//! Assay's domain: tenancy, workflows, executions, permissions, audit events, and the
//! ports (traits) through which the rest of the system acts. This crate performs no I/O.

pub mod actor;
pub mod audit;
pub mod audit_chain;
pub mod error;
pub mod execution;
pub mod identity;
pub mod oauth;
pub mod page;
pub mod permission;
pub mod ports;
pub mod spec;
pub mod tenancy;
pub mod workflow;

pub use actor::{Actor, ClientInfo, Principal, PrincipalKind};
pub use error::{Error, Result};
pub use page::{Page, PageRequest};
pub use permission::Level;
pub use tenancy::{EnvRef, Environment, Organization};

/// Timestamps are UTC everywhere.
pub type Timestamp = time::OffsetDateTime;

/// Serde helpers for RFC 3339 timestamps, used by every model type.
pub use time::serde::rfc3339;
