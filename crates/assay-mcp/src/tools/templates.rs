//! Workflow templates: list, read, write.

use crate::catalog::{Ctx, Effect, Meta, Render, ToolDef, define};
use crate::errors::ToolError;
use crate::tools::workflows::{ListArgs, Saved, render_list};
use crate::views::WorkflowItem;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub(crate) fn tools() -> Vec<ToolDef> {
    vec![
        define(
            Meta {
                name: "list_workflowtemplates",
                title: "List templates",
                description: "Templates that workflows include with `use:`.",
                effect: Effect::ReadOnly,
                open_world: false,
            },
            list,
        ),
        define(
            Meta {
                name: "get_workflowtemplate_definition",
                title: "Template YAML",
                description: "A template's YAML as submitted.",
                effect: Effect::ReadOnly,
                open_world: false,
            },
            definition,
        ),
        define(
            Meta {
                name: "create_workflowtemplate",
                title: "Create template",
                description: "Create a template from TestWorkflowTemplate YAML.",
                effect: Effect::Additive,
                open_world: false,
            },
            create,
        ),
        define(
            Meta {
                name: "update_workflowtemplate",
                title: "Update template",
                description: "Replace a template's YAML (same metadata.name).",
                effect: Effect::Overwrites,
                open_world: false,
            },
            update,
        ),
    ]
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct TemplateList {
    total: u64,
    templates: Vec<WorkflowItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

impl Render for TemplateList {
    fn render(&self) -> String {
        render_list("templates", self.total, &self.templates, &self.next_cursor)
    }
}

async fn list(ctx: Ctx, args: ListArgs) -> Result<TemplateList, ToolError> {
    let (filter, page) = args.filter();
    let page = ctx
        .plane
        .list_templates(&ctx.actor, &ctx.env, &filter, &page)
        .await?;
    Ok(TemplateList {
        total: page.total,
        templates: page.items.iter().map(WorkflowItem::from).collect(),
        next_cursor: page.next_cursor,
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct NameArgs {
    template_name: String,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct TemplateDefinition {
    name: String,
    yaml: String,
}

impl Render for TemplateDefinition {
    fn render(&self) -> String {
        self.yaml.clone()
    }
}

async fn definition(ctx: Ctx, args: NameArgs) -> Result<TemplateDefinition, ToolError> {
    let t = ctx
        .plane
        .get_template(&ctx.actor, &ctx.env, &args.template_name)
        .await?;
    Ok(TemplateDefinition {
        name: t.summary.name,
        yaml: t.source,
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct YamlArgs {
    yaml: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct UpdateArgs {
    template_name: String,
    yaml: String,
}

async fn create(ctx: Ctx, args: YamlArgs) -> Result<Saved, ToolError> {
    let t = ctx
        .plane
        .create_template(&ctx.actor, &ctx.env, &args.yaml)
        .await?;
    Ok(Saved::new("Created", "template", &t))
}

async fn update(ctx: Ctx, args: UpdateArgs) -> Result<Saved, ToolError> {
    let t = ctx
        .plane
        .update_template(&ctx.actor, &ctx.env, &args.template_name, &args.yaml)
        .await?;
    Ok(Saved::new("Updated", "template", &t))
}
