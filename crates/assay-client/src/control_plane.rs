//! `ControlPlane` over REST: one method per route of REST.md.
//!
//! The `actor` argument of every method is ignored: identity is the bearer token, and the
//! server builds its own `Actor` (principal plus client facts) for authorization and audit.

use crate::RemoteControlPlane;
use crate::ndjson::parse_lines;
use crate::problem::Expect;
use crate::routes::{artifact_segments, check_segment, env_url, root_url, with_query};
use crate::transport::{Deadline, document_request};
use assay_core::audit::{ActorActivity, AuditEvent, AuditFilter, AuditSettings, AuditVerifyReport};
use assay_core::execution::*;
use assay_core::identity::{
    ApiTokenInfo, CreatedApiToken, MemberInfo, MemberUpdate, NewApiToken, NewMember,
};
use assay_core::ports::ControlPlane;
use assay_core::workflow::*;
use assay_core::{Actor, EnvRef, Error, Level, Page, PageRequest, Result, Timestamp};
use async_trait::async_trait;
use futures::stream::{BoxStream, StreamExt};
use reqwest::Method;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Deserialize)]
struct Items<T> {
    items: Vec<T>,
}

#[derive(Deserialize)]
struct Labels {
    labels: BTreeMap<String, BTreeSet<String>>,
}

fn collection(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Workflow => "workflows",
        ResourceKind::Template => "templates",
    }
}

fn page_query(page: &PageRequest) -> [(&'static str, Option<String>); 2] {
    [
        ("limit", page.limit.map(|l| l.to_string())),
        ("cursor", page.cursor.clone()),
    ]
}

fn rfc3339(what: &str, t: Option<Timestamp>) -> Result<Option<String>> {
    t.map(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| Error::invalid(what, format!("cannot be written as RFC 3339: {e}")))
    })
    .transpose()
}

/// What a download's headers say about the artifact (the body is the content).
fn artifact_from_headers(path: &str, headers: &HeaderMap) -> Artifact {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
    };
    Artifact {
        path: path.to_owned(),
        size: header(CONTENT_LENGTH.as_str())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        step: header("x-assay-artifact-step")
            .unwrap_or_default()
            .to_owned(),
        content_type: header(CONTENT_TYPE.as_str()).map(str::to_owned),
    }
}

impl RemoteControlPlane {
    /// `GET /healthz`: whether the server answers at all (no token needed).
    pub async fn healthz(&self) -> Result<()> {
        let url = root_url(&self.config.base_url, &["healthz"])?;
        let expect = Expect::new("route", "/healthz", Level::Read);
        self.send(self.request(Method::GET, url), &expect, Deadline::Bounded)
            .await
            .map(drop)
    }

    fn url(&self, env: &EnvRef, segments: &[&str]) -> Result<url::Url> {
        env_url(&self.config.base_url, env, segments)
    }

    async fn list_resources(
        &self,
        env: &EnvRef,
        kind: ResourceKind,
        filter: &WorkflowFilter,
        page: &PageRequest,
    ) -> Result<Page<WorkflowSummary>> {
        let url = self.url(env, &[collection(kind)])?;
        let [limit, cursor] = page_query(page);
        let url = with_query(
            url,
            &[
                ("selector", filter.selector.clone()),
                ("search", filter.search.clone()),
                limit,
                cursor,
            ],
        );
        let expect = Expect::new("environment", env.env.clone(), Level::Read);
        self.call(self.request(Method::GET, url), &expect).await
    }

    async fn get_resource(
        &self,
        env: &EnvRef,
        kind: ResourceKind,
        name: &str,
    ) -> Result<WorkflowDetail> {
        check_segment(kind.as_str(), name)?;
        let url = self.url(env, &[collection(kind), name])?;
        let expect = Expect::new(kind.as_str(), name, Level::Read);
        self.call(self.request(Method::GET, url), &expect).await
    }

    async fn create_resource(
        &self,
        env: &EnvRef,
        kind: ResourceKind,
        source: &str,
    ) -> Result<WorkflowDetail> {
        let url = self.url(env, &[collection(kind)])?;
        let expect = Expect::new("environment", env.env.clone(), Level::Write);
        let req = document_request(self.request(Method::POST, url), source);
        self.call(req, &expect).await
    }

