//! Listing and reading the files an execution produced.

use crate::args::opt_u64;
use crate::catalog::{Ctx, Effect, Meta, Render, ToolDef, define};
use crate::errors::ToolError;
use crate::views::clip;
use assay_core::execution::{ArtifactContent, ArtifactQuery};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

const DEFAULT_LINES: u64 = 100;
const MAX_LINES: u64 = 200;
const DEFAULT_CONTEXT: u64 = 3;
const MAX_LINE_CHARS: usize = 2000;

pub(crate) fn tools() -> Vec<ToolDef> {
    vec![
        define(
            Meta {
                name: "list_artifacts",
                title: "List artifacts",
                description: "Files an execution produced.",
                effect: Effect::ReadOnly,
                open_world: false,
            },
            list,
        ),
        define(
            Meta {
                name: "read_artifact",
                title: "Read artifact",
                description: "Read an artifact: first 100 lines, a range (max 200) or grep with context; binary files summarised.",
                effect: Effect::ReadOnly,
                open_world: false,
            },
            read,
        ),
    ]
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct ListArgs {
    execution_id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct ArtifactItem {
    path: String,
    size: u64,
    step: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_type: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct ArtifactList {
    artifacts: Vec<ArtifactItem>,
}

impl Render for ArtifactList {
    fn render(&self) -> String {
        if self.artifacts.is_empty() {
            return "The execution has no artifacts.".into();
        }
        let mut out = format!("{} artifacts:", self.artifacts.len());
        for a in &self.artifacts {
            let _ = write!(out, "\n- {} ({} bytes, step {})", a.path, a.size, a.step);
        }
        out
    }
}

async fn list(ctx: Ctx, args: ListArgs) -> Result<ArtifactList, ToolError> {
    let artifacts = ctx
        .plane
        .list_artifacts(&ctx.actor, &ctx.env, args.execution_id.trim())
        .await?;
    Ok(ArtifactList {
        artifacts: artifacts
            .into_iter()
            .map(|a| ArtifactItem {
                path: a.path,
                size: a.size,
                step: a.step,
                content_type: a.content_type,
            })
            .collect(),
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct ReadArgs {
    execution_id: String,
    /// As listed by list_artifacts
    file_name: String,
    #[serde(default, deserialize_with = "opt_u64")]
    start_line: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    end_line: Option<u64>,
    /// Regex; wins over the range
    #[serde(default)]
    grep: Option<String>,
    /// Default 3
    #[serde(default, deserialize_with = "opt_u64")]
    context: Option<u64>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct TextLine {
    n: u64,
    text: String,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct ArtifactRead {
    path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_lines: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    truncated: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    lines: Vec<TextLine>,
    /// Present instead of lines for binary files.
    #[serde(skip_serializing_if = "Option::is_none")]
    binary: Option<BinarySummary>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct BinarySummary {
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_type: Option<String>,
    /// First bytes in hex.
    head_hex: String,
}

impl Render for ArtifactRead {
    fn render(&self) -> String {
        if let Some(b) = &self.binary {
            return format!(
                "{} is binary ({} bytes, {}); first bytes: {}",
                self.path,
                b.size,
                b.content_type.as_deref().unwrap_or("unknown type"),
                b.head_hex
            );
        }
        let mut out = format!(
            "{}: {} of {} lines{}",
            self.path,
            self.lines.len(),
            self.total_lines.unwrap_or(0),
            if self.truncated == Some(true) {
                " (truncated; use startLine/endLine or grep)"
            } else {
                ""
            }
        );
        for l in &self.lines {
            let _ = write!(out, "\n{:>5} {}", l.n, l.text);
        }
        out
    }
}

/// A path fit to name an artifact: relative, `/`-separated, no `.`/`..`/empty segments.
/// The files port refuses anything else too; refusing here gives a clearer message.
fn is_plain_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.contains(['\\', '\0'])
        && path.split('/').all(|s| !matches!(s, "" | "." | ".."))
}

async fn read(ctx: Ctx, args: ReadArgs) -> Result<ArtifactRead, ToolError> {
    let path = args.file_name.trim();
    if !is_plain_relative(path) {
        return Err(ToolError::message(format!(
            "fileName {path:?} is not an artifact path: use a path relative to the execution's artifacts, exactly as list_artifacts shows it (no leading '/', no '..')."
        )));
    }
    let grep = args.grep.filter(|g| !g.is_empty());
    let query = if grep.is_some() {
        ArtifactQuery {
            grep,
            context: Some(args.context.unwrap_or(DEFAULT_CONTEXT).min(20)),
            max_lines: Some(MAX_LINES),
            ..ArtifactQuery::default()
        }
    } else {
        let from = args.start_line.unwrap_or(1).max(1);
        let to = args
            .end_line
            .unwrap_or(from.saturating_add(DEFAULT_LINES - 1));
        ArtifactQuery {
            from_line: Some(from),
            to_line: Some(to),
            max_lines: Some(MAX_LINES),
            ..ArtifactQuery::default()
        }
    };
    let content = ctx
        .plane
        .read_artifact(&ctx.actor, &ctx.env, args.execution_id.trim(), path, &query)
        .await?;
    Ok(match content {
        ArtifactContent::Text {
            path,
            total_lines,
            lines,
            truncated,
        } => ArtifactRead {
            path,
            total_lines: Some(total_lines),
            truncated: Some(truncated),
            lines: lines
                .into_iter()
                .map(|(n, text)| TextLine {
                    n,
                    text: clip(&text, MAX_LINE_CHARS),
                })
                .collect(),
            binary: None,
        },
        ArtifactContent::Binary {
            path,
            size,
            content_type,
            head_hex,
        } => ArtifactRead {
            path,
            total_lines: None,
            truncated: None,
            lines: Vec::new(),
            binary: Some(BinarySummary {
                size,
                content_type,
                head_hex,
            }),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::is_plain_relative;

    #[test]
    fn only_plain_relative_paths_pass() {
        assert!(is_plain_relative("reports/junit.xml"));
        assert!(is_plain_relative("a.txt"));
        for bad in [
            "",
            "/etc/passwd",
            "../../etc/passwd",
            "reports/../../x",
            "./a",
            "a//b",
            "a\\b",
            "a\0b",
        ] {
            assert!(!is_plain_relative(bad), "{bad:?}");
        }
    }
}
