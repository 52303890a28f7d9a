//! The one table saying what each operation requires (DESIGN.md §3) — an environment
//! level, organization admin, or just an authenticated member of the organization — and
//! the audit action name each operation is recorded under.

use assay_core::Level;

/// What a principal needs for an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Requirement {
    /// At least this level in the addressed environment.
    Env(Level),
    /// Organization owner or admin (`Access::OrgAdmin`: owner/admin users, admin API
    /// tokens), not narrowed by a scope below admin.
    OrgAdmin,
    /// Any member of the organization; the operation itself limits what is touched (own
    /// API tokens only, never more power than the caller has). API tokens other than
    /// admin tokens are refused.
    Member,
    /// A user acting for themselves (their own OAuth grants); every API token is refused,
    /// an admin token too: it acts for no user.
    User,
    /// Any authenticated principal, in no particular organization: the operation shows the
    /// caller only itself (`whoami`).
    Caller,
}

/// One variant per `ControlPlane` method.
///
/// EDITORS: when you add a method to `assay_core::ports::ControlPlane`, add a variant here,
/// list it in `ALL`, and give it a level and an action. The unit test below reads the trait's
/// source and fails until you do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    ListWorkflows,
    GetWorkflow,
    CreateWorkflow,
    UpdateWorkflow,
    ApplyWorkflow,
    DeleteWorkflow,
    ListTemplates,
    GetTemplate,
    CreateTemplate,
    UpdateTemplate,
    ApplyTemplate,
    DeleteTemplate,
    RunWorkflow,
    ListExecutions,
    GetExecution,
    WaitExecution,
    AbortExecution,
    UpdateExecutionTags,
    ExecutionLogs,
    FollowExecutionLogs,
    ListArtifacts,
    ReadArtifact,
    DownloadArtifact,
    WorkflowMetrics,
    ExecutionMetrics,
    ResourceHistory,
    ListLabels,
    ListRunners,
    ListMembers,
    AddMember,
    UpdateMember,
    RemoveMember,
    CreateApiToken,
    ListApiTokens,
    GetApiToken,
    RotateApiToken,
    RevokeApiToken,
    ListMyGrants,
    RevokeMyGrant,
    Whoami,
    ExportAudit,
    VerifyAudit,
    AuditActors,
    AuditSettings,
    SetAuditSettings,
}

impl Operation {
    pub const ALL: &[Operation] = &[
        Self::ListWorkflows,
        Self::GetWorkflow,
        Self::CreateWorkflow,
        Self::UpdateWorkflow,
        Self::ApplyWorkflow,
        Self::DeleteWorkflow,
        Self::ListTemplates,
        Self::GetTemplate,
        Self::CreateTemplate,
        Self::UpdateTemplate,
        Self::ApplyTemplate,
        Self::DeleteTemplate,
        Self::RunWorkflow,
        Self::ListExecutions,
        Self::GetExecution,
        Self::WaitExecution,
        Self::AbortExecution,
        Self::UpdateExecutionTags,
        Self::ExecutionLogs,
        Self::FollowExecutionLogs,
        Self::ListArtifacts,
        Self::ReadArtifact,
        Self::DownloadArtifact,
        Self::WorkflowMetrics,
        Self::ExecutionMetrics,
        Self::ResourceHistory,
        Self::ListLabels,
        Self::ListRunners,
        Self::ListMembers,
        Self::AddMember,
        Self::UpdateMember,
        Self::RemoveMember,
        Self::CreateApiToken,
        Self::ListApiTokens,
        Self::GetApiToken,
        Self::RotateApiToken,
        Self::RevokeApiToken,
        Self::ListMyGrants,
        Self::RevokeMyGrant,
        Self::Whoami,
        Self::ExportAudit,
        Self::VerifyAudit,
        Self::AuditActors,
        Self::AuditSettings,
        Self::SetAuditSettings,
    ];