    /// PUT: create-or-replace, or replace only (`If-Match: *`). Returns whether it created.
    async fn put_resource(
        &self,
        env: &EnvRef,
        kind: ResourceKind,
        name: &str,
        source: &str,
        only_replace: bool,
    ) -> Result<(bool, WorkflowDetail)> {
        check_segment(kind.as_str(), name)?;
        let url = self.url(env, &[collection(kind), name])?;
        let expect = Expect::new(kind.as_str(), name, Level::Write);
        let mut req = document_request(self.request(Method::PUT, url), source);
        if only_replace {
            req = req.header(reqwest::header::IF_MATCH, "*");
        }
        let resp = self.send(req, &expect, Deadline::Bounded).await?;
        let created = resp.status() == reqwest::StatusCode::CREATED;
        Ok((created, self.decode(resp).await?))
    }

    async fn apply_resource(
        &self,
        env: &EnvRef,
        kind: ResourceKind,
        source: &str,
    ) -> Result<ApplyResult> {
        // The route names the resource, so the name comes from the document itself.
        let document = assay_core::spec::parse(source, kind)?;
        let (created, workflow) = self
            .put_resource(env, kind, &document.name, source, false)
            .await?;
        Ok(ApplyResult { created, workflow })
    }

    async fn delete_resource(&self, env: &EnvRef, kind: ResourceKind, name: &str) -> Result<()> {
        check_segment(kind.as_str(), name)?;
        let url = self.url(env, &[collection(kind), name])?;
        let expect = Expect::new(kind.as_str(), name, Level::Write);
        self.send(
            self.request(Method::DELETE, url),
            &expect,
            Deadline::Bounded,
        )
        .await
        .map(drop)
    }

    /// `executions/{execution}/<rest…>`
    fn execution_url(&self, env: &EnvRef, execution: &str, rest: &[&str]) -> Result<url::Url> {
        check_segment("execution", execution)?;
        let mut segments = vec!["executions", execution];
        segments.extend_from_slice(rest);
        self.url(env, &segments)
    }

    fn artifact_url(&self, env: &EnvRef, execution: &str, path: &str) -> Result<url::Url> {
        let mut rest = vec!["artifacts"];
        rest.extend(artifact_segments(path)?);
        self.execution_url(env, execution, &rest)
    }
}

#[async_trait]
impl ControlPlane for RemoteControlPlane {
    async fn list_workflows(
        &self,
        _actor: &Actor,
        env: &EnvRef,
        filter: &WorkflowFilter,
        page: &PageRequest,
    ) -> Result<Page<WorkflowSummary>> {
        self.list_resources(env, ResourceKind::Workflow, filter, page)
            .await
    }

    async fn get_workflow(
        &self,
        _actor: &Actor,
        env: &EnvRef,
        name: &str,
    ) -> Result<WorkflowDetail> {
        self.get_resource(env, ResourceKind::Workflow, name).await
    }

    async fn create_workflow(
        &self,
        _actor: &Actor,
        env: &EnvRef,
        source: &str,
    ) -> Result<WorkflowDetail> {
        self.create_resource(env, ResourceKind::Workflow, source)
            .await
    }

    async fn update_workflow(
        &self,
        _actor: &Actor,
        env: &EnvRef,
        name: &str,
        source: &str,
    ) -> Result<WorkflowDetail> {
        self.put_resource(env, ResourceKind::Workflow, name, source, true)
            .await
            .map(|(_, detail)| detail)
    }

    async fn apply_workflow(
        &self,
        _actor: &Actor,
        env: &EnvRef,
        source: &str,
    ) -> Result<ApplyResult> {
        self.apply_resource(env, ResourceKind::Workflow, source)
            .await
    }

    async fn delete_workflow(&self, _actor: &Actor, env: &EnvRef, name: &str) -> Result<()> {
        self.delete_resource(env, ResourceKind::Workflow, name)
            .await
    }

    async fn list_templates(
        &self,
        _actor: &Actor,
        env: &EnvRef,
        filter: &WorkflowFilter,
        page: &PageRequest,
    ) -> Result<Page<WorkflowSummary>> {
        self.list_resources(env, ResourceKind::Template, filter, page)
            .await
    }

    async fn get_template(
        &self,
        _actor: &Actor,
        env: &EnvRef,
        name: &str,
    ) -> Result<WorkflowDetail> {
        self.get_resource(env, ResourceKind::Template, name).await
    }

    async fn create_template(
        &self,
        _actor: &Actor,
        env: &EnvRef,
        source: &str,
    ) -> Result<WorkflowDetail> {
        self.create_resource(env, ResourceKind::Template, source)
            .await
    }

