//! THE route table: every route the server answers, declared once. The axum router and
//! the OpenAPI document are both built from [`ROUTES`], so they cannot drift, and every
//! route states the permission it needs (enforced by the control plane; here it
//! documents the contract and decides which routes need a bearer token at all).
//!
//! Environment routes live under [`ENV_BASE`] and need an environment level; organization
//! routes (members, API tokens, audit) live under [`ORG_BASE`] and need organization admin
//! rights or just an authenticated principal (the control plane decides per call). One
//! authenticated route lives outside both: [`ME`] (`GET /v1/me`), the caller itself.

use crate::AppState;
use crate::handlers::documents::{Templates, Workflows};
use crate::handlers::{
    artifacts, audit, documents, executions, grants, insight, me, members, system, tokens,
};
use axum::Router;
use axum::routing::{MethodFilter, MethodRouter, on};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Verb {
    pub const ALL: [Verb; 5] = [Verb::Get, Verb::Post, Verb::Put, Verb::Patch, Verb::Delete];
}

impl Verb {
    pub fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Put => MethodFilter::PUT,
            Verb::Patch => MethodFilter::PATCH,
            Verb::Delete => MethodFilter::DELETE,
        }
    }

    pub fn method(self) -> axum::http::Method {
        match self {
            Verb::Get => axum::http::Method::GET,
            Verb::Post => axum::http::Method::POST,
            Verb::Put => axum::http::Method::PUT,
            Verb::Patch => axum::http::Method::PATCH,
            Verb::Delete => axum::http::Method::DELETE,
        }
    }

    /// Lower-case, as OpenAPI path items spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Post => "post",
            Verb::Put => "put",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
        }
    }
}

/// What a route needs (DESIGN.md §3): nothing, an environment level, or an
/// organization-level right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requires {
    /// No token: health, readiness, the OpenAPI document.
    Public,
    /// Environment levels.
    Read,
    Run,
    Write,
    /// Organization admin: an owner or admin user, or an admin API token (members, audit).
    OrgAdmin,
    /// Any authenticated principal (of the organization, on organization routes); the
    /// control plane decides per call (API tokens: anyone manages their own, admins
    /// manage all; `GET /v1/me`: the caller sees only itself).
    Authenticated,
}

impl Requires {
    pub fn as_str(self) -> &'static str {
        match self {
            Requires::Public => "public",
            Requires::Read => "read",
            Requires::Run => "run",
            Requires::Write => "write",
            Requires::OrgAdmin => "org-admin",
            Requires::Authenticated => "authenticated",
        }
    }

    /// Whether this is an environment level (as opposed to public or organization-wide).
    pub fn is_environment_level(self) -> bool {
        matches!(self, Requires::Read | Requires::Run | Requires::Write)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    String,
    Integer,
    Boolean,
    /// RFC 3339.
    DateTime,
    /// Comma-separated execution statuses.
    StatusList,
}

#[derive(Debug, Clone, Copy)]
pub struct QueryParam {
    pub name: &'static str,
    pub ty: ParamType,
    pub description: &'static str,
}