    /// What a principal needs for this operation.
    pub fn requirement(self) -> Requirement {
        use Operation::*;
        match self {
            ListWorkflows | GetWorkflow | ListTemplates | GetTemplate | ListExecutions
            | WaitExecution | GetExecution | ExecutionLogs | FollowExecutionLogs
            | ListArtifacts | ReadArtifact | DownloadArtifact | WorkflowMetrics
            | ExecutionMetrics | ResourceHistory | ListLabels | ListRunners => {
                Requirement::Env(Level::Read)
            }
            RunWorkflow | AbortExecution | UpdateExecutionTags => Requirement::Env(Level::Run),
            CreateWorkflow | UpdateWorkflow | ApplyWorkflow | DeleteWorkflow | CreateTemplate
            | UpdateTemplate | ApplyTemplate | DeleteTemplate => Requirement::Env(Level::Write),
            ListMembers | AddMember | UpdateMember | RemoveMember | ExportAudit | VerifyAudit
            | AuditActors | AuditSettings | SetAuditSettings => Requirement::OrgAdmin,
            CreateApiToken | ListApiTokens | GetApiToken | RotateApiToken | RevokeApiToken => {
                Requirement::Member
            }
            ListMyGrants | RevokeMyGrant => Requirement::User,
            Whoami => Requirement::Caller,
        }
    }

    /// The environment level this operation needs, for environment-scoped operations.
    pub fn required_level(self) -> Option<Level> {
        match self.requirement() {
            Requirement::Env(level) => Some(level),
            Requirement::OrgAdmin
            | Requirement::Member
            | Requirement::User
            | Requirement::Caller => None,
        }
    }

