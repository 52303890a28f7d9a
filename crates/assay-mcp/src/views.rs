//! Compact projections of domain values for tool results: only what a model needs, in
//! camelCase, without internal fields (plans, env IDs, raw sample series). Testkube's MCP
//! server learned the same lesson: trimmed results cut tokens by more than two thirds.

use assay_core::Timestamp;
use assay_core::execution::{
    Execution, ExecutionStatus, ExecutionSummary, JunitCase, JunitSummary, StepResult,
};
use assay_core::workflow::{LastExecution, WorkflowHealth, WorkflowSummary};
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// RFC 3339, as every timestamp in results.
pub(crate) fn ts(t: Timestamp) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// At most `max` characters, with an ellipsis when cut.
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}

/// `1.2s`, `3m04s`, `250ms`.
pub(crate) fn human_ms(ms: i64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HealthView {
    pub pass_rate: f64,
    pub flip_rate: f64,
    pub overall_health: f64,
    /// Finished executions the figures cover.
    pub executions: u32,
}

impl From<&WorkflowHealth> for HealthView {
    fn from(h: &WorkflowHealth) -> Self {
        Self {
            pass_rate: h.pass_rate,
            flip_rate: h.flip_rate,
            overall_health: h.overall_health,
            executions: h.executions,
        }
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LatestView {
    pub id: String,
    pub name: String,
    pub status: String,
    pub queued_at: String,
}

impl From<&LastExecution> for LatestView {
    fn from(l: &LastExecution) -> Self {
        Self {
            id: l.id.to_string(),
            name: l.name.clone(),
            status: l.status.to_string(),
            queued_at: ts(l.queued_at),
        }
    }
}

/// A workflow or template in lists.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WorkflowItem {
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    pub updated: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest: Option<LatestView>,
}

impl From<&WorkflowSummary> for WorkflowItem {
    fn from(w: &WorkflowSummary) -> Self {
        Self {
            name: w.name.clone(),
            description: w.description.clone(),
            labels: w.labels.clone(),
            updated: ts(w.updated_at),
            health: w.health.as_ref().map(HealthView::from),
            latest: w.last_execution.as_ref().map(LatestView::from),
        }
    }
}

impl WorkflowItem {
    pub(crate) fn line(&self) -> String {
        let mut s = self.name.clone();
        if let Some(l) = &self.latest {
            let _ = write!(s, " — last {} {}", l.name, l.status);
        }
        if let Some(h) = &self.health
            && h.executions > 0
        {
            let _ = write!(
                s,
                ", pass rate {:.0}% over {}",
                h.pass_rate * 100.0,
                h.executions
            );
        }
        if !self.description.is_empty() {
            let _ = write!(s, " — {}", clip(&self.description, 80));
        }
        s
    }
}

/// An execution in lists and wait results.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ExecutionItem {
    pub id: String,
    pub name: String,
    pub workflow_name: String,
    pub status: String,
    pub queued_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

impl From<&ExecutionSummary> for ExecutionItem {
    fn from(e: &ExecutionSummary) -> Self {
        Self {
            id: e.id.to_string(),
            name: e.name.clone(),
            workflow_name: e.workflow_name.clone(),
            status: e.status.to_string(),
            queued_at: ts(e.queued_at),
            duration_ms: e.duration_ms,
            tags: e.tags.clone(),
        }
    }
}

impl From<&Execution> for ExecutionItem {
    fn from(e: &Execution) -> Self {
        Self::from(&ExecutionSummary::from(e))
    }
}

impl ExecutionItem {
    pub(crate) fn line(&self) -> String {
        let mut s = format!("{} {} (id {})", self.name, self.status, self.id);
        if let Some(ms) = self.duration_ms {
            let _ = write!(s, " in {}", human_ms(ms));
        }
        s
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StepView {
    /// Step reference, usable as the `step` filter of fetch_execution_logs.
    #[serde(rename = "ref")]
    pub reference: String,
    pub name: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    #[serde(skip_serializing_if = "is_false")]
    pub optional: bool,
}

impl From<&StepResult> for StepView {
    fn from(s: &StepResult) -> Self {
        let duration_ms = match (s.started_at, s.finished_at) {
            (Some(a), Some(b)) => i64::try_from((b - a).whole_milliseconds()).ok(),
            _ => None,
        };
        Self {
            reference: s.reference.clone(),
            name: s.name.clone(),
            status: s.status.to_string(),
            exit_code: s.exit_code,
            error: s.error.as_deref().map(|e| clip(e, 500)),
            duration_ms,
            optional: s.optional,
        }
    }
}

impl StepView {
    pub(crate) fn line(&self) -> String {
        let mut s = format!("{} {}: {}", self.reference, self.name, self.status);
        if let Some(code) = self.exit_code
            && code != 0
        {
            let _ = write!(s, " (exit {code})");
        }
        // "exit code N" would only repeat the exit code already shown.
        if let Some(e) = &self.error
            && !e.starts_with("exit code")
        {
            let _ = write!(s, " — {}", clip(e, 200));
        }
        s
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JunitView {
    pub tests: u64,
    pub failures: u64,
    pub errors: u64,
    pub skipped: u64,
    pub time_seconds: f64,
    /// Artifact paths of the reports (readable with read_artifact).
    pub reports: Vec<String>,
}

impl From<&JunitSummary> for JunitView {
    fn from(j: &JunitSummary) -> Self {
        Self {
            tests: j.tests,
            failures: j.failures,
            errors: j.errors,
            skipped: j.skipped,
            time_seconds: j.time_seconds,
            reports: j.reports.clone(),
        }
    }
}

impl JunitView {
    pub(crate) fn line(&self) -> String {
        format!(
            "JUnit: {} tests, {} failures, {} errors, {} skipped ({})",
            self.tests,
            self.failures,
            self.errors,
            self.skipped,
            self.reports.join(", ")
        )
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CaseView {
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub classname: String,
    /// "failure" or "error".
    pub kind: String,
    pub message: String,
    /// Failure body and captured output, shortened.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub output: String,
}

impl From<&JunitCase> for CaseView {
    fn from(c: &JunitCase) -> Self {
        Self {
            name: c.name.clone(),
            classname: c.classname.clone(),
            kind: c.kind.clone(),
            message: clip(&c.message, 500),
            output: clip(c.output.trim(), 800),
        }
    }
}

impl CaseView {
    pub(crate) fn line(&self) -> String {
        let who = if self.classname.is_empty() {
            self.name.clone()
        } else {
            format!("{}.{}", self.classname, self.name)
        };
        format!("{who} ({}): {}", self.kind, clip(&self.message, 300))
    }
}

/// Why an execution did not pass, in one place: the failing steps, the failing tests and
/// the end of the failing step's log.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Digest {
    pub failed_steps: Vec<StepView>,
    pub junit_failures: Vec<CaseView>,
    /// More failing tests exist than are listed.
    #[serde(skip_serializing_if = "is_false")]
    pub junit_failures_truncated: bool,
    /// The step whose log tail follows (absent: the whole log's tail).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_step: Option<String>,
    pub last_log_lines: Vec<String>,
    /// What to call next for more detail.
    pub next: String,
}

impl Digest {
    pub(crate) fn render_into(&self, out: &mut String) {
        out.push_str("\nFailure digest:");
        for s in &self.failed_steps {
            let _ = write!(out, "\n  failed step {}", s.line());
        }
        for c in &self.junit_failures {
            let _ = write!(out, "\n  failed test {}", c.line());
        }
        if self.junit_failures_truncated {
            out.push_str("\n  (more failing tests not shown)");
        }
        if !self.last_log_lines.is_empty() {
            match &self.log_step {
                Some(step) => {
                    let _ = write!(out, "\n  last log lines of step {step}:");
                }
                None => out.push_str("\n  last log lines:"),
            }
            for l in &self.last_log_lines {
                let _ = write!(out, "\n    {l}");
            }
        }
        let _ = write!(out, "\nNext: {}", self.next);
    }
}

/// One execution in full (compact), with the failure digest when it did not pass.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ExecutionInfo {
    pub id: String,
    pub name: String,
    pub workflow_name: String,
    pub status: String,
    pub queued_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    pub started_by: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Config values used (sensitive ones masked).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub steps: Vec<StepView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub junit: Option<JunitView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// Set by run_workflow with `wait` when the wait ended before the execution did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timed_out: Option<bool>,
}

impl ExecutionInfo {
    pub(crate) fn new(e: &Execution) -> Self {
        Self {
            id: e.id.to_string(),
            name: e.name.clone(),
            workflow_name: e.workflow_name.clone(),
            status: e.status.to_string(),
            queued_at: ts(e.queued_at),
            started_at: e.started_at.map(ts),
            finished_at: e.finished_at.map(ts),
            duration_ms: e.duration_ms,
            started_by: e.started_by.name.clone(),
            tags: e.tags.clone(),
            config: e
                .config
                .iter()
                .map(|(k, v)| {
                    let shown = if v.sensitive {
                        serde_json::Value::from("***")
                    } else {
                        v.value.clone()
                    };
                    (k.clone(), shown)
                })
                .collect(),
            error: e.error.as_deref().map(|s| clip(s, 1000)),
            steps: e.steps.iter().map(StepView::from).collect(),
            junit: e.junit.as_ref().map(JunitView::from),
            digest: None,
            timed_out: None,
        }
    }

    pub(crate) fn render(&self) -> String {
        let mut out = format!("{} (id {}) {}", self.name, self.id, self.status);
        if let Some(ms) = self.duration_ms {
            let _ = write!(out, " in {}", human_ms(ms));
        }
        let _ = write!(
            out,
            " — workflow {}, started by {}",
            self.workflow_name, self.started_by
        );
        if self.timed_out == Some(true) {
            out.push_str(
                "\nStill running when the wait ended; call wait_for_executions to keep waiting.",
            );
        }
        if let Some(e) = &self.error {
            let _ = write!(out, "\nError: {e}");
        }
        if !self.tags.is_empty() {
            let tags: Vec<String> = self.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = write!(out, "\nTags: {}", tags.join(", "));
        }
        if !self.steps.is_empty() {
            out.push_str("\nSteps:");
            for s in &self.steps {
                let _ = write!(out, "\n  {}", s.line());
            }
        }
        if let Some(j) = &self.junit {
            let _ = write!(out, "\n{}", j.line());
        }
        if let Some(d) = &self.digest {
            d.render_into(&mut out);
        }
        out
    }
}

impl crate::catalog::Render for ExecutionInfo {
    fn render(&self) -> String {
        ExecutionInfo::render(self)
    }
}

/// Whether the execution ended without passing (a digest is worth computing).
pub(crate) fn did_not_pass(status: ExecutionStatus) -> bool {
    status.is_terminal() && !matches!(status, ExecutionStatus::Passed | ExecutionStatus::Skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_format_compactly() {
        assert_eq!(human_ms(250), "250ms");
        assert_eq!(human_ms(1250), "1.2s");
        assert_eq!(human_ms(184_000), "3m04s");
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(clip("abc", 3), "abc");
    }
}