const fn q(name: &'static str, ty: ParamType, description: &'static str) -> QueryParam {
    QueryParam {
        name,
        ty,
        description,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestBody {
    None,
    /// A workflow/template document (YAML or JSON text).
    Document,
    /// A JSON object described by a component schema.
    Json {
        schema: &'static str,
        required: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// JSON of a component schema.
    Json {
        status: u16,
        schema: &'static str,
    },
    /// JSON, or the document source as `text/yaml` when asked by `Accept`.
    JsonOrYaml {
        schema: &'static str,
    },
    /// JSON, or raw bytes with `?download=true`.
    JsonOrDownload {
        schema: &'static str,
    },
    /// `application/x-ndjson`, one schema object per line.
    Ndjson {
        schema: &'static str,
    },
    NoContent,
    /// 201 when created, 200 when replaced.
    CreatedOrOk {
        schema: &'static str,
    },
    /// A streamed export: `application/x-ndjson` (one schema object per line) or
    /// `text/csv` with a header row, chosen by `?format=`.
    Export {
        schema: &'static str,
    },
}

pub type Handler = fn(MethodFilter) -> MethodRouter<AppState>;

pub struct Route {
    pub verb: Verb,
    /// axum path syntax (`{name}`, `{*path}`).
    pub path: &'static str,
    pub operation_id: &'static str,
    pub summary: &'static str,
    /// Groups operations in the OpenAPI document.
    pub tag: &'static str,
    pub requires: Requires,
    pub query: &'static [QueryParam],
    pub body: RequestBody,
    pub reply: Reply,
    pub handler: Handler,
}

macro_rules! env_path {
    ($rest:literal) => {
        concat!("/v1/organizations/{org}/environments/{env}", $rest)
    };
}

macro_rules! org_path {
    ($rest:literal) => {
        concat!("/v1/organizations/{org}", $rest)
    };
}

/// Where every environment-scoped route lives.
pub const ENV_BASE: &str = "/v1/organizations/{org}/environments/{env}";
/// Where every organization-scoped route lives (members, API tokens, audit).
pub const ORG_BASE: &str = "/v1/organizations/{org}";
/// The caller itself: the only authenticated route that names no organization.
pub const ME: &str = "/v1/me";

use ParamType::{Boolean, DateTime, Integer, StatusList, String as Str};

const PAGE: [QueryParam; 2] = [
    q("limit", Integer, "Page size (default 50, max 500)."),
    q("cursor", Str, "The previous page's next_cursor."),
];
const DOC_LIST: &[QueryParam] = &[
    q(
        "selector",
        Str,
        "Label selector: key=value, key!=value, key; comma-separated (AND).",
    ),
    q(
        "search",
        Str,
        "Case-insensitive substring of name or description.",
    ),
    PAGE[0],
    PAGE[1],
];
const EXECUTION_LIST: &[QueryParam] = &[
    q("workflow", Str, "Only executions of this workflow."),
    q(
        "status",
        StatusList,
        "Comma-separated statuses, e.g. passed,failed.",
    ),
    q(
        "tags",
        Str,
        "Tag selector, same grammar as the label selector.",
    ),
    q(
        "labels",
        Str,
        "Selector over the workflow labels recorded on the execution.",
    ),
    q("since", DateTime, "Queued at or after (RFC 3339)."),
    q("until", DateTime, "Queued at or before (RFC 3339)."),
    PAGE[0],
    PAGE[1],
];
/// Below the 30 s REST timeout, so a wait always answers; clients call again to wait longer.
pub const MAX_WAIT_SECS: u64 = 25;

const WAIT: &[QueryParam] = &[q(
    "timeout_secs",
    Integer,
    "How long to wait for a terminal status (default and maximum 25); then the execution is returned as it is.",
)];

const LOGS: &[QueryParam] = &[
    q("step", Str, "Only this step (reference or name)."),
    q(
        "tail",
        Integer,
        "Last N lines (default 200 when no range is given).",
    ),
    q("from_line", Integer, "First line, 1-based inclusive."),
    q("to_line", Integer, "Last line, inclusive."),
    q("grep", Str, "Regular expression; only matching lines."),
    q(
        "max_lines",
        Integer,
        "Cap on returned lines (default 1000, max 10000).",
    ),
];
const LOG_STREAM: &[QueryParam] = &[
    q("step", Str, "Only this step (reference or name)."),
    q(
        "after_line",
        Integer,
        "Start after this line number (default 0).",
    ),
];
const ARTIFACT: &[QueryParam] = &[
    q(
        "download",
        Boolean,
        "true: the raw bytes as an attachment instead of JSON.",
    ),
    q("from_line", Integer, "First line, 1-based inclusive."),
    q("to_line", Integer, "Last line, inclusive."),
    q("grep", Str, "Regular expression; only matching lines."),
    q(
        "context",
        Integer,
        "Lines of context around each grep match.",
    ),
    q("max_lines", Integer, "Cap on returned lines."),
];
const METRICS: &[QueryParam] = &[q(
    "last",
    Integer,
    "Executions considered (default 100, 1 to 1000).",
)];
const HISTORY: &[QueryParam] = &[q(
    "last",
    Integer,
    "Executions considered (default 20, 1 to 200).",
)];
const AUDIT_EXPORT: &[QueryParam] = &[
    q("since", DateTime, "Events at or after (RFC 3339)."),
    q("until", DateTime, "Events at or before (RFC 3339)."),
    q("actor", Str, "Actor ID, or exact actor display name."),
    q(
        "action",
        Str,
        "Exact action, or a prefix ending in * (e.g. token.*).",
    ),
    q("env", Str, "Environment ID or slug."),
    q("outcome", Str, "success, denied or error."),
    q(
        "format",
        Str,
        "jsonl (default, application/x-ndjson) or csv.",
    ),
];
const AUDIT_ACTORS: &[QueryParam] = &[
    q(
        "since",
        DateTime,
        "Active at or after (RFC 3339; default 30 days ago).",
    ),
    q(
        "until",
        DateTime,
        "Active at or before (RFC 3339; default now).",
    ),
];

/// Every route. Add a route here and nowhere else.
pub static ROUTES: &[Route] = &[
    // --- public ---------------------------------------------------------------------
    Route {
        verb: Verb::Get,
        path: "/healthz",
        operation_id: "healthz",
        summary: "Liveness: the process answers.",
        tag: "system",
        requires: Requires::Public,
        query: &[],
        body: RequestBody::None,
        reply: Reply::Json {
            status: 200,
            schema: "Status",
        },
        handler: |m| on(m, system::healthz),
    },
    Route {
        verb: Verb::Get,
        path: "/readyz",
        operation_id: "readyz",
        summary: "Readiness: the database answers.",
        tag: "system",
        requires: Requires::Public,
        query: &[],
        body: RequestBody::None,
        reply: Reply::Json {
            status: 200,
            schema: "Status",
        },
        handler: |m| on(m, system::readyz),
    },
    Route {
        verb: Verb::Get,
        path: "/v1/openapi.json",
        operation_id: "openapi",
        summary: "This API as an OpenAPI 3.1 document.",
        tag: "system",
        requires: Requires::Public,
        query: &[],
        body: RequestBody::None,
        reply: Reply::Json {
            status: 200,
            schema: "OpenApi",
        },
        handler: |m| on(m, system::openapi),
    },
    // --- the caller -------------------------------------------------------------------
    Route {
        verb: Verb::Get,
        path: ME,
        operation_id: "whoami",
        summary: "Who you are: per organization you belong to, your role, principal and the environments you can reach with your level.",
        tag: "identity",
        requires: Requires::Authenticated,
        query: &[],
        body: RequestBody::None,
        reply: Reply::Json {
            status: 200,
            schema: "Identity",
        },
        handler: |m| on(m, me::whoami),
    },
    // --- workflows --------------------------------------------------------------------
    Route {
        verb: Verb::Get,
        path: env_path!("/workflows"),
        operation_id: "listWorkflows",
        summary: "List workflows.",
        tag: "workflows",
        requires: Requires::Read,
        query: DOC_LIST,
        body: RequestBody::None,
        reply: Reply::Json {
            status: 200,
            schema: "WorkflowSummaryPage",
        },
        handler: |m| on(m, documents::list::<Workflows>),
    },
    Route {
        verb: Verb::Post,
        path: env_path!("/workflows"),
        operation_id: "createWorkflow",
        summary: "Create a workflow from a TestWorkflow document; 409 if the name exists.",
        tag: "workflows",
        requires: Requires::Write,
        query: &[],
        body: RequestBody::Document,
        reply: Reply::Json {
            status: 201,
            schema: "WorkflowDetail",
        },
        handler: |m| on(m, documents::create::<Workflows>),
    },
    Route {
        verb: Verb::Get,
        path: env_path!("/workflows/{name}"),
        operation_id: "getWorkflow",
        summary: "Get a workflow; Accept: text/yaml returns the source as submitted.",
        tag: "workflows",
        requires: Requires::Read,
        query: &[],
        body: RequestBody::None,
        reply: Reply::JsonOrYaml {
            schema: "WorkflowDetail",
        },
        handler: |m| on(m, documents::get::<Workflows>),
    },
    Route {
        verb: Verb::Put,
        path: env_path!("/workflows/{name}"),
        operation_id: "putWorkflow",
        summary: "Create or replace a workflow (If-Match: * only replaces).",
        tag: "workflows",
        requires: Requires::Write,
        query: &[],
        body: RequestBody::Document,
        reply: Reply::CreatedOrOk {
            schema: "WorkflowDetail",
        },
        handler: |m| on(m, documents::put::<Workflows>),
    },
    Route {
        verb: Verb::Delete,
        path: env_path!("/workflows/{name}"),
        operation_id: "deleteWorkflow",
        summary: "Delete a workflow.",
        tag: "workflows",
        requires: Requires::Write,
        query: &[],
        body: RequestBody::None,
        reply: Reply::NoContent,
        handler: |m| on(m, documents::delete::<Workflows>),
    },
    Route {
        verb: Verb::Get,
        path: env_path!("/workflows/{name}/metrics"),
        operation_id: "getWorkflowMetrics",
        summary: "Pass rate, status counts and duration percentiles over recent executions.",
        tag: "workflows",
        requires: Requires::Read,
        query: METRICS,
        body: RequestBody::None,
        reply: Reply::Json {
            status: 200,
            schema: "WorkflowMetrics",
        },
        handler: |m| on(m, insight::workflow_metrics),
    },
    Route {
        verb: Verb::Get,
        path: env_path!("/workflows/{name}/resource-history"),
        operation_id: "getWorkflowResourceHistory",
        summary: "Peak CPU and memory of recent executions.",
        tag: "workflows",
        requires: Requires::Read,
        query: HISTORY,
        body: RequestBody::None,
        reply: Reply::Json {
            status: 200,
            schema: "ResourceHistory",
        },
        handler: |m| on(m, insight::resource_history),
    },
    Route {
        verb: Verb::Post,
        path: env_path!("/workflows/{name}/executions"),
        operation_id: "runWorkflow",
        summary: "Start an execution of a workflow.",
        tag: "executions",
        requires: Requires::Run,
        query: &[],
        body: RequestBody::Json {
            schema: "RunRequest",
            required: false,
        },
        reply: Reply::Json {
            status: 201,
            schema: "Execution",
        },
        handler: |m| on(m, documents::run),
    },
    // --- templates --------------------------------------------------------------------
    Route {
        verb: Verb::Get,
        path: env_path!("/templates"),
        operation_id: "listTemplates",
        summary: "List workflow templates.",
        tag: "templates",
        requires: Requires::Read,
        query: DOC_LIST,
        body: RequestBody::None,
        reply: Reply::Json {
            status: 200,
            schema: "WorkflowSummaryPage",
        },
        handler: |m| on(m, documents::list::<Templates>),
    },
    Route {
        verb: Verb::Post,
        path: env_path!("/templates"),
        operation_id: "createTemplate",
        summary: "Create a template from a TestWorkflowTemplate document; 409 if the name exists.",
        tag: "templates",
        requires: Requires::Write,
        query: &[],
        body: RequestBody::Document,
        reply: Reply::Json {
            status: 201,
            schema: "WorkflowDetail",
        },
        handler: |m| on(m, documents::create::<Templates>),
    },
    Route {
        verb: Verb::Get,
        path: env_path!("/templates/{name}"),
        operation_id: "getTemplate",
        summary: "Get a template; Accept: text/yaml returns the source as submitted.",
        tag: "templates",
        requires: Requires::Read,
        query: &[],
        body: RequestBody::None,
        reply: Reply::JsonOrYaml {
            schema: "WorkflowDetail",
        },
        handler: |m| on(m, documents::get::<Templates>),
    },
    Route {
        verb: Verb::Put,
        path: env_path!("/templates/{name}"),
        operation_id: "putTemplate",
        summary: "Create or replace a template (If-Match: * only replaces).",
        tag: "templates",
        requires: Requires::Write,
        query: &[],
        body: RequestBody::Document,
        reply: Reply::CreatedOrOk {
            schema: "WorkflowDetail",
        },
        handler: |m| on(m, documents::put::<Templates>),
    },
    Route {
        verb: Verb::Delete,
        path: env_path!("/templates/{name}"),
        operation_id: "deleteTemplate",
        summary: "Delete a template.",
        tag: "templates",
        requires: Requires::Write,
        query: &[],
        body: RequestBody::None,
        reply: Reply::NoContent,
        handler: |m| on(m, documents::delete::<Templates>),
    },
    // --- executions -------------------------------------------------------------------
    Route {
        verb: Verb::Get,
        path: env_path!("/executions"),
        operation_id: "listExecutions",
        summary: "List executions, newest first.",
        tag: "executions",
        requires: Requires::Read,
        query: EXECUTION_LIST,
        body: RequestBody::None,
        reply: Reply::Json {
            status: 200,
            schema: "ExecutionSummaryPage",
        },
        handler: |m| on(m, executions::list),
    },
    Route {
        verb: Verb::Get,
        path: env_path!("/executions/{execution}"),
        operation_id: "getExecution",
        summary: "Get an execution by ID or name.",
        tag: "executions",
        requires: Requires::Read,
        query: &[],
        body: RequestBody::None,
        reply: Reply::Json {
            status: 200,
            schema: "Execution",
        },
        handler: |m| on(m, executions::get),
    },
    Route {
        verb: Verb::Get,
        path: env_path!("/executions/{execution}/wait"),
        operation_id: "waitForExecution",
        summary: "Wait (event-driven) until the execution finishes or the timeout passes.",
        tag: "executions",
        requires: Requires::Read,
        query: WAIT,
        body: RequestBody::None,
        reply: Reply::Json {
            status: 200,
            schema: "Execution",
        },
        handler: |m| on(m, executions::wait),
    },
    Route {
        verb: Verb::Post,
        path: env_path!("/executions/{execution}/abort"),
        operation_id: "abortExecution",
        summary: "Abort a queued or running execution.",
        tag: "executions",
        requires: Requires::Run,
        query: &[],
        body: RequestBody::None,
        reply: Reply::Json {
            status: 200,
            schema: "Execution",
        },
        handler: |m| on(m, executions::abort),
    },
    Route {
        verb: Verb::Put,
        path: env_path!("/executions/{execution}/tags"),
        operation_id: "putExecutionTags",
        summary: "Replace an execution's tags.",
        tag: "executions",
        requires: Requires::Run,
        query: &[],
        body: RequestBody::Json {
            schema: "TagsRequest",
            required: true,
        },
        reply: Reply::Json {
            status: 200,
            schema: "Execution",
        },
        handler: |m| on(m, executions::put_tags),
    },
    Route {
        verb: Verb::Get,
        path: env_path!("/executions/{execution}/logs"),
        operation_id: "getExecutionLogs",
        summary: "A page of the execution's log (tail, range, grep).",
        tag: "executions",
        requires: Requires::Read,
        query: LOGS,
        body: RequestBody::None,
        reply: Reply::Json {
            status: 200,
            schema: "LogPage",
        },
        handler: |m| on(m, executions::logs),
    },
    Route {
        verb: Verb::Get,
        path: env_path!("/executions/{execution}/logs/stream"),
        operation_id: "streamExecutionLogs",
        summary: "Follow the log live as NDJSON; ends when the log is closed.",
        tag: "executions",
        requires: Requires::Read,
        query: LOG_STREAM,
        body: RequestBody::None,
        reply: Reply::Ndjson { schema: "LogLine" },
        handler: |m| on(m, executions::stream_logs),
    },
    Route {
        verb: Verb::Get,
        path: env_path!("/executions/{execution}/metrics"),
        operation_id: "getExecutionMetrics",
        summary: "CPU and memory samples per step.",
        tag: "executions",
        requires: Requires::Read,
        query: &[],
        body: RequestBody::None,
        reply: Reply::Json {
            status: 200,
            schema: "ExecutionMetrics",
        },
        handler: |m| on(m, executions::metrics),
    },
    Route {
        verb: Verb::Get,
        path: env_path!("/executions/{execution}/artifacts"),
        operation_id: "listArtifacts",
        summary: "List the execution's artifacts.",
        tag: "artifacts",
        requires: Requires::Read,
        query: &[],
        body: RequestBody::None,
        reply: Reply::Json {
            status: 200,
            schema: "ArtifactList",
        },
        handler: |m| on(m, artifacts::list),
    },
    Route {
        verb: Verb::Get,
        path: env_path!("/executions/{execution}/artifacts/{*path}"),
        operation_id: "getArtifact",
        summary: "Read an artifact as text lines, or download it with ?download=true.",
        tag: "artifacts",
        requires: Requires::Read,
        query: ARTIFACT,
        body: RequestBody::None,
        reply: Reply::JsonOrDownload {
            schema: "ArtifactContent",
        },
        handler: |m| on(m, artifacts::get),
    },
    // --- environment ------------------------------------------------------------------
    Route {
        verb: Verb::Get,
        path: env_path!("/labels"),
        operation_id: "listLabels",
        summary: "Label keys and their values across the environment's workflows.",
        tag: "environment",
        requires: Requires::Read,
        query: &[],
        body: RequestBody::None,
        reply: Reply::Json {
            status: 200,
            schema: "Labels",
        },
        handler: |m| on(m, insight::labels),
    },
    Route {
        verb: Verb::Get,
        path: env_path!("/runners"),
        operation_id: "listRunners",
        summary: "The runners that execute this environment's workflows.",
        tag: "environment",
        requires: Requires::Read,
        query: &[],
        body: RequestBody::None,
        reply: Reply::Json {
            status: 200,
            schema: "RunnerList",
        },
        handler: |m| on(m, insight::runners),
    },
    // --- organization: members ---------------------------------------------------------
    Route {
        verb: Verb::Get,
        path: org_path!("/members"),
        operation_id: "listMembers",
        summary: "List the organization's members with their roles and grants.",
        tag: "members",
        requires: Requires::OrgAdmin,
        query: &[],
        body: RequestBody::None,
        reply: Reply::Json {
            status: 200,
            schema: "MemberList",
        },
        handler: |m| on(m, members::list),
    },
    Route {
        verb: Verb::Post,
        path: org_path!("/members"),
        operation_id: "addMember",
        summary: "Add a member, creating the local account if needed.",
        tag: "members",
        requires: Requires::OrgAdmin,
        query: &[],
        body: RequestBody::Json {
            schema: "NewMember",
            required: true,
        },
        reply: Reply::Json {
            status: 201,
            schema: "MemberInfo",
        },
        handler: |m| on(m, members::add),
    },
    Route {
        verb: Verb::Patch,
        path: org_path!("/members/{user}"),
        operation_id: "updateMember",
        summary: "Change a member's role, grants or disabled state.",
        tag: "members",
        requires: Requires::OrgAdmin,
        query: &[],
        body: RequestBody::Json {
            schema: "MemberUpdate",
            required: true,
        },
        reply: Reply::Json {
            status: 200,
            schema: "MemberInfo",
        },
        handler: |m| on(m, members::update),
    },
    Route {
        verb: Verb::Delete,
        path: org_path!("/members/{user}"),
        operation_id: "removeMember",
        summary: "Remove a member; their tokens and grants end at once.",
        tag: "members",
        requires: Requires::OrgAdmin,
        query: &[],
        body: RequestBody::None,
        reply: Reply::NoContent,
        handler: |m| on(m, members::remove),
    },
    // --- organization: API tokens ------------------------------------------------------
    Route {
        verb: Verb::Get,
        path: org_path!("/tokens"),
        operation_id: "listApiTokens",
        summary: "List API tokens (admins see all, others their own); never secrets.",
        tag: "tokens",
        requires: Requires::Authenticated,
        query: &[],
        body: RequestBody::None,
        reply: Reply::Json {
            status: 200,
            schema: "ApiTokenList",
        },
        handler: |m| on(m, tokens::list),
    },
    Route {
        verb: Verb::Post,
        path: org_path!("/tokens"),
        operation_id: "createApiToken",
        summary: "Create an API token; the secret is in this answer only.",
        tag: "tokens",
        requires: Requires::Authenticated,
        query: &[],
        body: RequestBody::Json {
            schema: "NewApiToken",
            required: true,
        },
        reply: Reply::Json {
            status: 201,
            schema: "CreatedApiToken",
        },
        handler: |m| on(m, tokens::create),
    },
    Route {
        verb: Verb::Get,
        path: org_path!("/tokens/{id}"),
        operation_id: "getApiToken",
        summary: "Show an API token (never its secret).",
        tag: "tokens",
        requires: Requires::Authenticated,
        query: &[],
        body: RequestBody::None,
        reply: Reply::Json {
            status: 200,
            schema: "ApiTokenInfo",
        },
        handler: |m| on(m, tokens::get),
    },
    Route {
        verb: Verb::Post,
        path: org_path!("/tokens/{id}/rotate"),
        operation_id: "rotateApiToken",
        summary: "New secret; the old one stops at once or after grace_secs (at most 24 h).",
        tag: "tokens",
        requires: Requires::Authenticated,
        query: &[],
        body: RequestBody::Json {
            schema: "RotateRequest",
            required: false,
        },
        reply: Reply::Json {
            status: 200,
            schema: "CreatedApiToken",
        },
        handler: |m| on(m, tokens::rotate),
    },
    Route {
        verb: Verb::Post,
        path: org_path!("/tokens/{id}/revoke"),
        operation_id: "revokeApiToken",
        summary: "Revoke an API token; it stops working at once.",
        tag: "tokens",
        requires: Requires::Authenticated,
        query: &[],
        body: RequestBody::None,
        reply: Reply::Json {
            status: 200,
            schema: "ApiTokenInfo",
        },
        handler: |m| on(m, tokens::revoke),
    },
    // --- the caller's own OAuth grants ------------------------------------------------
    Route {
        verb: Verb::Get,
        path: org_path!("/me/grants"),
        operation_id: "listMyGrants",
        summary: "Your OAuth grants in this organization (users only): client, scope, resource.",
        tag: "grants",
        requires: Requires::Authenticated,
        query: &[],
        body: RequestBody::None,
        reply: Reply::Json {
            status: 200,
            schema: "GrantList",
        },
        handler: |m| on(m, grants::list),
    },
    Route {
        verb: Verb::Delete,
        path: org_path!("/me/grants/{id}"),
        operation_id: "revokeMyGrant",
        summary: "Revoke one of your OAuth grants: its refresh and access tokens stop at once.",
        tag: "grants",
        requires: Requires::Authenticated,
        query: &[],
        body: RequestBody::None,
        reply: Reply::NoContent,
        handler: |m| on(m, grants::revoke),
    },
    // --- organization: audit ---------------------------------------------------------
    Route {
        verb: Verb::Get,
        path: org_path!("/audit/events"),
        operation_id: "exportAudit",
        summary: "Export audit events in chain order, streamed (JSON lines or CSV).",
        tag: "audit",
        requires: Requires::OrgAdmin,
        query: AUDIT_EXPORT,
        body: RequestBody::None,
        reply: Reply::Export {
            schema: "AuditEvent",
        },
        handler: |m| on(m, audit::export),
    },
    Route {
        verb: Verb::Get,
        path: org_path!("/audit/verify"),
        operation_id: "verifyAudit",
        summary: "Verify the hash chain; ok=false names the first broken link (still 200).",
        tag: "audit",
        requires: Requires::OrgAdmin,
        query: &[],
        body: RequestBody::None,
        reply: Reply::Json {
            status: 200,
            schema: "AuditVerifyReport",
        },
        handler: |m| on(m, audit::verify),
    },
    Route {
        verb: Verb::Get,
        path: org_path!("/audit/actors"),
        operation_id: "listAuditActors",
        summary: "Distinct users and tokens active in a period, with event counts.",
        tag: "audit",
        requires: Requires::OrgAdmin,
        query: AUDIT_ACTORS,
        body: RequestBody::None,
        reply: Reply::Json {
            status: 200,
            schema: "ActorActivityList",
        },
        handler: |m| on(m, audit::actors),
    },
    Route {
        verb: Verb::Get,
        path: org_path!("/audit/settings"),
        operation_id: "getAuditSettings",
        summary: "The organization's audit settings (retention).",
        tag: "audit",
        requires: Requires::OrgAdmin,
        query: &[],
        body: RequestBody::None,
        reply: Reply::Json {
            status: 200,
            schema: "AuditSettings",
        },
        handler: |m| on(m, audit::settings),
    },
    Route {
        verb: Verb::Put,
        path: org_path!("/audit/settings"),
        operation_id: "putAuditSettings",
        summary: "Set the audit retention (days, at least 1).",
        tag: "audit",
        requires: Requires::OrgAdmin,
        query: &[],
        body: RequestBody::Json {
            schema: "AuditSettings",
            required: true,
        },
        reply: Reply::Json {
            status: 200,
            schema: "AuditSettings",
        },
        handler: |m| on(m, audit::put_settings),
    },
];

/// The router of every route in [`ROUTES`]; non-public ones require a bearer token, of the
/// addressed organization except at [`ME`].
pub fn router(state: &AppState) -> Router<AppState> {
    ROUTES.iter().fold(Router::new(), |router, route| {
        let mut endpoint = (route.handler)(route.verb.filter());
        if route.requires != Requires::Public {
            endpoint = if route.path == ME {
                endpoint.route_layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    crate::auth::require_bearer_orgless,
                ))
            } else {
                endpoint.route_layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    crate::auth::require_bearer,
                ))
            };
        }
        router.route(route.path, endpoint)
    })
}

