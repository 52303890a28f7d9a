//! The domain error. Every layer above maps it to its own wire form
//! (problem+json on REST, `isError` results on MCP) without losing the kind.

use crate::permission::Level;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One problem with one field of a submitted document, e.g.
/// `spec.steps[2].timeout: "5x" is not a duration`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The resource does not exist *or* the caller may not know it exists.
    #[error("{kind} {name:?} not found")]
    NotFound { kind: &'static str, name: String },
    /// A submitted document or argument is invalid; every problem is listed.
    #[error("invalid input: {}", join(.0))]
    Invalid(Vec<FieldError>),
    /// The caller is known but lacks the level the operation needs.
    #[error("forbidden: this needs {needed} permission on the environment")]
    Forbidden { needed: Level },
    /// The credential is an OAuth access token whose scope is narrower than `needed`,
    /// while the user's own role would allow the operation: the client may ask the user
    /// for the wider scope (step-up) and retry. Only for `needed` ≤ write, the highest
    /// level an OAuth scope (`mcp:<level>`) can carry.
    #[error(
        "insufficient scope: this needs the mcp:{needed} scope, which the access token does not carry"
    )]
    InsufficientScope { needed: Level },
    /// The caller is known but this kind of principal may not do this at all, whatever its
    /// level (e.g. an API token asking for a user's own OAuth grants); the text says why.
    #[error("refused: {0}")]
    Refused(String),
    /// No or bad credentials.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// A resource with that name exists already, or the state forbids the change.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Input larger than a limit.
    #[error("too large: {0}")]
    TooLarge(String),
    /// A dependency (database, audit store, executor) cannot serve now; fail closed.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected failure; the message is for logs, not for callers.
    #[error("internal error: {0}")]
    Internal(String),
}

fn join(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    pub fn not_found(kind: &'static str, name: impl Into<String>) -> Self {
        Self::NotFound {
            kind,
            name: name.into(),
        }
    }

    pub fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError {
            path: path.into(),
            message: message.into(),
        }])
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }
}
