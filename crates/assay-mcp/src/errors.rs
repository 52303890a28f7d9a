//! Tool failures as the model sees them: `isError` results whose text says what went wrong
//! and what to do next, never JSON-RPC errors (clients hide those from the model).

use assay_core::{Error, Level};

/// Why a tool call failed.
#[derive(Debug)]
pub(crate) enum ToolError {
    /// The control plane refused or failed.
    Core(Error),
    /// The arguments did not decode.
    Arguments(String),
    /// A failure the tool itself explains fully (already actionable).
    Message(String),
}

impl From<Error> for ToolError {
    fn from(e: Error) -> Self {
        Self::Core(e)
    }
}

impl ToolError {
    pub(crate) fn message(msg: impl Into<String>) -> Self {
        Self::Message(msg.into())
    }

    /// The text of the `isError` result for a call of `tool`.
    pub(crate) fn render(&self, tool: &str) -> String {
        match self {
            Self::Arguments(e) => format!(
                "Invalid arguments for {tool}: {e}. Check the tool's input schema and call it again."
            ),
            Self::Message(m) => m.clone(),
            Self::Core(e) => core_message(e, tool),
        }
    }
}

/// `NotFound` names may carry the control plane's suggestions:
/// `smok; did you mean: smoke, smoky?` → (`smok`, [`smoke`, `smoky`]).
pub(crate) fn split_suggestions(name: &str) -> (&str, Vec<&str>) {
    match name.split_once("; did you mean: ") {
        Some((name, rest)) => (
            name,
            rest.trim_end_matches('?')
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect(),
        ),
        None => (name, Vec::new()),
    }
}

fn core_message(e: &Error, tool: &str) -> String {
    match e {
        Error::NotFound { kind, name } => {
            let (name, suggestions) = split_suggestions(name);
            let mut msg = format!("{} {name:?} not found.", capitalized(kind));
            if !suggestions.is_empty() {
                msg.push_str(&format!(
                    " Closest existing names: {}.",
                    suggestions.join(", ")
                ));
            }
            msg.push(' ');
            msg.push_str(match *kind {
                "workflow" => "Call list_workflows to see every workflow name.",
                "template" => "Call list_workflowtemplates to see every template name.",
                "execution" => {
                    "Use an ID from list_executions, or a name like <workflow>-<number> (lookup_execution_id)."
                }
                "artifact" => {
                    "Call list_artifacts with the execution ID for the valid fileName values."
                }
                "environment" | "organization" => {
                    "Check the organization and environment this MCP server is configured for."
                }
                _ => "Check the name and try again.",
            });
            msg
        }
        Error::Invalid(fields) => {
            let mut msg = String::from("Invalid input:");
            for f in fields {
                msg.push_str("\n- ");
                msg.push_str(&f.to_string());
            }
            msg.push_str(&format!("\nFix these and call {tool} again."));
            if tool.contains("workflow") && fields.iter().any(|f| f.path.starts_with("spec")) {
                msg.push_str(" get_workflow_schema shows the document format.");
            }
            msg
        }
        Error::Forbidden { needed } => format!(
            "Forbidden: {tool} needs {needed} permission on this environment, and this credential does not have it. {}",
            step_up_hint(*needed)
        ),
        // Over Streamable HTTP this becomes a 403 step-up challenge (see `step_up`); this
        // text is what stdio and legacy SSE clients, which cannot step up, get.
        Error::InsufficientScope { needed } => format!(
            "Insufficient scope: {tool} needs the {scope} scope, which this access token does not carry; your role allows it. Authorize again granting {scope} (your MCP client may offer to), then retry.",
            scope = crate::step_up::scope_for(*needed)
        ),
        Error::Refused(reason) => format!("Refused: {reason}."),
        Error::Unauthenticated(reason) => format!(
            "Not authenticated: {reason}. Sign in again (assay login) or use a valid API token, then retry."
        ),
        Error::Conflict(reason) => {
            let hint = match tool {
                "create_workflow" => " To change an existing workflow, call update_workflow.",
                "create_workflowtemplate" => {
                    " To change an existing template, call update_workflowtemplate."
                }
                _ => "",
            };
            format!("Conflict: {reason}.{hint}")
        }
        Error::TooLarge(reason) => format!(
            "Too large: {reason}. Narrow the request (a smaller document, a line range, grep or a lower limit)."
        ),
        Error::Unavailable(reason) => {
            format!("Temporarily unavailable: {reason}. Retry in a few seconds.")
        }
        Error::Internal(detail) => {
            // The detail is for operators, not for callers.
            tracing::error!(tool, %detail, "internal error in MCP tool");
            "Internal server error (not caused by your input). Retry later; if it persists, report it to the Assay administrator.".into()
        }
    }
}

fn step_up_hint(needed: Level) -> String {
    format!(
        "Ask an organization admin for {needed} access to this environment, or, when signed in with OAuth, re-authorize with the mcp:{scope} scope.",
        scope = match needed {
            Level::Read => "read",
            Level::Run => "run",
            Level::Write | Level::Admin => "write",
        }
    )
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use assay_core::error::FieldError;

    #[test]
    fn not_found_lists_the_closest_names_and_the_next_call() {
        let e = ToolError::from(Error::not_found(
            "workflow",
            "smok; did you mean: smoke, smoky?",
        ));
        assert_eq!(
            e.render("run_workflow"),
            "Workflow \"smok\" not found. Closest existing names: smoke, smoky. Call list_workflows to see every workflow name."
        );
        let e = ToolError::from(Error::not_found("artifact", "x.txt"));
        assert_eq!(
            e.render("read_artifact"),
            "Artifact \"x.txt\" not found. Call list_artifacts with the execution ID for the valid fileName values."
        );
    }

    #[test]
    fn forbidden_names_the_needed_level_and_scope() {
        let e = ToolError::from(Error::Forbidden { needed: Level::Run });
        let text = e.render("run_workflow");
        assert!(
            text.starts_with("Forbidden: run_workflow needs run permission on this environment"),
            "{text}"
        );
        assert!(text.contains("mcp:run"), "{text}");
    }

    #[test]
    fn insufficient_scope_names_the_scope_to_grant() {
        let e = ToolError::from(Error::InsufficientScope { needed: Level::Run });
        assert_eq!(
            e.render("run_workflow"),
            "Insufficient scope: run_workflow needs the mcp:run scope, which this access token does not carry; your role allows it. Authorize again granting mcp:run (your MCP client may offer to), then retry."
        );
    }

    #[test]
    fn invalid_lists_every_field() {
        let e = ToolError::from(Error::Invalid(vec![
            FieldError {
                path: "spec.steps[0].timeout".into(),
                message: "\"5x\" is not a duration".into(),
            },
            FieldError {
                path: "metadata.name".into(),
                message: "required".into(),
            },
        ]));
        assert_eq!(
            e.render("create_workflow"),
            "Invalid input:\n- spec.steps[0].timeout: \"5x\" is not a duration\n- metadata.name: required\nFix these and call create_workflow again. get_workflow_schema shows the document format."
        );
    }

    #[test]
    fn internal_details_are_not_shown() {
        let e = ToolError::from(Error::Internal("db password=hunter2".into()));
        assert!(!e.render("list_workflows").contains("hunter2"));
    }
}