    /// The audit action name (`AuditEvent::action`).
    pub fn action(self) -> &'static str {
        use Operation::*;
        match self {
            ListWorkflows => "workflow.list",
            GetWorkflow => "workflow.get",
            CreateWorkflow => "workflow.create",
            UpdateWorkflow => "workflow.update",
            ApplyWorkflow => "workflow.apply",
            DeleteWorkflow => "workflow.delete",
            ListTemplates => "template.list",
            GetTemplate => "template.get",
            CreateTemplate => "template.create",
            UpdateTemplate => "template.update",
            ApplyTemplate => "template.apply",
            DeleteTemplate => "template.delete",
            RunWorkflow => "workflow.run",
            ListExecutions => "execution.list",
            GetExecution => "execution.get",
            WaitExecution => "execution.wait",
            AbortExecution => "execution.abort",
            UpdateExecutionTags => "execution.tags.update",
            ExecutionLogs => "execution.logs.read",
            FollowExecutionLogs => "execution.logs.follow",
            ListArtifacts => "artifact.list",
            ReadArtifact => "artifact.read",
            DownloadArtifact => "artifact.download",
            WorkflowMetrics => "workflow.metrics",
            ExecutionMetrics => "execution.metrics",
            ResourceHistory => "workflow.resource_history",
            ListLabels => "label.list",
            ListRunners => "runner.list",
            ListMembers => "member.list",
            AddMember => "member.added",
            UpdateMember => "member.updated",
            RemoveMember => "member.removed",
            CreateApiToken => "token.created",
            ListApiTokens => "token.list",
            GetApiToken => "token.get",
            RotateApiToken => "token.rotated",
            RevokeApiToken => "token.revoked",
            ListMyGrants => "oauth.grant.list",
            RevokeMyGrant => "oauth.grant.revoked",
            Whoami => "identity.whoami",
            ExportAudit => "audit.export",
            VerifyAudit => "audit.verify",
            AuditActors => "audit.actors",
            AuditSettings => "audit.settings.get",
            SetAuditSettings => "audit.settings.updated",
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The `ControlPlane` method each operation stands for (test-only mapping, so the
    /// check below can compare against the trait's source).
    fn method(op: Operation) -> &'static str {
        use Operation::*;
        match op {
            ListWorkflows => "list_workflows",
            GetWorkflow => "get_workflow",
            CreateWorkflow => "create_workflow",
            UpdateWorkflow => "update_workflow",
            ApplyWorkflow => "apply_workflow",
            DeleteWorkflow => "delete_workflow",
            ListTemplates => "list_templates",
            GetTemplate => "get_template",
            CreateTemplate => "create_template",
            UpdateTemplate => "update_template",
            ApplyTemplate => "apply_template",
            DeleteTemplate => "delete_template",
            RunWorkflow => "run_workflow",
            ListExecutions => "list_executions",
            GetExecution => "get_execution",
            WaitExecution => "wait_for_execution",
            AbortExecution => "abort_execution",
            UpdateExecutionTags => "update_execution_tags",
            ExecutionLogs => "execution_logs",
            FollowExecutionLogs => "follow_execution_logs",
            ListArtifacts => "list_artifacts",
            ReadArtifact => "read_artifact",
            DownloadArtifact => "download_artifact",
            WorkflowMetrics => "workflow_metrics",
            ExecutionMetrics => "execution_metrics",
            ResourceHistory => "resource_history",
            ListLabels => "list_labels",
            ListRunners => "list_runners",
            ListMembers => "list_members",
            AddMember => "add_member",
            UpdateMember => "update_member",
            RemoveMember => "remove_member",
            CreateApiToken => "create_api_token",
            ListApiTokens => "list_api_tokens",
            GetApiToken => "get_api_token",
            RotateApiToken => "rotate_api_token",
            RevokeApiToken => "revoke_api_token",
            ListMyGrants => "list_my_grants",
            RevokeMyGrant => "revoke_my_grant",
            Whoami => "whoami",
            ExportAudit => "export_audit",
            VerifyAudit => "verify_audit",
            AuditActors => "audit_actors",
            AuditSettings => "audit_settings",
            SetAuditSettings => "set_audit_settings",
        }
    }

    /// Method names declared in `trait ControlPlane`, read from assay-core's source.
    fn control_plane_methods() -> BTreeSet<String> {
        let source = include_str!("../../assay-core/src/ports.rs");
        let start = source
            .find("pub trait ControlPlane")
            .expect("ports.rs declares ControlPlane");
        let body = &source[start..];
        // The trait ends at the first line that is exactly "}".
        let end = body
            .find("\n}\n")
            .expect("ControlPlane has a closing brace");
        body[..end]
            .split("async fn ")
            .skip(1)
            .map(|rest| {
                rest.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn every_control_plane_method_has_exactly_one_operation() {
        let methods = control_plane_methods();
        assert_eq!(methods.len(), 45, "methods found: {methods:?}");
        let ops: BTreeSet<String> = Operation::ALL
            .iter()
            .map(|op| method(*op).to_string())
            .collect();
        assert_eq!(
            ops.len(),
            Operation::ALL.len(),
            "ALL lists an operation twice"
        );
        assert_eq!(ops, methods);
    }

    #[test]
    fn action_names_are_unique_and_dotted() {
        let actions: BTreeSet<&str> = Operation::ALL.iter().map(|op| op.action()).collect();
        assert_eq!(actions.len(), Operation::ALL.len());
        for action in actions {
            assert!(action.contains('.'), "{action}");
            assert!(
                action
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_'),
                "{action}"
            );
        }
    }

    #[test]
    fn levels_follow_the_design_table() {
        let env = |op: Operation| op.required_level();
        assert_eq!(env(Operation::ListWorkflows), Some(Level::Read));
        assert_eq!(env(Operation::FollowExecutionLogs), Some(Level::Read));
        assert_eq!(env(Operation::DownloadArtifact), Some(Level::Read));
        assert_eq!(env(Operation::ListRunners), Some(Level::Read));
        assert_eq!(env(Operation::RunWorkflow), Some(Level::Run));
        assert_eq!(env(Operation::AbortExecution), Some(Level::Run));
        assert_eq!(env(Operation::UpdateExecutionTags), Some(Level::Run));
        assert_eq!(env(Operation::ApplyTemplate), Some(Level::Write));
        assert_eq!(env(Operation::DeleteWorkflow), Some(Level::Write));
        assert_eq!(env(Operation::AddMember), None);
        let count = |req| {
            Operation::ALL
                .iter()
                .filter(|op| op.requirement() == req)
                .count()
        };
        assert_eq!(count(Requirement::Env(Level::Read)), 17);
        assert_eq!(count(Requirement::Env(Level::Run)), 3);
        assert_eq!(count(Requirement::Env(Level::Write)), 8);
        assert_eq!(count(Requirement::Env(Level::Admin)), 0);
        assert_eq!(count(Requirement::OrgAdmin), 9);
        assert_eq!(count(Requirement::Member), 5);
        assert_eq!(count(Requirement::User), 2);
        assert_eq!(count(Requirement::Caller), 1);
        assert_eq!(
            Operation::SetAuditSettings.requirement(),
            Requirement::OrgAdmin
        );
        assert_eq!(Operation::RotateApiToken.requirement(), Requirement::Member);
        assert_eq!(Operation::RevokeMyGrant.requirement(), Requirement::User);
    }
}
