//! The one table saying which environment level each tool needs (DESIGN.md §3), and the
//! level a caller is shown tools for. Listing is a courtesy to the model: the control plane
//! authorizes every call again, whatever was listed.

use assay_core::actor::{Access, AuthMethod, Principal};
use assay_core::{EnvRef, Level};
use uuid::Uuid;

/// The level a tool needs, as declared; `None` for a name the table does not know.
pub(crate) fn declared_level(tool: &str) -> Option<Level> {
    Some(match tool {
        "build_dashboard_url"
        | "list_workflows"
        | "get_workflow"
        | "get_workflow_definition"
        | "get_workflow_metrics"
        | "list_workflowtemplates"
        | "get_workflowtemplate_definition"
        | "query_workflows"
        | "query_executions"
        | "get_workflow_schema"
        | "get_execution_schema"
        | "list_labels"
        | "list_agents"
        | "list_executions"
        | "lookup_execution_id"
        | "get_execution_info"
        | "fetch_execution_logs"
        | "get_workflow_execution_metrics"
        | "get_workflow_resource_history"
        | "wait_for_executions"
        | "list_artifacts"
        | "read_artifact" => Level::Read,
        "run_workflow" | "abort_workflow_execution" | "update_execution_tags" => Level::Run,
        "create_workflow"
        | "update_workflow"
        | "delete_workflow"
        | "create_workflowtemplate"
        | "update_workflowtemplate" => Level::Write,
        _ => return None,
    })
}

/// The level `tool` needs. A name missing from the table needs `admin`, so a tool that was
/// registered but never classified is shown to as few callers as possible (a unit test
/// fails for it anyway).
pub fn tool_level(tool: &str) -> Level {
    declared_level(tool).unwrap_or(Level::Admin)
}

/// The highest level the caller can have in `env`, used to filter `tools/list`.
///
/// When the environment reference carries IDs, this is exactly `Principal::level_in`. When
/// it carries slugs (the usual case: the URL names them), the slug cannot be resolved here
/// without a control-plane call, so this is the principal's best level in any environment
/// of its organization: `OrgAdmin` → admin, `ReadAll` → read, per-environment grants → the
/// highest grant. `None`: show no tools.
///
/// The credential's scope caps the listing, except an OAuth access token's: its user is
/// shown what their role allows up to write (the widest scope), so a client holding
/// `mcp:read` still sees `run_workflow` — calling it answers 403 `insufficient_scope`
/// over HTTP, and the client steps up (asks the user for `mcp:run`) and retries.
pub fn listing_level(principal: &Principal, env: &EnvRef) -> Option<Level> {
    let role = if let (Ok(org), Ok(env)) = (Uuid::parse_str(&env.org), Uuid::parse_str(&env.env)) {
        principal.role_level_in(org, env)
    } else {
        match &principal.access {
            Access::OrgAdmin => Some(Level::Admin),
            Access::ReadAll => Some(Level::Read),
            Access::PerEnvironment { grants } => grants.values().copied().max(),
        }
    }?;
    // `assay login` tokens are OAuth access tokens of the CLI client: the same rule.
    let user_token = matches!(
        principal.auth_method,
        AuthMethod::OAuth | AuthMethod::CliLogin
    );
    Some(match principal.scope_cap {
        Some(_) if user_token => role.min(Level::Write),
        Some(cap) => role.min(cap),
        None => role,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use assay_core::actor::PrincipalKind;
    use std::collections::BTreeMap;

    fn principal(access: Access, cap: Option<Level>) -> Principal {
        Principal {
            kind: PrincipalKind::User,
            id: Uuid::now_v7(),
            display_name: "p".into(),
            org_id: Uuid::nil(),
            access,
            scope_cap: cap,
            auth_method: AuthMethod::OAuth,
            credential_id: None,
        }
    }

    #[test]
    fn levels_follow_the_design_table() {
        assert_eq!(tool_level("list_workflows"), Level::Read);
        assert_eq!(tool_level("wait_for_executions"), Level::Read);
        assert_eq!(tool_level("run_workflow"), Level::Run);
        assert_eq!(tool_level("update_execution_tags"), Level::Run);
        assert_eq!(tool_level("delete_workflow"), Level::Write);
        assert_eq!(tool_level("no_such_tool"), Level::Admin);
    }

    #[test]
    fn listing_level_by_slug_is_the_best_grant_capped_by_scope() {
        let slugs = EnvRef::new("acme", "dev");
        let admin = principal(Access::OrgAdmin, None);
        assert_eq!(listing_level(&admin, &slugs), Some(Level::Admin));
        // A scope from another kind of credential caps the listing…
        let mut admin_read_scope = principal(Access::OrgAdmin, Some(Level::Read));
        admin_read_scope.auth_method = AuthMethod::Session;
        assert_eq!(listing_level(&admin_read_scope, &slugs), Some(Level::Read));
        // …an OAuth token's does not (its user may step up), up to the widest scope.
        admin_read_scope.auth_method = AuthMethod::OAuth;
        assert_eq!(listing_level(&admin_read_scope, &slugs), Some(Level::Write));
        assert_eq!(
            listing_level(&principal(Access::ReadAll, None), &slugs),
            Some(Level::Read)
        );
        let grants: BTreeMap<Uuid, Level> = [
            (Uuid::now_v7(), Level::Read),
            (Uuid::now_v7(), Level::Write),
        ]
        .into();
        let member = principal(Access::PerEnvironment { grants }, Some(Level::Read));
        assert_eq!(listing_level(&member, &slugs), Some(Level::Write));
        let reader = principal(
            Access::PerEnvironment {
                grants: [(Uuid::now_v7(), Level::Read)].into(),
            },
            Some(Level::Write),
        );
        assert_eq!(listing_level(&reader, &slugs), Some(Level::Read));
        let nobody = principal(
            Access::PerEnvironment {
                grants: BTreeMap::new(),
            },
            None,
        );
        assert_eq!(listing_level(&nobody, &slugs), None);
    }

    #[test]
    fn listing_level_by_ids_is_exact() {
        let dev = Uuid::now_v7();
        let staging = Uuid::now_v7();
        let member = principal(
            Access::PerEnvironment {
                grants: [(dev, Level::Write), (staging, Level::Read)].into(),
            },
            None,
        );
        let ids = |env: Uuid| EnvRef::new(Uuid::nil().to_string(), env.to_string());
        assert_eq!(listing_level(&member, &ids(dev)), Some(Level::Write));
        assert_eq!(listing_level(&member, &ids(staging)), Some(Level::Read));
        assert_eq!(listing_level(&member, &ids(Uuid::now_v7())), None);
    }
}