    async fn update_template(
        &self,
        _actor: &Actor,
        env: &EnvRef,
        name: &str,
        source: &str,
    ) -> Result<WorkflowDetail> {
        self.put_resource(env, ResourceKind::Template, name, source, true)
            .await
            .map(|(_, detail)| detail)
    }

    async fn apply_template(
        &self,
        _actor: &Actor,
        env: &EnvRef,
        source: &str,
    ) -> Result<ApplyResult> {
        self.apply_resource(env, ResourceKind::Template, source)
            .await
    }

    async fn delete_template(&self, _actor: &Actor, env: &EnvRef, name: &str) -> Result<()> {
        self.delete_resource(env, ResourceKind::Template, name)
            .await
    }

    async fn run_workflow(
        &self,
        _actor: &Actor,
        env: &EnvRef,
        workflow: &str,
        request: &RunRequest,
    ) -> Result<Execution> {
        check_segment("workflow", workflow)?;
        let url = self.url(env, &["workflows", workflow, "executions"])?;
        let expect = Expect::new("workflow", workflow, Level::Run);
        self.call(self.request(Method::POST, url).json(request), &expect)
            .await
    }

    async fn list_executions(
        &self,
        _actor: &Actor,
        env: &EnvRef,
        filter: &ExecutionFilter,
        page: &PageRequest,
    ) -> Result<Page<ExecutionSummary>> {
        let statuses = (!filter.statuses.is_empty()).then(|| {
            filter
                .statuses
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(",")
        });
        let [limit, cursor] = page_query(page);
        let url = with_query(
            self.url(env, &["executions"])?,
            &[
                ("workflow", filter.workflow.clone()),
                ("status", statuses),
                ("tags", filter.tag_selector.clone()),
                ("labels", filter.label_selector.clone()),
                ("since", rfc3339("since", filter.since)?),
                ("until", rfc3339("until", filter.until)?),
                limit,
                cursor,
            ],
        );
        let expect = Expect::new("environment", env.env.clone(), Level::Read);
        self.call(self.request(Method::GET, url), &expect).await
    }

    async fn get_execution(
        &self,
        _actor: &Actor,
        env: &EnvRef,
        execution: &str,
    ) -> Result<Execution> {
        let url = self.execution_url(env, execution, &[])?;
        let expect = Expect::new("execution", execution, Level::Read);
        self.call(self.request(Method::GET, url), &expect).await
    }

    /// The server answers a wait within 25 s (below its request timeout), so longer waits
    /// are a sequence of server-side waits — each woken by the execution's own events.
    async fn wait_for_execution(
        &self,
        _actor: &Actor,
        env: &EnvRef,
        execution: &str,
        timeout: std::time::Duration,
    ) -> Result<Execution> {
        const SERVER_MAX: std::time::Duration = std::time::Duration::from_secs(25);
        let deadline = std::time::Instant::now() + timeout;
        // Leave room under this client's own request timeout for the answer to arrive.
        let per_call = SERVER_MAX
            .min(
                self.config
                    .timeout
                    .saturating_sub(std::time::Duration::from_secs(5)),
            )
            .max(std::time::Duration::from_secs(1));
        let expect = Expect::new("execution", execution, Level::Read);
        loop {
            let remaining = deadline.saturating_duration_since(std::time::Instant::now());
            let secs = remaining.min(per_call).as_secs();
            let mut url = self.execution_url(env, execution, &["wait"])?;
            url.query_pairs_mut()
                .append_pair("timeout_secs", &secs.to_string());
            let current: Execution = self.call(self.request(Method::GET, url), &expect).await?;
            if current.status.is_terminal() || std::time::Instant::now() >= deadline {
                return Ok(current);
            }
        }
    }

    async fn abort_execution(
        &self,
        _actor: &Actor,
        env: &EnvRef,
        execution: &str,
    ) -> Result<Execution> {
        let url = self.execution_url(env, execution, &["abort"])?;
        let expect = Expect::new("execution", execution, Level::Run);
        self.call(self.request(Method::POST, url), &expect).await
    }

