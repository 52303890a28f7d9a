//! Resource sampling of a running step: every interval, the CPU time and resident memory
//! of all processes in the step's process group, from /proc.

use crate::procfs;
use assay_core::execution::ResourceSample;
use assay_core::ports::ExecutionObserver;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Long steps report their samples in batches of this size while they run.
const BATCH: usize = 30;

pub(crate) struct Sampler {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Sampler {
    pub(crate) fn start(
        pgid: i32,
        interval: Duration,
        step: String,
        observer: Arc<dyn ExecutionObserver>,
    ) -> Self {
        let stop = CancellationToken::new();
        let token = stop.clone();
        let interval = interval.max(Duration::from_millis(10));
        let task = tokio::spawn(async move {
            let mut batch = Vec::new();
            // The group was just created: its CPU time starts at (about) zero.
            let mut previous = (Instant::now(), 0u64);
            loop {
                tokio::select! {
                    () = token.cancelled() => break,
                    () = tokio::time::sleep(interval) => {}
                }
                let Ok(Some((ticks, memory))) =
                    tokio::task::spawn_blocking(move || snapshot(pgid)).await
                else {
                    continue;
                };
                let now = Instant::now();
                let elapsed_ms = now.duration_since(previous.0).as_millis().max(1);
                let used_ticks = u128::from(ticks.saturating_sub(previous.1));
                // ticks / (ticks per second) seconds of CPU over elapsed_ms → millicores.
                let millicores = used_ticks * 1_000_000
                    / (u128::from(procfs::clock_ticks_per_second()) * elapsed_ms);
                previous = (now, ticks);
                batch.push(ResourceSample {
                    time: time::OffsetDateTime::now_utc(),
                    cpu_millicores: u64::try_from(millicores).unwrap_or(u64::MAX),
                    memory_bytes: memory,
                });
                if batch.len() >= BATCH {
                    observer.resource_samples(&step, &batch).await;
                    batch.clear();
                }
            }
            if !batch.is_empty() {
                observer.resource_samples(&step, &batch).await;
            }
        });
        Self { stop, task }
    }

    /// Stops sampling and delivers the samples not yet reported.
    pub(crate) async fn finish(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// Total CPU ticks and resident bytes of the group; `None` when it has no live process.
fn snapshot(pgid: i32) -> Option<(u64, u64)> {
    let members = procfs::group_members(pgid);
    if !members.iter().any(procfs::ProcStat::is_alive) {
        return None;
    }
    let ticks = members.iter().map(|m| m.ticks).sum();
    let memory = members
        .iter()
        .filter(|m| m.is_alive())
        .filter_map(|m| procfs::rss_bytes(m.pid))
        .sum();
    Some((ticks, memory))
}
