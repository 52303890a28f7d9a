//! The audit hash chain lives in `assay_core::audit_chain`; re-exported for existing callers.
pub use assay_core::audit_chain::*;
