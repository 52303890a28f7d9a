//! Executions: what ran, how it went, and the plan the executor follows.

use crate::Timestamp;
use crate::actor::ActorRef;
use crate::workflow::Labels;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use uuid::Uuid;

/// Status of an execution or of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionStatus {
    Queued,
    Running,
    Passed,
    Failed,
    Aborted,
    Canceled,
    Timeout,
    Skipped,
}

impl ExecutionStatus {
    pub const ALL: [ExecutionStatus; 8] = [
        Self::Queued,
        Self::Running,
        Self::Passed,
        Self::Failed,
        Self::Aborted,
        Self::Canceled,
        Self::Timeout,
        Self::Skipped,
    ];

    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Queued | Self::Running)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Passed => "passed",
            Self::Failed => "failed",
            Self::Aborted => "aborted",
            Self::Canceled => "canceled",
            Self::Timeout => "timeout",
            Self::Skipped => "skipped",
        }
    }
}

impl std::fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ExecutionStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| format!("unknown status {s:?}"))
    }
}

/// Outcome of one step (or nested group) of an execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    /// Stable reference within the execution: "setup.1", "1", "1.2", "after.1".
    pub reference: String,
    pub name: String,
    pub status: ExecutionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub started_at: Option<Timestamp>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub finished_at: Option<Timestamp>,
    /// Attempts made (1 + retries used).
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub optional: bool,
    #[serde(default)]
    pub negative: bool,
}

/// JUnit totals and the failing cases, parsed from XML reports among the artifacts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JunitSummary {
    pub tests: u64,
    pub failures: u64,
    pub errors: u64,
    pub skipped: u64,
    pub time_seconds: f64,
    /// Artifact paths the summary was read from.
    pub reports: Vec<String>,
    /// Failed or errored cases (bounded; see `truncated`).
    pub failed_cases: Vec<JunitCase>,
    #[serde(default)]
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JunitCase {
    pub name: String,
    #[serde(default)]
    pub classname: String,
    /// "failure" or "error".
    pub kind: String,
    #[serde(default)]
    pub message: String,
    /// Failure body plus system-out/system-err, truncated.
    #[serde(default)]
    pub output: String,
    #[serde(default)]
    pub report: String,
}

/// A configuration value as recorded on an execution (sensitive ones masked).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigValue {
    pub value: serde_json::Value,
    #[serde(default)]
    pub sensitive: bool,
}

/// An execution as stored and returned. Never contains sensitive config values in clear.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    pub id: Uuid,
    pub env_id: Uuid,
    pub workflow_id: Uuid,
    pub workflow_name: String,
    /// Per-workflow sequence number starting at 1.
    pub number: i64,
    /// `<workflow>-<number>`.
    pub name: String,
    pub status: ExecutionStatus,
    #[serde(default)]
    pub config: BTreeMap<String, ConfigValue>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The workflow's labels when the execution was created.
    #[serde(default)]
    pub labels: Labels,
    pub started_by: ActorRef,
    #[serde(with = "time::serde::rfc3339")]
    pub queued_at: Timestamp,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub started_at: Option<Timestamp>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub finished_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    #[serde(default)]
    pub steps: Vec<StepResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub junit: Option<JunitSummary>,
    /// Why the execution failed/aborted, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The resolved plan (sensitive values masked), for inspection and re-queueing.
    #[serde(default)]
    pub plan: serde_json::Value,
    /// Which runner executed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner: Option<String>,
}

/// Filters for listing executions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<ExecutionStatus>,
    /// Tag selector, same grammar as the label selector (`k=v,k!=v,k`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_selector: Option<String>,
    /// Label selector over the workflow labels recorded on the execution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub since: Option<Timestamp>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub until: Option<Timestamp>,
}

/// Compact view for lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionSummary {
    pub id: Uuid,
    pub name: String,
    pub number: i64,
    pub workflow_name: String,
    pub status: ExecutionStatus,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(with = "time::serde::rfc3339")]
    pub queued_at: Timestamp,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub started_at: Option<Timestamp>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub finished_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
}

impl From<&Execution> for ExecutionSummary {
    fn from(e: &Execution) -> Self {
        Self {
            id: e.id,
            name: e.name.clone(),
            number: e.number,
            workflow_name: e.workflow_name.clone(),
            status: e.status,
            tags: e.tags.clone(),
            queued_at: e.queued_at,
            started_at: e.started_at,
            finished_at: e.finished_at,
            duration_ms: e.duration_ms,
        }
    }
}

/// A run request: config values as given by the caller (validated against the spec).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunRequest {
    #[serde(default)]
    pub config: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

// ---------------------------------------------------------------------------------------
// The plan: a workflow with templates resolved and config substituted, ready to execute.
// ---------------------------------------------------------------------------------------

/// When a step runs, relative to what happened before it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepCondition {
    /// Only if nothing (non-optional) failed so far. The default.
    #[default]
    Passed,
    /// Only if something failed.
    Failed,
    Always,
}