    async fn update_execution_tags(
        &self,
        _actor: &Actor,
        env: &EnvRef,
        execution: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<Execution> {
        let url = self.execution_url(env, execution, &["tags"])?;
        let expect = Expect::new("execution", execution, Level::Run);
        let body = serde_json::json!({ "tags": tags });
        self.call(self.request(Method::PUT, url).json(&body), &expect)
            .await
    }

    async fn execution_logs(
        &self,
        _actor: &Actor,
        env: &EnvRef,
        execution: &str,
        query: &LogQuery,
    ) -> Result<LogPage> {
        let url = with_query(
            self.execution_url(env, execution, &["logs"])?,
            &[
                ("step", query.step.clone()),
                ("tail", query.tail.map(|v| v.to_string())),
                ("from_line", query.from_line.map(|v| v.to_string())),
                ("to_line", query.to_line.map(|v| v.to_string())),
                ("grep", query.grep.clone()),
                ("max_lines", query.max_lines.map(|v| v.to_string())),
            ],
        );
        let expect = Expect::new("execution", execution, Level::Read);
        self.call(self.request(Method::GET, url), &expect).await
    }

    async fn follow_execution_logs(
        &self,
        _actor: &Actor,
        env: &EnvRef,
        execution: &str,
        step: Option<String>,
        after_line: u64,
    ) -> Result<BoxStream<'static, Result<LogLine>>> {
        let url = with_query(
            self.execution_url(env, execution, &["logs", "stream"])?,
            &[("step", step), ("after_line", Some(after_line.to_string()))],
        );
        let expect = Expect::new("execution", execution, Level::Read);
        let req = self.request_accepting(
            Method::GET,
            url,
            "application/x-ndjson, application/problem+json",
        );
        let resp = self.send(req, &expect, Deadline::Unbounded).await?;
        Ok(parse_lines(self.body_stream(resp)))
    }

    async fn list_artifacts(
        &self,
        _actor: &Actor,
        env: &EnvRef,
        execution: &str,
    ) -> Result<Vec<Artifact>> {
        let url = self.execution_url(env, execution, &["artifacts"])?;
        let expect = Expect::new("execution", execution, Level::Read);
        let items: Items<Artifact> = self.call(self.request(Method::GET, url), &expect).await?;
        Ok(items.items)
    }

    async fn read_artifact(
        &self,
        _actor: &Actor,
        env: &EnvRef,
        execution: &str,
        path: &str,
        query: &ArtifactQuery,
    ) -> Result<ArtifactContent> {
        let url = with_query(
            self.artifact_url(env, execution, path)?,
            &[
                ("from_line", query.from_line.map(|v| v.to_string())),
                ("to_line", query.to_line.map(|v| v.to_string())),
                ("grep", query.grep.clone()),
                ("context", query.context.map(|v| v.to_string())),
                ("max_lines", query.max_lines.map(|v| v.to_string())),
            ],
        );
        let expect = Expect::new("artifact", path, Level::Read);
        self.call(self.request(Method::GET, url), &expect).await
    }

    async fn download_artifact(
        &self,
        _actor: &Actor,
        env: &EnvRef,
        execution: &str,
        path: &str,
    ) -> Result<(Artifact, BoxStream<'static, Result<Vec<u8>>>)> {
        let url = with_query(
            self.artifact_url(env, execution, path)?,
            &[("download", Some("true".into()))],
        );
        let expect = Expect::new("artifact", path, Level::Read);
        let req = self.request_accepting(Method::GET, url, "*/*");
        let resp = self.send(req, &expect, Deadline::Unbounded).await?;
        let artifact = artifact_from_headers(path, resp.headers());
        let chunks = self
            .body_stream(resp)
            .map(|chunk| chunk.map(|b| b.to_vec()))
            .boxed();
        Ok((artifact, chunks))
    }

    async fn workflow_metrics(
        &self,
        _actor: &Actor,
        env: &EnvRef,
        workflow: &str,
        last_n: u32,
    ) -> Result<WorkflowMetrics> {
        check_segment("workflow", workflow)?;
        let url = with_query(
            self.url(env, &["workflows", workflow, "metrics"])?,
            &[("last", Some(last_n.to_string()))],
        );
        let expect = Expect::new("workflow", workflow, Level::Read);
        self.call(self.request(Method::GET, url), &expect).await
    }

    async fn execution_metrics(
        &self,
        _actor: &Actor,
        env: &EnvRef,
        execution: &str,
    ) -> Result<ExecutionMetrics> {
        let url = self.execution_url(env, execution, &["metrics"])?;
        let expect = Expect::new("execution", execution, Level::Read);
        self.call(self.request(Method::GET, url), &expect).await
    }

    async fn resource_history(
        &self,
        _actor: &Actor,
        env: &EnvRef,
        workflow: &str,
        last_n: u32,
    ) -> Result<Vec<ResourceHistoryEntry>> {
        check_segment("workflow", workflow)?;
        let url = with_query(
            self.url(env, &["workflows", workflow, "resource-history"])?,
            &[("last", Some(last_n.to_string()))],
        );
        let expect = Expect::new("workflow", workflow, Level::Read);
        let items: Items<ResourceHistoryEntry> =
            self.call(self.request(Method::GET, url), &expect).await?;
        Ok(items.items)
    }

