//! Resource samples of a busy step.

use crate::common::*;

#[tokio::test]
async fn busy_steps_are_sampled() {
    let h = Harness::new(); // default 1 s interval
    let busy = "end=$(( $(date +%s%N) + 1500000000 )); \
                while [ $(date +%s%N) -lt $end ]; do i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done; done";
    let run = h
        .run(plan(vec![shell("1", busy), shell("2", "true")]))
        .await;
    assert_eq!(
        run.outcome.status,
        assay_core::execution::ExecutionStatus::Passed
    );
    let samples = run.recorder.samples.lock().unwrap().clone();
    let busy: Vec<_> = samples.iter().filter(|(s, _)| s == "1").collect();
    assert!(!busy.is_empty(), "{samples:?}");
    for (_, s) in &busy {
        assert!(s.cpu_millicores >= 200, "{s:?}");
        assert!(s.memory_bytes > 100_000, "{s:?}");
    }
}
