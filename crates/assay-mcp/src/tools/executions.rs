//! Finding and inspecting executions.

use crate::args::opt_u64;
use crate::catalog::{Ctx, Effect, Meta, Render, ToolDef, define};
use crate::digest::digest;
use crate::errors::ToolError;
use crate::tools::page_size;
use crate::views::{ExecutionInfo, ExecutionItem};
use assay_core::Timestamp;
use assay_core::execution::{ExecutionFilter, ExecutionStatus};
use assay_core::page::PageRequest;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use time::format_description::well_known::Rfc3339;

pub(crate) fn tools() -> Vec<ToolDef> {
    vec![
        define(
            Meta {
                name: "list_executions",
                title: "List executions",
                description: "List executions, newest first, with filters.",
                effect: Effect::ReadOnly,
                open_world: false,
            },
            list,
        ),
        define(
            Meta {
                name: "lookup_execution_id",
                title: "Find execution ID",
                description: "The ID of an execution named <workflow>-<number>.",
                effect: Effect::ReadOnly,
                open_world: false,
            },
            lookup,
        ),
        define(
            Meta {
                name: "get_execution_info",
                title: "Get execution",
                description: "An execution's status, steps, JUnit totals and, if it failed, a failure digest.",
                effect: Effect::ReadOnly,
                open_world: false,
            },
            info,
        ),
    ]
}

/// Filters shared by list_executions and query_executions.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ExecutionFilterArgs {
    #[serde(default)]
    pub workflow_name: Option<String>,
    /// Comma-separated, e.g. failed,aborted
    #[serde(default)]
    pub status: Option<String>,
    /// Label selector k=v,k2!=v2
    #[serde(default)]
    pub selector: Option<String>,
    /// Tag selector k=v
    #[serde(default)]
    pub tag_selector: Option<String>,
    /// RFC 3339, YYYY-MM-DD or age (24h, 7d)
    #[serde(default, alias = "startDate")]
    pub since: Option<String>,
    /// RFC 3339 or YYYY-MM-DD, inclusive
    #[serde(default)]
    pub end_date: Option<String>,
}