    async fn list_labels(
        &self,
        _actor: &Actor,
        env: &EnvRef,
    ) -> Result<BTreeMap<String, BTreeSet<String>>> {
        let url = self.url(env, &["labels"])?;
        let expect = Expect::new("environment", env.env.clone(), Level::Read);
        let labels: Labels = self.call(self.request(Method::GET, url), &expect).await?;
        Ok(labels.labels)
    }

    async fn list_runners(&self, _actor: &Actor, env: &EnvRef) -> Result<Vec<RunnerInfo>> {
        let url = self.url(env, &["runners"])?;
        let expect = Expect::new("environment", env.env.clone(), Level::Read);
        let items: Items<RunnerInfo> = self.call(self.request(Method::GET, url), &expect).await?;
        Ok(items.items)
    }

    // Organization-level operations live in `org.rs`.

    async fn list_members(&self, _actor: &Actor, org: &str) -> Result<Vec<MemberInfo>> {
        self.members(org).await
    }

    async fn add_member(
        &self,
        _actor: &Actor,
        org: &str,
        member: &NewMember,
    ) -> Result<MemberInfo> {
        self.member_add(org, member).await
    }

    async fn update_member(
        &self,
        _actor: &Actor,
        org: &str,
        user: &str,
        update: &MemberUpdate,
    ) -> Result<MemberInfo> {
        self.member_update(org, user, update).await
    }

    async fn remove_member(&self, _actor: &Actor, org: &str, user: &str) -> Result<()> {
        self.member_remove(org, user).await
    }

    async fn create_api_token(
        &self,
        _actor: &Actor,
        org: &str,
        request: &NewApiToken,
    ) -> Result<CreatedApiToken> {
        self.token_create(org, request).await
    }

    async fn list_api_tokens(&self, _actor: &Actor, org: &str) -> Result<Vec<ApiTokenInfo>> {
        self.tokens(org).await
    }

    async fn get_api_token(
        &self,
        _actor: &Actor,
        org: &str,
        id: uuid::Uuid,
    ) -> Result<ApiTokenInfo> {
        self.token(org, id).await
    }

    async fn rotate_api_token(
        &self,
        _actor: &Actor,
        org: &str,
        id: uuid::Uuid,
        grace_secs: Option<u64>,
    ) -> Result<CreatedApiToken> {
        self.token_rotate(org, id, grace_secs).await
    }

    async fn revoke_api_token(
        &self,
        _actor: &Actor,
        org: &str,
        id: uuid::Uuid,
    ) -> Result<ApiTokenInfo> {
        self.token_revoke(org, id).await
    }

    async fn list_my_grants(
        &self,
        _actor: &Actor,
        org: &str,
    ) -> Result<Vec<assay_core::oauth::GrantInfo>> {
        self.grants(org).await
    }

    async fn revoke_my_grant(&self, _actor: &Actor, org: &str, id: uuid::Uuid) -> Result<()> {
        self.grant_revoke(org, id).await
    }

    async fn export_audit(
        &self,
        _actor: &Actor,
        org: &str,
        filter: &AuditFilter,
    ) -> Result<BoxStream<'static, Result<AuditEvent>>> {
        self.audit_export(org, filter).await
    }

    async fn verify_audit(&self, _actor: &Actor, org: &str) -> Result<AuditVerifyReport> {
        self.audit_verify(org).await
    }

    async fn audit_actors(
        &self,
        _actor: &Actor,
        org: &str,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<ActorActivity>> {
        self.audit_actor_activity(org, since, until).await
    }

    async fn audit_settings(&self, _actor: &Actor, org: &str) -> Result<AuditSettings> {
        self.audit_get_settings(org).await
    }

    async fn set_audit_settings(
        &self,
        _actor: &Actor,
        org: &str,
        settings: &AuditSettings,
    ) -> Result<AuditSettings> {
        self.audit_put_settings(org, settings).await
    }

    /// `GET /v1/me`: the bearer's identity, per organization its role, principal and the
    /// environments it can reach.
    async fn whoami(&self, _actor: &Actor) -> Result<assay_core::identity::Identity> {
        let url = root_url(&self.config.base_url, &["v1", "me"])?;
        let expect = Expect::new("route", "/v1/me", Level::Read);
        self.call(self.request(Method::GET, url), &expect).await
    }
}
