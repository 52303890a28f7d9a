//! The tools, grouped by what they touch. Names and parameters follow Testkube's MCP server
//! so prompts and agent configurations written for it work here.

mod artifacts;
mod executions;
mod insight;
mod logs;
mod query;
mod reference;
mod runs;
mod templates;
mod wait;
mod workflows;

use crate::catalog::ToolDef;

/// Every tool, in the order `tools/list` shows them.
pub(crate) fn all() -> Vec<ToolDef> {
    let mut tools = Vec::new();
    tools.extend(workflows::tools());
    tools.extend(templates::tools());
    tools.extend(runs::tools());
    tools.extend(executions::tools());
    tools.extend(logs::tools());
    tools.extend(artifacts::tools());
    tools.extend(insight::tools());
    tools.extend(query::tools());
    tools.extend(reference::tools());
    tools
}

/// Page size bounds shared by the list tools.
pub(crate) const DEFAULT_PAGE: u32 = 20;
pub(crate) const MAX_PAGE: u32 = 100;

pub(crate) fn page_size(requested: Option<u64>) -> u32 {
    requested
        .map(|n| u32::try_from(n).unwrap_or(MAX_PAGE))
        .unwrap_or(DEFAULT_PAGE)
        .clamp(1, MAX_PAGE)
}