/// What a step executes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepCommand {
    /// A shell script run as `<shell> -c <script>` (shell defaults to `/bin/sh`).
    Shell { shell: Vec<String>, script: String },
    /// A program and its arguments, no shell involved.
    Exec { command: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactSpec {
    /// Globs relative to `working_dir` (or the step's working directory).
    pub paths: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
}

/// One step of a plan. A step with `command: None` is a group of `steps`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedStep {
    pub reference: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<StepCommand>,
    /// Relative to the workspace root, or absolute inside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub condition: StepCondition,
    #[serde(
        default,
        with = "duration_ms_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// Extra attempts after a failure.
    #[serde(default)]
    pub retries: u32,
    #[serde(default)]
    pub optional: bool,
    #[serde(default)]
    pub negative: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<ArtifactSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<PlannedStep>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InlineFile {
    /// Relative to the workspace root.
    pub path: String,
    pub content: String,
    /// Unix mode, e.g. 0o755.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GitContent {
    pub uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Sparse checkout paths; empty = everything.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Where in the workspace to clone (default "repo").
    pub mount_path: String,
}

/// Everything the executor needs; produced by `spec::build_plan`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionPlan {
    #[serde(default)]
    pub files: Vec<InlineFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitContent>,
    /// Environment for every step (container env + config), before step env.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    pub setup: Vec<PlannedStep>,
    pub steps: Vec<PlannedStep>,
    /// Run after everything else, whatever happened (cleanup).
    pub after: Vec<PlannedStep>,
    /// Whole-execution limit.
    #[serde(
        default,
        with = "duration_ms_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// Values to mask as `***` in logs. Never serialized.
    #[serde(skip)]
    pub secrets: Vec<String>,
}

impl ExecutionPlan {
    /// Every step in execution order, depth-first, with groups before their children.
    pub fn all_steps(&self) -> Vec<&PlannedStep> {
        fn walk<'a>(steps: &'a [PlannedStep], out: &mut Vec<&'a PlannedStep>) {
            for s in steps {
                out.push(s);
                walk(&s.steps, out);
            }
        }
        let mut out = Vec::new();
        walk(&self.setup, &mut out);
        walk(&self.steps, &mut out);
        walk(&self.after, &mut out);
        out
    }
}

/// (De)serialize an optional duration as integer milliseconds.
pub mod duration_ms_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

// ---------------------------------------------------------------------------------------
// Logs, artifacts, metrics
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    /// 1-based line number within the execution's combined log (all steps, in order).
    pub number: u64,
    pub step: String,
    #[serde(with = "time::serde::rfc3339")]
    pub time: Timestamp,
    pub text: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogQuery {
    /// Only this step (reference or name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Last N lines (the default when no range is given: 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<u64>,
    /// 1-based inclusive line range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_line: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_line: Option<u64>,
    /// Regular expression; only matching lines are returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grep: Option<String>,
    /// Cap on returned lines (default 1000, max 10000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_lines: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogPage {
    pub lines: Vec<LogLine>,
    /// Lines in the (step-filtered) log.
    pub total_lines: u64,
    /// More lines matched than were returned.
    pub truncated: bool,
    /// Step references present in this execution's log.
    pub steps: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    /// Path relative to the execution's artifact root, `/`-separated.
    pub path: String,
    pub size: u64,
    /// The step that produced it.
    pub step: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_line: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_line: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grep: Option<String>,
    /// Lines of context around each grep match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_lines: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ArtifactContent {
    Text {
        path: String,
        total_lines: u64,
        /// (1-based line number, text)
        lines: Vec<(u64, String)>,
        truncated: bool,
    },
    /// Binary files are summarised, not dumped.
    Binary {
        path: String,
        size: u64,
        content_type: Option<String>,
        /// Hex of the first bytes.
        head_hex: String,
    },
}

/// One /proc sample of a step's process tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceSample {
    #[serde(with = "time::serde::rfc3339")]
    pub time: Timestamp,
    /// CPU usage in millicores over the last interval.
    pub cpu_millicores: u64,
    pub memory_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepMetrics {
    pub step: String,
    pub samples: Vec<ResourceSample>,
    pub cpu_max_millicores: u64,
    pub cpu_avg_millicores: u64,
    pub memory_max_bytes: u64,
    pub memory_avg_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionMetrics {
    pub execution_id: Uuid,
    pub steps: Vec<StepMetrics>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DurationPercentiles {
    pub p50_ms: i64,
    pub p90_ms: i64,
    pub p95_ms: i64,
    pub p99_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowMetrics {
    pub workflow: String,
    /// Executions considered (the last N).
    pub executions: u64,
    pub by_status: BTreeMap<String, u64>,
    pub pass_rate: f64,
    pub duration: DurationPercentiles,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceHistoryEntry {
    pub execution_id: Uuid,
    pub execution_name: String,
    pub status: ExecutionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    pub cpu_max_millicores: u64,
    pub memory_max_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunnerInfo {
    pub id: String,
    pub name: String,
    /// "local" or "kubernetes".
    pub kind: String,
    pub capabilities: Vec<String>,
    pub concurrency: u32,
    pub running: u32,
    pub queued: u32,
    pub version: String,
}
