//! Reference material for the model (document formats) and dashboard links.

use crate::args::NoArgs;
use crate::catalog::{Ctx, Effect, Meta, Render, ToolDef, define};
use crate::errors::ToolError;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub(crate) const WORKFLOW_SCHEMA: &str = include_str!("schemas/workflow.yaml");
pub(crate) const EXECUTION_SCHEMA: &str = include_str!("schemas/execution.yaml");

pub(crate) fn tools() -> Vec<ToolDef> {
    vec![
        define(
            Meta {
                name: "get_workflow_schema",
                title: "Workflow format",
                description: "Annotated TestWorkflow YAML with every supported field.",
                effect: Effect::ReadOnly,
                open_world: false,
            },
            workflow_schema,
        ),
        define(
            Meta {
                name: "get_execution_schema",
                title: "Execution format",
                description: "Annotated shape of execution results and summaries.",
                effect: Effect::ReadOnly,
                open_world: false,
            },
            execution_schema,
        ),
        define(
            Meta {
                name: "build_dashboard_url",
                title: "Dashboard link",
                description: "Dashboard URL of a workflow or execution.",
                effect: Effect::ReadOnly,
                open_world: false,
            },
            dashboard_url,
        ),
    ]
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Schema {
    /// YAML text.
    schema: String,
}

impl Render for Schema {
    fn render(&self) -> String {
        self.schema.clone()
    }
}

async fn workflow_schema(_ctx: Ctx, _args: NoArgs) -> Result<Schema, ToolError> {
    Ok(Schema {
        schema: WORKFLOW_SCHEMA.into(),
    })
}

async fn execution_schema(_ctx: Ctx, _args: NoArgs) -> Result<Schema, ToolError> {
    Ok(Schema {
        schema: EXECUTION_SCHEMA.into(),
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum ResourceType {
    Workflow,
    Execution,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct UrlArgs {
    resource_type: ResourceType,
    workflow_name: String,
    /// Required for executions
    #[serde(default)]
    execution_id: Option<String>,
    #[serde(default)]
    step_ref: Option<String>,
    /// e.g. log-output
    #[serde(default)]
    execution_tab: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Url {
    url: String,
}

impl Render for Url {
    fn render(&self) -> String {
        self.url.clone()
    }
}

/// Path segments: everything but unreserved characters is escaped.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}')
    .add(b'&')
    .add(b'=')
    .add(b'+')
    .add(b';');

fn seg(s: &str) -> String {
    utf8_percent_encode(s.trim(), SEGMENT).to_string()
}

/// The dashboard's URL scheme (assay-server serves these pages):
/// `{base}/dashboard/organizations/{org}/environments/{env}/workflows/{name}`
/// `[/executions/{id}[/{tab}]][?step={ref}]`.
fn build_url(base: &str, org: &str, env: &str, args: &UrlArgs) -> Result<String, ToolError> {
    if args.workflow_name.trim().is_empty() {
        return Err(ToolError::message("workflowName is required."));
    }
    let mut url = format!(
        "{}/dashboard/organizations/{}/environments/{}/workflows/{}",
        base.trim_end_matches('/'),
        seg(org),
        seg(env),
        seg(&args.workflow_name)
    );
    let execution = args
        .execution_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let step = args
        .step_ref
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    match (&args.resource_type, execution) {
        (ResourceType::Workflow, _) => {}
        (ResourceType::Execution, None) => {
            return Err(ToolError::message(
                "executionId is required when resourceType is execution (see list_executions).",
            ));
        }
        (ResourceType::Execution, Some(id)) => {
            url.push_str("/executions/");
            url.push_str(&seg(id));
            let tab = args
                .execution_tab
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .or(step.map(|_| "log-output"));
            if let Some(tab) = tab {
                url.push('/');
                url.push_str(&seg(tab));
            }
            if let Some(step) = step {
                url.push_str("?step=");
                url.push_str(&seg(step));
            }
        }
    }
    Ok(url)
}

async fn dashboard_url(ctx: Ctx, args: UrlArgs) -> Result<Url, ToolError> {
    let Some(base) = ctx.config.public_url.as_deref() else {
        return Err(ToolError::message(
            "This Assay server has no public URL configured, so no dashboard link can be built.",
        ));
    };
    Ok(Url {
        url: build_url(base, &ctx.env.org, &ctx.env.env, &args)?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use assay_core::workflow::ResourceKind;

    fn args(kind: ResourceType, exec: Option<&str>, step: Option<&str>) -> UrlArgs {
        UrlArgs {
            resource_type: kind,
            workflow_name: "api-smoke".into(),
            execution_id: exec.map(Into::into),
            step_ref: step.map(Into::into),
            execution_tab: None,
        }
    }

    #[test]
    fn urls_for_workflows_and_executions() {
        let base = "https://assay.example.com/";
        assert_eq!(
            build_url(
                base,
                "acme",
                "dev",
                &args(ResourceType::Workflow, None, None)
            )
            .unwrap(),
            "https://assay.example.com/dashboard/organizations/acme/environments/dev/workflows/api-smoke"
        );
        assert_eq!(
            build_url(
                base,
                "acme",
                "dev",
                &args(ResourceType::Execution, Some("api-smoke-3"), Some("2.1"))
            )
            .unwrap(),
            "https://assay.example.com/dashboard/organizations/acme/environments/dev/workflows/api-smoke/executions/api-smoke-3/log-output?step=2.1"
        );
        let err = build_url(
            base,
            "acme",
            "dev",
            &args(ResourceType::Execution, None, None),
        )
        .unwrap_err()
        .render("build_dashboard_url");
        assert!(err.starts_with("executionId is required"), "{err}");
    }

    #[test]
    fn segments_are_escaped() {
        let mut a = args(ResourceType::Execution, Some("../x?y#z"), None);
        a.workflow_name = "a/b".into();
        assert_eq!(
            build_url("http://h", "o", "e", &a).unwrap(),
            "http://h/dashboard/organizations/o/environments/e/workflows/a%2Fb/executions/..%2Fx%3Fy%23z"
        );
    }

    #[test]
    fn the_workflow_skeleton_is_a_valid_workflow() {
        let doc = assay_core::spec::parse(WORKFLOW_SCHEMA, ResourceKind::Workflow);
        assert!(doc.is_ok(), "{doc:?}");
        let doc = doc.unwrap();
        assert_eq!(doc.name, "api-smoke");
        assert_eq!(doc.template_names(), ["node-setup"]);
    }

    /// The skeleton documents exactly the fields the tools return.
    #[test]
    fn the_execution_skeleton_names_the_real_fields() {
        let docs: Vec<&str> = EXECUTION_SCHEMA.split("\n---\n").collect();
        assert_eq!(docs.len(), 2);
        let keys = |doc: &str| -> Vec<String> {
            let v: serde_json::Value = serde_saphyr::from_str(doc).unwrap();
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        let props = |schema: serde_json::Map<String, serde_json::Value>| -> Vec<String> {
            let mut k: Vec<String> = schema["properties"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            k.sort();
            k
        };
        assert_eq!(
            keys(docs[0]),
            props(crate::schema::output_schema::<crate::views::ExecutionInfo>())
        );
        assert_eq!(
            keys(docs[1]),
            props(crate::schema::output_schema::<crate::views::ExecutionItem>())
        );
    }
}
