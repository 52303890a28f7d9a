//! JUnit reports among the artifacts are summarised on the outcome.

use crate::common::*;
use assay_core::execution::{
    ArtifactSpec, ExecutionStatus::*, InlineFile, JunitCase, JunitSummary,
};

const REPORT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="math" tests="3" failures="1" time="1.25">
    <testcase name="adds" classname="math.Add" time="0.5"/>
    <testcase name="subtracts" classname="math.Sub" time="0.25">
      <failure message="expected 1 but was 2" type="AssertionError">at math_test.go:12</failure>
      <system-out>computing 2-1</system-out>
    </testcase>
    <testcase name="divides" classname="math.Div" time="0.5"><skipped/></testcase>
  </testsuite>
</testsuites>
"#;

#[tokio::test]
async fn junit_reports_are_summarised() {
    let h = Harness::new();
    let mut p = plan(vec![{
        let mut s = shell(
            "1",
            "mkdir -p out; cp report.xml out/junit.xml; echo '<project/>' > out/pom.xml",
        );
        s.artifacts = Some(ArtifactSpec {
            paths: vec!["out/*.xml".into()],
            working_dir: None,
        });
        s
    }]);
    p.files = vec![InlineFile {
        path: "report.xml".into(),
        content: REPORT.into(),
        mode: None,
    }];
    let run = h.run(p).await;
    assert_eq!(run.outcome.status, Passed);
    assert_eq!(
        run.outcome.junit,
        Some(JunitSummary {
            tests: 3,
            failures: 1,
            errors: 0,
            skipped: 1,
            time_seconds: 1.25,
            reports: vec!["out/junit.xml".into()],
            failed_cases: vec![JunitCase {
                name: "subtracts".into(),
                classname: "math.Sub".into(),
                kind: "failure".into(),
                message: "expected 1 but was 2".into(),
                output: "at math_test.go:12\n--- system-out ---\ncomputing 2-1".into(),
                report: "out/junit.xml".into(),
            }],
            truncated: false,
        })
    );
}

#[tokio::test]
async fn no_reports_means_no_summary() {
    let h = Harness::new();
    let run = h.run(plan(vec![shell("1", "true")])).await;
    assert_eq!(run.outcome.junit, None);
}