impl ExecutionFilterArgs {
    pub(crate) fn filter(&self, now: Timestamp) -> Result<ExecutionFilter, ToolError> {
        let nonempty = |s: &Option<String>| s.clone().filter(|s| !s.trim().is_empty());
        let statuses = match nonempty(&self.status) {
            None => Vec::new(),
            Some(s) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<ExecutionStatus>().map_err(|_| {
                        ToolError::message(format!(
                            "Unknown status {s:?}. Use one of: queued, running, passed, failed, aborted, canceled, timeout."
                        ))
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(ExecutionFilter {
            workflow: nonempty(&self.workflow_name),
            statuses,
            tag_selector: nonempty(&self.tag_selector),
            label_selector: nonempty(&self.selector),
            since: nonempty(&self.since)
                .map(|s| parse_time(&s, now, false, "since"))
                .transpose()?,
            until: nonempty(&self.end_date)
                .map(|s| parse_time(&s, now, true, "endDate"))
                .transpose()?,
        })
    }
}

/// RFC 3339, a date (its start, or its end when `end_of_day`), or an age before `now`
/// (`90m`, `24h`, `7d`).
pub(crate) fn parse_time(
    text: &str,
    now: Timestamp,
    end_of_day: bool,
    field: &str,
) -> Result<Timestamp, ToolError> {
    let text = text.trim();
    if let Ok(t) = time::OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t);
    }
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(text, &date_format) {
        let t = if end_of_day {
            d.with_hms_milli(23, 59, 59, 999)
        } else {
            d.with_hms(0, 0, 0)
        };
        if let Ok(t) = t {
            return Ok(t.assume_utc());
        }
    }
    let age = if let Some(days) = text.strip_suffix('d') {
        days.parse::<u64>()
            .ok()
            .map(|d| std::time::Duration::from_secs(d.saturating_mul(86_400)))
    } else {
        assay_core::spec::duration::parse_duration(text).ok()
    };
    if let Some(age) = age
        && let Ok(age) = time::Duration::try_from(age)
        && let Some(t) = now.checked_sub(age)
    {
        return Ok(t);
    }
    Err(ToolError::message(format!(
        "{field} {text:?} is not a time: use RFC 3339 (2026-01-31T12:00:00Z), a date (2026-01-31) or an age (24h, 7d)."
    )))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct ListArgs {
    #[serde(flatten)]
    filter: ExecutionFilterArgs,
    #[serde(default, deserialize_with = "opt_u64")]
    #[schemars(range(min = 1, max = 100))]
    page_size: Option<u64>,
    #[serde(default)]
    cursor: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct ExecutionList {
    total: u64,
    executions: Vec<ExecutionItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

impl Render for ExecutionList {
    fn render(&self) -> String {
        let mut out = format!("{} of {} executions", self.executions.len(), self.total);
        for e in &self.executions {
            let _ = write!(out, "\n- {}", e.line());
        }
        if let Some(c) = &self.next_cursor {
            let _ = write!(out, "\nMore: cursor={c}");
        }
        out
    }
}

async fn list(ctx: Ctx, args: ListArgs) -> Result<ExecutionList, ToolError> {
    let filter = args.filter.filter(time::OffsetDateTime::now_utc())?;
    let page = PageRequest {
        limit: Some(page_size(args.page_size)),
        cursor: args.cursor.filter(|c| !c.is_empty()),
    };
    let page = ctx
        .plane
        .list_executions(&ctx.actor, &ctx.env, &filter, &page)
        .await?;
    Ok(ExecutionList {
        total: page.total,
        executions: page.items.iter().map(ExecutionItem::from).collect(),
        next_cursor: page.next_cursor,
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct LookupArgs {
    /// e.g. smoke-12
    execution_name: String,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Found {
    id: String,
    name: String,
    status: String,
}

impl Render for Found {
    fn render(&self) -> String {
        self.id.clone()
    }
}

async fn lookup(ctx: Ctx, args: LookupArgs) -> Result<Found, ToolError> {
    let e = ctx
        .plane
        .get_execution(&ctx.actor, &ctx.env, args.execution_name.trim())
        .await?;
    Ok(Found {
        id: e.id.to_string(),
        name: e.name,
        status: e.status.to_string(),
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct InfoArgs {
    execution_id: String,
}

async fn info(ctx: Ctx, args: InfoArgs) -> Result<ExecutionInfo, ToolError> {
    let e = ctx
        .plane
        .get_execution(&ctx.actor, &ctx.env, args.execution_id.trim())
        .await?;
    let mut info = ExecutionInfo::new(&e);
    info.digest = digest(&ctx, &e).await;
    Ok(info)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn times_parse_as_rfc3339_dates_or_ages() {
        let now = datetime!(2026-03-10 12:00:00 UTC);
        let p = |s: &str, end| parse_time(s, now, end, "since").ok();
        assert_eq!(
            p("2026-03-01T08:30:00Z", false),
            Some(datetime!(2026-03-01 08:30:00 UTC))
        );
        assert_eq!(
            p("2026-03-01", false),
            Some(datetime!(2026-03-01 00:00:00 UTC))
        );
        assert_eq!(
            p("2026-03-01", true),
            Some(datetime!(2026-03-01 23:59:59.999 UTC))
        );
        assert_eq!(p("24h", false), Some(datetime!(2026-03-09 12:00:00 UTC)));
        assert_eq!(p("7d", false), Some(datetime!(2026-03-03 12:00:00 UTC)));
        let err = parse_time("yesterday", now, false, "since").unwrap_err();
        assert!(
            err.render("x")
                .starts_with("since \"yesterday\" is not a time")
        );
    }

    #[test]
    fn statuses_are_validated() {
        let args = ExecutionFilterArgs {
            status: Some("failed, passed".into()),
            ..Default::default()
        };
        let f = args.filter(time::OffsetDateTime::now_utc()).unwrap();
        assert_eq!(
            f.statuses,
            [ExecutionStatus::Failed, ExecutionStatus::Passed]
        );
        let args = ExecutionFilterArgs {
            status: Some("broken".into()),
            ..Default::default()
        };
        let err = args.filter(time::OffsetDateTime::now_utc()).unwrap_err();
        assert!(err.render("x").starts_with("Unknown status \"broken\""));
    }
}