/// Path parameter names of an axum path (`{name}`, `{*path}` → `name`, `path`).
pub fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|p| p.trim_start_matches('*'))
        .collect()
}

/// The OpenAPI spelling of an axum path (`{*path}` → `{path}`).
pub fn openapi_path(path: &str) -> String {
    path.replace("{*", "{")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::test_support::{TOKEN, app};
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use std::collections::BTreeSet;
    use tower::ServiceExt;

    /// A concrete URL for a route: sample values for every parameter.
    fn sample_url(path: &str) -> String {
        path.replace("{org}", "acme")
            .replace("{env}", "dev")
            .replace("{name}", "smoke")
            .replace("{execution}", "smoke-1")
            .replace("{*path}", "reports/junit.xml")
            .replace("{user}", "bob@example.com")
            .replace("{id}", "0192f1a2-7c3d-7e4f-8a5b-6c7d8e9f0a1b")
    }

    /// A body each route accepts, so the call gets as far as the control plane.
    fn sample_body(route: &Route) -> &'static str {
        match route.body {
            RequestBody::Json { schema, .. } => match schema {
                "TagsRequest" => r#"{"tags": {}}"#,
                "RunRequest" | "MemberUpdate" | "RotateRequest" => "{}",
                "NewMember" => r#"{"email": "bob@example.com", "role": "member"}"#,
                "NewApiToken" => r#"{"name": "ci", "kind": "admin"}"#,
                "AuditSettings" => r#"{"retention_days": 30}"#,
                other => panic!("no sample body for {other}"),
            },
            RequestBody::Document => "kind: TestWorkflow\nmetadata:\n  name: smoke\n",
            RequestBody::None => "",
        }
    }

    #[test]
    fn only_health_readiness_and_openapi_are_public() {
        let public: BTreeSet<&str> = ROUTES
            .iter()
            .filter(|r| r.requires == Requires::Public)
            .map(|r| r.path)
            .collect();
        assert_eq!(
            public,
            BTreeSet::from(["/healthz", "/readyz", "/v1/openapi.json"])
        );
        for r in ROUTES.iter().filter(|r| r.requires != Requires::Public) {
            assert!(
                r.path.starts_with(ORG_BASE) || r.path == ME,
                "{} is outside the base",
                r.path
            );
        }
    }

    #[test]
    fn environment_routes_need_levels_and_organization_routes_need_org_rights() {
        for r in ROUTES.iter().filter(|r| r.requires != Requires::Public) {
            let what = format!("{} {}", r.verb.as_str(), r.path);
            if r.path.starts_with(ENV_BASE) {
                assert!(r.requires.is_environment_level(), "{what}");
            } else {
                assert!(
                    matches!(r.requires, Requires::OrgAdmin | Requires::Authenticated),
                    "{what} needs {}",
                    r.requires.as_str()
                );
            }
        }
        // The caller itself: any principal, GET only.
        let me: Vec<(Verb, Requires)> = ROUTES
            .iter()
            .filter(|r| r.path == ME)
            .map(|r| (r.verb, r.requires))
            .collect();
        assert_eq!(me, [(Verb::Get, Requires::Authenticated)]);
        // Members and audit are for organization admins only.
        for r in ROUTES {
            if r.path.contains("/members") || r.path.contains("/audit/") {
                assert_eq!(r.requires, Requires::OrgAdmin, "{}", r.path);
            }
            if r.path.contains("/tokens") || r.path.contains("/me/") {
                assert_eq!(r.requires, Requires::Authenticated, "{}", r.path);
            }
        }
    }

    #[test]
    fn every_route_declares_its_level_and_mutations_need_more_than_read() {
        for r in ROUTES {
            assert!(!r.requires.as_str().is_empty());
            if r.verb != Verb::Get && r.requires.is_environment_level() {
                assert!(
                    matches!(r.requires, Requires::Run | Requires::Write),
                    "{} {} changes state but only needs {}",
                    r.verb.as_str(),
                    r.path,
                    r.requires.as_str()
                );
            }
            if r.verb == Verb::Get && r.path.starts_with(ENV_BASE) {
                assert_eq!(
                    r.requires,
                    Requires::Read,
                    "{} is a GET that needs {}",
                    r.path,
                    r.requires.as_str()
                );
            }
        }
    }

    #[test]
    fn routes_and_operation_ids_are_unique() {
        let keys: BTreeSet<(&str, &str)> =
            ROUTES.iter().map(|r| (r.verb.as_str(), r.path)).collect();
        assert_eq!(keys.len(), ROUTES.len());
        let ids: BTreeSet<&str> = ROUTES.iter().map(|r| r.operation_id).collect();
        assert_eq!(ids.len(), ROUTES.len());
    }

    #[test]
    fn openapi_paths_equal_the_route_table() {
        let base = url::Url::parse("http://127.0.0.1:1/").unwrap();
        let doc = crate::openapi::document(ROUTES, &base);
        let mut from_doc = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (verb, op) in item.as_object().unwrap() {
                from_doc.insert((verb.clone(), path.clone()));
                // Every path parameter is declared.
                let declared: BTreeSet<&str> = op["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|p| p["in"] == "path")
                    .map(|p| p["name"].as_str().unwrap())
                    .collect();
                let expected: BTreeSet<&str> = path
                    .split('/')
                    .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                    .collect();
                assert_eq!(declared, expected, "{verb} {path}");
                assert!(op["x-assay-permission"].is_string(), "{verb} {path}");
            }
        }
        let from_table: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|r| (r.verb.as_str().to_owned(), openapi_path(r.path)))
            .collect();
        assert_eq!(from_doc, from_table);
    }

    #[tokio::test]
    async fn without_a_token_every_non_public_route_answers_401() {
        let app = app();
        for r in ROUTES {
            let req = Request::builder()
                .method(r.verb.method())
                .uri(sample_url(r.path))
                .body(Body::empty())
                .unwrap();
            let res = app.clone().oneshot(req).await.unwrap();
            let what = format!("{} {}", r.verb.as_str(), r.path);
            if r.requires == Requires::Public {
                assert_eq!(res.status(), StatusCode::OK, "{what}");
                continue;
            }
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{what}");
            assert_eq!(
                res.headers()[header::WWW_AUTHENTICATE],
                r#"Bearer realm="assay""#,
                "{what}"
            );
            assert_eq!(
                res.headers()[header::CONTENT_TYPE],
                "application/problem+json",
                "{what}"
            );
        }
    }

    #[tokio::test]
    async fn the_router_serves_exactly_the_table() {
        let app = app();
        // Every table route is matched (an unmatched path would be 404 before auth)…
        for r in ROUTES.iter().filter(|r| r.requires != Requires::Public) {
            let req = Request::builder()
                .method(r.verb.method())
                .uri(sample_url(r.path))
                .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
                .header(
                    header::CONTENT_TYPE,
                    if r.body == RequestBody::Document {
                        "text/yaml"
                    } else {
                        "application/json"
                    },
                )
                .body(Body::from(sample_body(r)))
                .unwrap();
            let res = app.clone().oneshot(req).await.unwrap();
            // The fake control plane answers every call with a marked 404.
            let body = axum::body::to_bytes(res.into_body(), 1 << 20)
                .await
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            assert!(
                v["detail"].as_str().unwrap_or("").contains("fake"),
                "{} {} did not reach the control plane: {v}",
                r.verb.as_str(),
                r.path
            );
        }
        // …and a method the table does not list on a known path is 405.
        for path in ROUTES.iter().map(|r| r.path).collect::<BTreeSet<_>>() {
            let listed: Vec<Verb> = ROUTES
                .iter()
                .filter(|r| r.path == path)
                .map(|r| r.verb)
                .collect();
            for verb in Verb::ALL {
                if listed.contains(&verb) {
                    continue;
                }
                let req = Request::builder()
                    .method(verb.method())
                    .uri(sample_url(path))
                    .body(Body::empty())
                    .unwrap();
                let res = app.clone().oneshot(req).await.unwrap();
                assert_eq!(
                    res.status(),
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{} {path}",
                    verb.as_str()
                );
            }
        }
    }

    #[test]
    fn path_parameters_are_named() {
        assert_eq!(
            path_params(env_path!("/executions/{execution}/artifacts/{*path}")),
            vec!["org", "env", "execution", "path"]
        );
        assert_eq!(openapi_path("/a/{*path}"), "/a/{path}".to_owned());
    }
}
