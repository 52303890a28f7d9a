//! Resource metrics, resource history, labels and runners.

use crate::args::{NoArgs, opt_u64};
use crate::catalog::{Ctx, Effect, Meta, Render, ToolDef, define};
use crate::errors::ToolError;
use assay_core::execution::ResourceSample;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

const DEFAULT_SAMPLES: u64 = 50;
const MAX_SAMPLES: u64 = 500;
const DEFAULT_HISTORY: u64 = 50;
const MAX_HISTORY: u64 = 100;
/// Standard deviations from the mean that make a value an outlier.
const OUTLIER_Z: f64 = 2.0;

pub(crate) fn tools() -> Vec<ToolDef> {
    vec![
        define(
            Meta {
                name: "get_workflow_execution_metrics",
                title: "Execution metrics",
                description: "CPU and memory per step of an execution, with samples.",
                effect: Effect::ReadOnly,
                open_world: false,
            },
            execution_metrics,
        ),
        define(
            Meta {
                name: "get_workflow_resource_history",
                title: "Resource history",
                description: "Peak CPU/memory and duration of recent executions, with outliers (>2σ).",
                effect: Effect::ReadOnly,
                open_world: false,
            },
            resource_history,
        ),
        define(
            Meta {
                name: "list_labels",
                title: "List labels",
                description: "Workflow label keys and values.",
                effect: Effect::ReadOnly,
                open_world: false,
            },
            labels,
        ),
        define(
            Meta {
                name: "list_agents",
                title: "List runners",
                description: "Runners with capacity and load.",
                effect: Effect::ReadOnly,
                open_world: false,
            },
            agents,
        ),
    ]
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct MetricsArgs {
    execution_id: String,
    /// Per step; default 50
    #[serde(default, deserialize_with = "opt_u64")]
    #[schemars(range(min = 1, max = 500))]
    max_samples: Option<u64>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct StepUsage {
    step: String,
    cpu_max_millicores: u64,
    cpu_avg_millicores: u64,
    memory_max_bytes: u64,
    memory_avg_bytes: u64,
    /// [unix ms, cpu millicores, memory bytes]
    samples: Vec<[i64; 3]>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct ExecutionUsage {
    execution_id: String,
    steps: Vec<StepUsage>,
}

impl Render for ExecutionUsage {
    fn render(&self) -> String {
        if self.steps.is_empty() {
            return format!("No resource samples for execution {}.", self.execution_id);
        }
        let mut out = format!("Resource usage of execution {}:", self.execution_id);
        for s in &self.steps {
            let _ = write!(
                out,
                "\n- step {}: cpu max {}m avg {}m, memory max {} avg {} ({} samples)",
                s.step,
                s.cpu_max_millicores,
                s.cpu_avg_millicores,
                mib(s.memory_max_bytes),
                mib(s.memory_avg_bytes),
                s.samples.len()
            );
        }
        out
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1}MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Every n-th sample so at most `max` remain, always keeping the last one.
fn downsample(samples: &[ResourceSample], max: usize) -> Vec<[i64; 3]> {
    let as_row = |s: &ResourceSample| {
        [
            i64::try_from(s.time.unix_timestamp_nanos() / 1_000_000).unwrap_or(0),
            i64::try_from(s.cpu_millicores).unwrap_or(i64::MAX),
            i64::try_from(s.memory_bytes).unwrap_or(i64::MAX),
        ]
    };
    if samples.len() <= max {
        return samples.iter().map(as_row).collect();
    }
    let step = samples.len().div_ceil(max.max(1));
    let mut rows: Vec<[i64; 3]> = samples.iter().step_by(step).map(as_row).collect();
    if let Some(last) = samples.last()
        && !(samples.len() - 1).is_multiple_of(step)
    {
        if rows.len() >= max {
            rows.pop();
        }
        rows.push(as_row(last));
    }
    rows
}

async fn execution_metrics(ctx: Ctx, args: MetricsArgs) -> Result<ExecutionUsage, ToolError> {
    let max = args
        .max_samples
        .unwrap_or(DEFAULT_SAMPLES)
        .clamp(1, MAX_SAMPLES);
    let m = ctx
        .plane
        .execution_metrics(&ctx.actor, &ctx.env, args.execution_id.trim())
        .await?;
    Ok(ExecutionUsage {
        execution_id: m.execution_id.to_string(),
        steps: m
            .steps
            .iter()
            .map(|s| StepUsage {
                step: s.step.clone(),
                cpu_max_millicores: s.cpu_max_millicores,
                cpu_avg_millicores: s.cpu_avg_millicores,
                memory_max_bytes: s.memory_max_bytes,
                memory_avg_bytes: s.memory_avg_bytes,
                samples: downsample(&s.samples, usize::try_from(max).unwrap_or(usize::MAX)),
            })
            .collect(),
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct HistoryArgs {
    workflow_name: String,
    /// Default 50
    #[serde(default, deserialize_with = "opt_u64")]
    #[schemars(range(min = 1, max = 100))]
    last_n: Option<u64>,
}

#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Stats {
    mean: f64,
    min: f64,
    max: f64,
    std_dev: f64,
}

impl Stats {
    fn of(values: &[f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        Some(Self {
            mean,
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            std_dev: var.sqrt(),
        })
    }

    fn z(&self, v: f64) -> f64 {
        if self.std_dev == 0.0 {
            0.0
        } else {
            (v - self.mean) / self.std_dev
        }
    }
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct HistoryEntry {
    id: String,
    name: String,
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ms: Option<i64>,
    cpu_max_millicores: u64,
    memory_max_bytes: u64,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Outlier {
    execution_name: String,
    /// cpuMaxMillicores, memoryMaxBytes or durationMs
    metric: String,
    value: f64,
    z_score: f64,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct History {
    #[serde(skip)]
    #[schemars(skip)]
    workflow_name: String,
    /// Keyed by metric: cpuMaxMillicores, memoryMaxBytes, durationMs.
    summary: BTreeMap<String, Stats>,
    executions: Vec<HistoryEntry>,
    outliers: Vec<Outlier>,
}

impl Render for History {
    fn render(&self) -> String {
        let mut out = format!(
            "{}: {} executions",
            self.workflow_name,
            self.executions.len()
        );
        for (metric, s) in &self.summary {
            let _ = write!(
                out,
                "\n- {metric}: mean {:.0}, min {:.0}, max {:.0}, σ {:.0}",
                s.mean, s.min, s.max, s.std_dev
            );
        }
        if self.outliers.is_empty() {
            out.push_str("\nNo outliers.");
        }
        for o in &self.outliers {
            let _ = write!(
                out,
                "\nOutlier: {} {} = {:.0} (z {:.1})",
                o.execution_name, o.metric, o.value, o.z_score
            );
        }
        out
    }
}

async fn resource_history(ctx: Ctx, args: HistoryArgs) -> Result<History, ToolError> {
    let last_n = args.last_n.unwrap_or(DEFAULT_HISTORY).clamp(1, MAX_HISTORY);
    let entries = ctx
        .plane
        .resource_history(
            &ctx.actor,
            &ctx.env,
            &args.workflow_name,
            u32::try_from(last_n).unwrap_or(100),
        )
        .await?;
    type Metric = fn(&assay_core::execution::ResourceHistoryEntry) -> Option<f64>;
    let metrics: [(&str, Metric); 3] = [
        ("cpuMaxMillicores", |e| Some(e.cpu_max_millicores as f64)),
        ("memoryMaxBytes", |e| Some(e.memory_max_bytes as f64)),
        ("durationMs", |e| e.duration_ms.map(|d| d as f64)),
    ];
    let mut summary = BTreeMap::new();
    let mut outliers = Vec::new();
    for (name, get) in metrics {
        let values: Vec<f64> = entries.iter().filter_map(get).collect();
        let Some(stats) = Stats::of(&values) else {
            continue;
        };
        summary.insert(name.to_owned(), stats);
        for e in &entries {
            if let Some(v) = get(e) {
                let z = stats.z(v);
                if z.abs() > OUTLIER_Z {
                    outliers.push(Outlier {
                        execution_name: e.execution_name.clone(),
                        metric: name.to_owned(),
                        value: v,
                        z_score: (z * 100.0).round() / 100.0,
                    });
                }
            }
        }
    }
    Ok(History {
        workflow_name: args.workflow_name,
        summary,
        executions: entries
            .iter()
            .map(|e| HistoryEntry {
                id: e.execution_id.to_string(),
                name: e.execution_name.clone(),
                status: e.status.to_string(),
                duration_ms: e.duration_ms,
                cpu_max_millicores: e.cpu_max_millicores,
                memory_max_bytes: e.memory_max_bytes,
            })
            .collect(),
        outliers,
    })
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Labels {
    labels: BTreeMap<String, BTreeSet<String>>,
}

impl Render for Labels {
    fn render(&self) -> String {
        if self.labels.is_empty() {
            return "No labels.".into();
        }
        self.labels
            .iter()
            .map(|(k, vs)| format!("{k}: {}", vs.iter().cloned().collect::<Vec<_>>().join(", ")))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

async fn labels(ctx: Ctx, _args: NoArgs) -> Result<Labels, ToolError> {
    Ok(Labels {
        labels: ctx.plane.list_labels(&ctx.actor, &ctx.env).await?,
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct AgentArgs {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    capability: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Agent {
    id: String,
    name: String,
    kind: String,
    version: String,
    capabilities: Vec<String>,
    concurrency: u32,
    running: u32,
    queued: u32,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Agents {
    agents: Vec<Agent>,
}

impl Render for Agents {
    fn render(&self) -> String {
        if self.agents.is_empty() {
            return "No runners match.".into();
        }
        self.agents
            .iter()
            .map(|a| {
                format!(
                    "{} ({}, {}): running {}/{}, queued {}; capabilities {}",
                    a.name,
                    a.kind,
                    a.version,
                    a.running,
                    a.concurrency,
                    a.queued,
                    a.capabilities.join(", ")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

async fn agents(ctx: Ctx, args: AgentArgs) -> Result<Agents, ToolError> {
    let runners = ctx.plane.list_runners(&ctx.actor, &ctx.env).await?;
    let wanted = |filter: &Option<String>, value: &str| {
        filter
            .as_deref()
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .is_none_or(|f| f.eq_ignore_ascii_case(value))
    };
    Ok(Agents {
        agents: runners
            .into_iter()
            .filter(|r| wanted(&args.kind, &r.kind))
            .filter(|r| {
                args.capability.as_deref().map(str::trim).is_none_or(|c| {
                    c.is_empty() || r.capabilities.iter().any(|x| x.eq_ignore_ascii_case(c))
                })
            })
            .map(|r| Agent {
                id: r.id,
                name: r.name,
                kind: r.kind,
                version: r.version,
                capabilities: r.capabilities,
                concurrency: r.concurrency,
                running: r.running,
                queued: r.queued,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(n: usize) -> Vec<ResourceSample> {
        (0..n)
            .map(|i| ResourceSample {
                time: time::OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(i as i64),
                cpu_millicores: i as u64,
                memory_bytes: 1,
            })
            .collect()
    }

    #[test]
    fn downsampling_keeps_at_most_max_and_the_last_sample() {
        assert_eq!(downsample(&samples(3), 50).len(), 3);
        let rows = downsample(&samples(100), 10);
        assert_eq!(rows.len(), 10);
        assert_eq!(rows[0][1], 0);
        assert_eq!(rows[9][1], 99);
        let rows = downsample(&samples(101), 10);
        assert!(rows.len() <= 10, "{}", rows.len());
        assert_eq!(rows.last().map(|r| r[1]), Some(100));
    }

    #[test]
    fn stats_and_z_scores() {
        let s = Stats::of(&[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 11.0]).unwrap_or(Stats {
            mean: 0.0,
            min: 0.0,
            max: 0.0,
            std_dev: 0.0,
        });
        assert_eq!(s.mean, 2.0);
        assert_eq!(s.min, 1.0);
        assert_eq!(s.max, 11.0);
        assert_eq!(s.std_dev, 3.0);
        assert_eq!(s.z(11.0), 3.0);
        assert!(Stats::of(&[]).is_none());
    }
}
