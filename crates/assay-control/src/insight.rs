//! Health and metrics computed from execution history. Pure functions; the control plane
//! feeds them store data.

use assay_core::execution::{
    DurationPercentiles, ExecutionStatus, ExecutionSummary, ResourceSample, StepMetrics,
    WorkflowMetrics,
};
use assay_core::workflow::{LastExecution, WorkflowHealth};
use std::collections::BTreeMap;

/// Finished executions health is computed over.
pub(crate) const HEALTH_WINDOW: usize = 20;
/// Executions fetched to find `HEALTH_WINDOW` finished ones (queued/running are skipped).
pub(crate) const HEALTH_FETCH: u32 = 40;

/// Statuses that count as "finished" for health and pass rates: the execution ran and
/// came to a verdict. `canceled` (never started) and `skipped` carry no signal.
fn counts_as_finished(status: ExecutionStatus) -> bool {
    matches!(
        status,
        ExecutionStatus::Passed
            | ExecutionStatus::Failed
            | ExecutionStatus::Aborted
            | ExecutionStatus::Timeout
    )
}

/// Health over the newest `HEALTH_WINDOW` finished executions of `recent` (newest first).
pub(crate) fn health(recent: &[ExecutionSummary]) -> WorkflowHealth {
    let finished: Vec<ExecutionStatus> = recent
        .iter()
        .map(|e| e.status)
        .filter(|s| counts_as_finished(*s))
        .take(HEALTH_WINDOW)
        .collect();
    if finished.is_empty() {
        return WorkflowHealth::default();
    }
    let n = finished.len();
    let passed = finished
        .iter()
        .filter(|s| **s == ExecutionStatus::Passed)
        .count();
    let flips = finished.windows(2).filter(|w| w[0] != w[1]).count();
    let pass_rate = ratio(passed, n);
    let flip_rate = if n > 1 { ratio(flips, n - 1) } else { 0.0 };
    WorkflowHealth {
        executions: u32::try_from(n).unwrap_or(u32::MAX),
        pass_rate,
        flip_rate,
        overall_health: pass_rate * (1.0 - flip_rate),
    }
}

pub(crate) fn last_execution(recent: &[ExecutionSummary]) -> Option<LastExecution> {
    recent.first().map(|e| LastExecution {
        id: e.id,
        name: e.name.clone(),
        status: e.status,
        queued_at: e.queued_at,
    })
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Nearest-rank percentile of an ascending slice (`0` when empty).
pub(crate) fn nearest_rank(sorted: &[i64], percentile: u32) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let n = sorted.len();
    // rank = ceil(p/100 × n), at least 1.
    let rank = (usize::try_from(percentile).unwrap_or(100) * n)
        .div_ceil(100)
        .clamp(1, n);
    sorted[rank - 1]
}

/// Metrics over `recent` (newest first; the caller already limited it to the last N).
pub(crate) fn workflow_metrics(workflow: &str, recent: &[ExecutionSummary]) -> WorkflowMetrics {
    let mut by_status: BTreeMap<String, u64> = ExecutionStatus::ALL
        .iter()
        .map(|s| (s.as_str().to_string(), 0))
        .collect();
    for e in recent {
        *by_status.entry(e.status.as_str().to_string()).or_default() += 1;
    }
    let finished = recent.iter().filter(|e| counts_as_finished(e.status));
    let (passed, total) = finished.fold((0, 0), |(p, t), e| {
        (p + usize::from(e.status == ExecutionStatus::Passed), t + 1)
    });
    let mut durations: Vec<i64> = recent
        .iter()
        .filter(|e| counts_as_finished(e.status))
        .filter_map(|e| e.duration_ms)
        .collect();
    durations.sort_unstable();
    WorkflowMetrics {
        workflow: workflow.to_string(),
        executions: recent.len() as u64,
        by_status,
        pass_rate: ratio(passed, total),
        duration: DurationPercentiles {
            p50_ms: nearest_rank(&durations, 50),
            p90_ms: nearest_rank(&durations, 90),
            p95_ms: nearest_rank(&durations, 95),
            p99_ms: nearest_rank(&durations, 99),
        },
    }
}

/// Samples grouped per step (in the order steps first appear), with max and mean.
pub(crate) fn step_metrics(samples: Vec<(String, ResourceSample)>) -> Vec<StepMetrics> {
    let mut order: Vec<String> = Vec::new();
    let mut grouped: BTreeMap<String, Vec<ResourceSample>> = BTreeMap::new();
    for (step, sample) in samples {
        if !grouped.contains_key(&step) {
            order.push(step.clone());
        }
        grouped.entry(step).or_default().push(sample);
    }
    order
        .into_iter()
        .filter_map(|step| {
            let samples = grouped.remove(&step)?;
            let n = samples.len() as u64;
            let cpu_sum: u128 = samples.iter().map(|s| u128::from(s.cpu_millicores)).sum();
            let mem_sum: u128 = samples.iter().map(|s| u128::from(s.memory_bytes)).sum();
            Some(StepMetrics {
                cpu_max_millicores: samples.iter().map(|s| s.cpu_millicores).max().unwrap_or(0),
                cpu_avg_millicores: mean(cpu_sum, n),
                memory_max_bytes: samples.iter().map(|s| s.memory_bytes).max().unwrap_or(0),
                memory_avg_bytes: mean(mem_sum, n),
                step,
                samples,
            })
        })
        .collect()
}

fn mean(sum: u128, n: u64) -> u64 {
    if n == 0 {
        0
    } else {
        u64::try_from(sum / u128::from(n)).unwrap_or(u64::MAX)
    }
}

