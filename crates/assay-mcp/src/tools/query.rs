//! JSONPath (RFC 9535) over workflow definitions and execution summaries, per item or, with
//! `aggregate`, over all of them as one array.

use crate::args::{opt_bool, opt_u64};
use crate::catalog::{Ctx, Effect, Meta, Render, ToolDef, define};
use crate::errors::ToolError;
use crate::tools::executions::ExecutionFilterArgs;
use crate::views::ExecutionItem;
use assay_core::page::PageRequest;
use assay_core::workflow::WorkflowFilter;
use futures::{StreamExt, TryStreamExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use serde_json_path::JsonPath;

const DEFAULT_LIMIT: u64 = 50;
const MAX_WORKFLOWS: u64 = 200;
const MAX_EXECUTIONS: u64 = 500;
/// Largest serialized `results` returned; more is cut and flagged.
pub(crate) const MAX_RESULT_BYTES: usize = 32 * 1024;
/// Workflow definitions fetched at once.
const FETCH_CONCURRENCY: usize = 4;

pub(crate) fn tools() -> Vec<ToolDef> {
    vec![
        define(
            Meta {
                name: "query_workflows",
                title: "Query workflows",
                description: "JSONPath (RFC 9535) over workflow definitions, e.g. $.spec.steps[*].name, $..shell.",
                effect: Effect::ReadOnly,
                open_world: false,
            },
            query_workflows,
        ),
        define(
            Meta {
                name: "query_executions",
                title: "Query executions",
                description: "JSONPath over execution summaries (see get_execution_schema), e.g. $.status.",
                effect: Effect::ReadOnly,
                open_world: false,
            },
            query_executions,
        ),
    ]
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct WorkflowQueryArgs {
    expression: String,
    /// Label selector k=v
    #[serde(default)]
    selector: Option<String>,
    /// Default 50
    #[serde(default, deserialize_with = "opt_u64")]
    #[schemars(range(min = 1, max = 200))]
    limit: Option<u64>,
    /// Query one array of all items
    #[serde(default, deserialize_with = "opt_bool")]
    aggregate: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct ExecutionQueryArgs {
    expression: String,
    #[serde(default)]
    workflow_name: Option<String>,
    /// Comma-separated, e.g. failed,aborted
    #[serde(default)]
    status: Option<String>,
    /// RFC 3339, YYYY-MM-DD or age (24h, 7d)
    #[serde(default)]
    since: Option<String>,
    /// Newest first; default 50
    #[serde(default, deserialize_with = "opt_u64")]
    #[schemars(range(min = 1, max = 500))]
    limit: Option<u64>,
    /// Query one array of all items
    #[serde(default, deserialize_with = "opt_bool")]
    aggregate: Option<bool>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct QueryResult {
    aggregate: bool,
    /// Items the expression ran over.
    searched: usize,
    /// Items with at least one match (per item), or matches (aggregate).
    matched: usize,
    /// Per item: name → matches; aggregate: the list of matches.
    results: Value,
    /// `results` was cut to stay small; narrow the query.
    truncated: bool,
    /// More items existed than `limit` allowed to search.
    more_items: bool,
}

impl Render for QueryResult {
    fn render(&self) -> String {
        let mut out = format!(
            "{} matched over {} searched{}{}\n",
            self.matched,
            self.searched,
            if self.truncated {
                "; results truncated"
            } else {
                ""
            },
            if self.more_items {
                "; more items exist (raise limit or filter)"
            } else {
                ""
            }
        );
        out.push_str(&self.results.to_string());
        out
    }
}

fn compile(expression: &str) -> Result<JsonPath, ToolError> {
    JsonPath::parse(expression.trim()).map_err(|e| {
        ToolError::message(format!(
            "Invalid JSONPath {expression:?}: {e}. Use RFC 9535 syntax, e.g. $.spec.steps[*].name, $..shell, $[?@.status=='failed'].name (with aggregate)."
        ))
    })
}

/// Root-level filters (`$[?…]`) only make sense over the whole list.
fn wants_aggregate(expression: &str, asked: Option<bool>) -> bool {
    asked.unwrap_or(false) || expression.trim_start().starts_with("$[?")
}

/// Runs `path` over named items, bounding the serialized size of the results.
fn run(path: &JsonPath, items: Vec<(String, Value)>, aggregate: bool) -> (Value, usize, bool) {
    let mut size = 2;
    let mut truncated = false;
    if aggregate {
        let all = Value::Array(items.into_iter().map(|(_, v)| v).collect());
        let mut out = Vec::new();
        let matches = path.query(&all).all();
        let matched = matches.len();
        for m in matches {
            let len = m.to_string().len() + 1;
            if size + len > MAX_RESULT_BYTES {
                truncated = true;
                break;
            }
            size += len;
            out.push(m.clone());
        }
        (Value::Array(out), matched, truncated)
    } else {
        let mut out = Map::new();
        let mut matched = 0;
        for (name, item) in &items {
            let matches = path.query(item).all();
            if matches.is_empty() {
                continue;
            }
            matched += 1;
            if truncated {
                continue;
            }
            let value = Value::Array(matches.into_iter().cloned().collect());
            let len = name.len() + value.to_string().len() + 4;
            if size + len > MAX_RESULT_BYTES {
                truncated = true;
                continue;
            }
            size += len;
            out.insert(name.clone(), value);
        }
        (Value::Object(out), matched, truncated)
    }
}

async fn query_workflows(ctx: Ctx, args: WorkflowQueryArgs) -> Result<QueryResult, ToolError> {
    let path = compile(&args.expression)?;
    let aggregate = wants_aggregate(&args.expression, args.aggregate);
    let limit =
        usize::try_from(args.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_WORKFLOWS)).unwrap_or(50);
    let filter = WorkflowFilter {
        selector: args.selector.filter(|s| !s.trim().is_empty()),
        search: None,
    };
    // Names first (paged), then each definition: the port has no bulk read of definitions.
    let mut names = Vec::new();
    let mut cursor = None;
    let mut more_items = false;
    loop {
        let page = ctx
            .plane
            .list_workflows(
                &ctx.actor,
                &ctx.env,
                &filter,
                &PageRequest {
                    limit: Some(u32::try_from(limit - names.len()).unwrap_or(100).min(100)),
                    cursor: cursor.take(),
                },
            )
            .await?;
        names.extend(page.items.into_iter().map(|w| w.name));
        match page.next_cursor {
            Some(c) if names.len() < limit => cursor = Some(c),
            Some(_) => {
                more_items = true;
                break;
            }
            None => break,
        }
    }
    let items: Vec<(String, Value)> = futures::stream::iter(names)
        .map(|name| {
            let ctx = &ctx;
            async move {
                let w = ctx.plane.get_workflow(&ctx.actor, &ctx.env, &name).await?;
                Ok::<_, assay_core::Error>((name, w.definition))
            }
        })
        .buffered(FETCH_CONCURRENCY)
        .try_collect()
        .await?;
    let searched = items.len();
    let (results, matched, truncated) = run(&path, items, aggregate);
    Ok(QueryResult {
        aggregate,
        searched,
        matched,
        results,
        truncated,
        more_items,
    })
}

async fn query_executions(ctx: Ctx, args: ExecutionQueryArgs) -> Result<QueryResult, ToolError> {
    let path = compile(&args.expression)?;
    let aggregate = wants_aggregate(&args.expression, args.aggregate);
    let limit =
        usize::try_from(args.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_EXECUTIONS)).unwrap_or(50);
    let filter = ExecutionFilterArgs {
        workflow_name: args.workflow_name,
        status: args.status,
        since: args.since,
        ..ExecutionFilterArgs::default()
    }
    .filter(time::OffsetDateTime::now_utc())?;
    let mut items = Vec::new();
    let mut cursor = None;
    let mut more_items = false;
    loop {
        let page = ctx
            .plane
            .list_executions(
                &ctx.actor,
                &ctx.env,
                &filter,
                &PageRequest {
                    limit: Some(u32::try_from(limit - items.len()).unwrap_or(500)),
                    cursor: cursor.take(),
                },
            )
            .await?;
        for e in &page.items {
            let value = serde_json::to_value(ExecutionItem::from(e))
                .map_err(|e| assay_core::Error::internal(format!("execution summary: {e}")))?;
            items.push((e.name.clone(), value));
        }
        match page.next_cursor {
            Some(c) if items.len() < limit => cursor = Some(c),
            Some(_) => {
                more_items = true;
                break;
            }
            None => break,
        }
    }
    let searched = items.len();
    let (results, matched, truncated) = run(&path, items, aggregate);
    Ok(QueryResult {
        aggregate,
        searched,
        matched,
        results,
        truncated,
        more_items,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn items() -> Vec<(String, Value)> {
        vec![
            (
                "a".into(),
                json!({"metadata": {"name": "a"}, "spec": {"steps": [{"name": "x", "shell": "echo 1"}]}}),
            ),
            ("b".into(), json!({"metadata": {"name": "b"}, "spec": {}})),
        ]
    }

    #[test]
    fn per_item_results_list_only_items_with_matches() {
        let path = compile("$.spec.steps[*].name").unwrap();
        let (results, matched, truncated) = run(&path, items(), false);
        assert_eq!(results, json!({"a": ["x"]}));
        assert_eq!(matched, 1);
        assert!(!truncated);
    }

    #[test]
    fn aggregate_runs_once_over_the_list_and_root_filters_imply_it() {
        assert!(wants_aggregate("$[?@.spec.steps]", None));
        assert!(!wants_aggregate("$.spec", None));
        let path = compile("$[?@.spec.steps].metadata.name").unwrap();
        let (results, matched, _) = run(&path, items(), true);
        assert_eq!(results, json!(["a"]));
        assert_eq!(matched, 1);
    }

    #[test]
    fn big_results_are_truncated() {
        let big: Vec<(String, Value)> = (0..100)
            .map(|i| (format!("w{i}"), json!({"blob": "x".repeat(1000)})))
            .collect();
        let path = compile("$.blob").unwrap();
        let (results, matched, truncated) = run(&path, big, false);
        assert!(truncated);
        assert_eq!(matched, 100);
        assert!(results.to_string().len() <= MAX_RESULT_BYTES);
        assert!(results.as_object().unwrap().len() < 100);
    }

    #[test]
    fn bad_expressions_explain_the_syntax() {
        let err = compile("spec.steps").unwrap_err().render("query_workflows");
        assert!(err.starts_with("Invalid JSONPath \"spec.steps\""), "{err}");
        assert!(err.contains("RFC 9535"), "{err}");
    }
}