/// Effective "last N" for workflow metrics: 0 means the default 100; at most 1000.
pub(crate) fn metrics_window(last_n: u32) -> u32 {
    if last_n == 0 { 100 } else { last_n.min(1000) }
}

/// Effective "last N" for resource history: 0 means the default 20; at most 200.
pub(crate) fn history_window(last_n: u32) -> u32 {
    if last_n == 0 { 20 } else { last_n.min(200) }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use time::macros::datetime;
    use uuid::Uuid;

    fn summary(status: ExecutionStatus, duration_ms: Option<i64>) -> ExecutionSummary {
        ExecutionSummary {
            id: Uuid::now_v7(),
            name: "w-1".into(),
            number: 1,
            workflow_name: "w".into(),
            status,
            tags: Default::default(),
            queued_at: datetime!(2025-01-01 0:00 UTC),
            started_at: None,
            finished_at: None,
            duration_ms,
        }
    }

    use ExecutionStatus::*;

    #[test]
    fn health_counts_finished_only_and_flips() {
        // newest first: running (skipped), P, F, P, P, canceled (skipped)
        let recent: Vec<_> = [Running, Passed, Failed, Passed, Passed, Canceled]
            .into_iter()
            .map(|s| summary(s, None))
            .collect();
        let h = health(&recent);
        assert_eq!(h.executions, 4);
        assert_eq!(h.pass_rate, 0.75);
        // P→F, F→P: 2 flips over 3 transitions.
        assert!((h.flip_rate - 2.0 / 3.0).abs() < 1e-12);
        assert!((h.overall_health - 0.75 * (1.0 / 3.0)).abs() < 1e-12);
        assert_eq!(last_execution(&recent).unwrap().status, Running);
    }

    #[test]
    fn health_of_nothing_and_of_one() {
        assert_eq!(health(&[]), WorkflowHealth::default());
        let h = health(&[summary(Passed, None)]);
        assert_eq!(
            (h.executions, h.pass_rate, h.flip_rate, h.overall_health),
            (1, 1.0, 0.0, 1.0)
        );
    }

    #[test]
    fn health_window_is_twenty() {
        let mut recent: Vec<_> = (0..20).map(|_| summary(Passed, None)).collect();
        recent.extend((0..10).map(|_| summary(Failed, None)));
        let h = health(&recent);
        assert_eq!(h.executions, 20);
        assert_eq!(h.pass_rate, 1.0);
        assert_eq!(h.flip_rate, 0.0);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<i64> = (1..=10).map(|x| x * 10).collect();
        assert_eq!(nearest_rank(&sorted, 50), 50);
        assert_eq!(nearest_rank(&sorted, 90), 90);
        assert_eq!(nearest_rank(&sorted, 95), 100);
        assert_eq!(nearest_rank(&sorted, 99), 100);
        assert_eq!(nearest_rank(&sorted, 0), 10);
        assert_eq!(nearest_rank(&[7], 50), 7);
        assert_eq!(nearest_rank(&[], 50), 0);
        // Classic example: 15, 20, 35, 40, 50 → p30 = 20, p40 = 20, p50 = 35, p100 = 50.
        let s = [15, 20, 35, 40, 50];
        assert_eq!(nearest_rank(&s, 30), 20);
        assert_eq!(nearest_rank(&s, 40), 20);
        assert_eq!(nearest_rank(&s, 50), 35);
        assert_eq!(nearest_rank(&s, 100), 50);
    }

    #[test]
    fn workflow_metrics_counts_statuses_and_durations() {
        let recent = vec![
            summary(Passed, Some(100)),
            summary(Failed, Some(300)),
            summary(Passed, Some(200)),
            summary(Canceled, None),
            summary(Queued, None),
        ];
        let m = workflow_metrics("w", &recent);
        assert_eq!(m.workflow, "w");
        assert_eq!(m.executions, 5);
        assert_eq!(m.by_status["passed"], 2);
        assert_eq!(m.by_status["failed"], 1);
        assert_eq!(m.by_status["canceled"], 1);
        assert_eq!(m.by_status["queued"], 1);
        assert_eq!(m.by_status["timeout"], 0);
        assert_eq!(m.by_status.len(), 8);
        assert!((m.pass_rate - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(
            m.duration,
            DurationPercentiles {
                p50_ms: 200,
                p90_ms: 300,
                p95_ms: 300,
                p99_ms: 300
            }
        );
    }

    #[test]
    fn step_metrics_group_in_first_seen_order() {
        let at = datetime!(2025-01-01 0:00 UTC);
        let s = |cpu, mem| ResourceSample {
            time: at,
            cpu_millicores: cpu,
            memory_bytes: mem,
        };
        let m = step_metrics(vec![
            ("2".into(), s(100, 1000)),
            ("1".into(), s(10, 10)),
            ("2".into(), s(301, 3001)),
        ]);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].step, "2");
        assert_eq!(
            (m[0].cpu_max_millicores, m[0].cpu_avg_millicores),
            (301, 200)
        );
        assert_eq!((m[0].memory_max_bytes, m[0].memory_avg_bytes), (3001, 2000));
        assert_eq!(m[0].samples.len(), 2);
        assert_eq!(m[1].step, "1");
        assert_eq!((m[1].cpu_max_millicores, m[1].memory_avg_bytes), (10, 10));
    }

    #[test]
    fn windows_default_and_clamp() {
        assert_eq!(metrics_window(0), 100);
        assert_eq!(metrics_window(5000), 1000);
        assert_eq!(metrics_window(7), 7);
        assert_eq!(history_window(0), 20);
        assert_eq!(history_window(999), 200);
    }
}
