//! Log capture, masking, queries and following.

use crate::common::*;
use assay_core::Error;
use assay_core::execution::{ExecutionStatus::*, LogQuery};
use assay_core::ports::{ExecutionFiles, Executor};
use futures::StreamExt;
use std::time::Duration;

#[tokio::test]
async fn secrets_are_masked_even_when_split_across_reads() {
    let h = Harness::new();
    let mut p = plan(vec![shell(
        "1",
        "echo token=s3cr3t-value; printf 'split s3cr'; sleep 0.3; printf '3t-value end\\n'; echo other hunter2hunter2",
    )]);
    p.secrets = vec!["s3cr3t-value".into(), "hunter2".into()];
    let run = h.run(p).await;
    assert_eq!(run.outcome.status, Passed);
    assert_eq!(
        h.log_texts(run.id).await,
        vec!["token=***", "split *** end", "other ******"]
    );
    // Nothing on disk holds a secret.
    let logs = h.dir.path().join(format!("executions/{}/logs", run.id));
    for entry in std::fs::read_dir(logs).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("s3cr3t") && !text.contains("hunter2"));
    }
}

#[tokio::test]
async fn long_lines_without_newline_are_split() {
    let h = Harness::new();
    let run = h
        .run(plan(vec![shell(
            "1",
            "head -c 200000 /dev/zero | tr '\\0' a",
        )]))
        .await;
    let lines = h.log_texts(run.id).await;
    let lens: Vec<usize> = lines.iter().map(String::len).collect();
    assert_eq!(lens, vec![65536, 65536, 65536, 200000 - 3 * 65536]);
}

/// 10000 lines in step 1 (across index blocks), 3 in step 2.
async fn sample_log(h: &Harness) -> uuid::Uuid {
    let mut s2 = shell(
        "2",
        "echo 'error: disk full'; echo fine; echo 'error: again'",
    );
    s2.name = "Second".into();
    let run = h
        .run(plan(vec![shell("1", "seq 1 10000 | sed 's/^/line /'"), s2]))
        .await;
    assert_eq!(run.outcome.status, Passed);
    run.id
}

fn numbers(page: &assay_core::execution::LogPage) -> Vec<u64> {
    page.lines.iter().map(|l| l.number).collect()
}

#[tokio::test]
async fn log_queries_tail_range_grep_and_step() {
    let h = Harness::new();
    let id = sample_log(&h).await;
    let read = |q: LogQuery| {
        let files = h.files.clone();
        async move { files.read_logs(id, &q).await }
    };

    // Default: the last 200 lines.
    let page = read(LogQuery::default()).await.unwrap();
    assert_eq!(page.total_lines, 10003);
    assert_eq!(numbers(&page), (9804..=10003).collect::<Vec<_>>());
    assert!(!page.truncated);
    assert_eq!(page.steps, vec!["1", "2"]);
    assert_eq!(page.lines[199].text, "error: again");
    assert_eq!(page.lines[199].step, "2");
    assert_eq!(page.lines[0].text, "line 9804");
    assert_eq!(page.lines[0].step, "1");

    let page = read(LogQuery {
        tail: Some(4),
        ..Default::default()
    })
    .await
    .unwrap();
    let texts: Vec<_> = page.lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(
        texts,
        vec!["line 10000", "error: disk full", "fine", "error: again"]
    );

    // A range across the sparse index boundary at line 4097.
    let page = read(LogQuery {
        from_line: Some(4095),
        to_line: Some(4099),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(numbers(&page), vec![4095, 4096, 4097, 4098, 4099]);
    assert_eq!(page.lines[2].text, "line 4097");

    // Capped ranges keep their start; capped tails keep their end.
    let page = read(LogQuery {
        from_line: Some(1),
        max_lines: Some(3),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!((numbers(&page), page.truncated), (vec![1, 2, 3], true));
    let page = read(LogQuery {
        tail: Some(50),
        max_lines: Some(2),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!((numbers(&page), page.truncated), (vec![10002, 10003], true));

    // Grep over the whole log.
    let page = read(LogQuery {
        grep: Some("^line 42".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(page.lines.len(), 111);
    assert_eq!(page.lines[0].text, "line 42");
    assert!(!page.truncated);
    let page = read(LogQuery {
        grep: Some("^line 42".into()),
        max_lines: Some(5),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!((page.lines.len(), page.truncated), (5, true));

    // Step filter, by reference or by name.
    for step in ["2", "Second"] {
        let page = read(LogQuery {
            step: Some(step.into()),
            ..Default::default()
        })
        .await
        .unwrap();
        assert_eq!(page.total_lines, 3);
        assert_eq!(numbers(&page), vec![10001, 10002, 10003]);
    }
    let page = read(LogQuery {
        step: Some("1".into()),
        tail: Some(2),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(
        (page.total_lines, numbers(&page)),
        (10000, vec![9999, 10000])
    );
    let page = read(LogQuery {
        step: Some("Second".into()),
        grep: Some("error".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(numbers(&page), vec![10001, 10003]);

    // Errors.
    match read(LogQuery {
        step: Some("nope".into()),
        ..Default::default()
    })
    .await
    {
        Err(Error::Invalid(errors)) => {
            assert_eq!(errors[0].path, "step");
            let m = &errors[0].message;
            assert!(m.contains("\"nope\""), "{m}");
            assert!(m.contains("1 (step 1)") && m.contains("2 (Second)"), "{m}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    match read(LogQuery {
        grep: Some("(unclosed".into()),
        ..Default::default()
    })
    .await
    {
        Err(Error::Invalid(errors)) => assert_eq!(errors[0].path, "grep"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    // An execution without a log yet answers an empty page.
    let empty = h
        .files
        .read_logs(uuid::Uuid::new_v4(), &LogQuery::default())
        .await
        .unwrap();
    assert_eq!((empty.total_lines, empty.lines.len()), (0, 0));
}

#[tokio::test]
async fn follow_yields_lines_live_and_ends_when_closed() {
    let h = Harness::new();
    let id = uuid::Uuid::new_v4();
    let p = plan(vec![
        shell("1", "for i in 1 2 3; do echo tick $i; sleep 0.4; done"),
        shell("2", "echo done"),
    ]);
    // Subscribed before the execution starts: the follower waits for the log to appear.
    let mut stream = h.files.follow_logs(id, None, 0);
    let executor = h.executor.clone();
    let task = tokio::spawn(async move {
        executor
            .execute(
                job(id, p),
                std::sync::Arc::new(Recorder::default()),
                Default::default(),
            )
            .await
    });
    let first = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        (first.number, first.text.as_str(), first.step.as_str()),
        (1, "tick 1", "1")
    );
    assert!(
        !task.is_finished(),
        "the first line must arrive while the step runs"
    );
    let rest: Vec<_> = tokio::time::timeout(Duration::from_secs(20), stream.collect::<Vec<_>>())
        .await
        .unwrap();
    let rest: Vec<String> = rest.into_iter().map(|l| l.unwrap().text).collect();
    assert_eq!(rest, vec!["tick 2", "tick 3", "done"]);
    assert_eq!(task.await.unwrap().status, Passed);

    // After the fact: from a line on, and by step; both end because the log is closed.
    let later: Vec<_> = h.files.follow_logs(id, None, 2).collect().await;
    let later: Vec<u64> = later.into_iter().map(|l| l.unwrap().number).collect();
    assert_eq!(later, vec![3, 4]);
    let step2: Vec<_> = h.files.follow_logs(id, Some("2".into()), 0).collect().await;
    let step2: Vec<String> = step2.into_iter().map(|l| l.unwrap().text).collect();
    assert_eq!(step2, vec!["done"]);
    let wrong: Vec<_> = h
        .files
        .follow_logs(id, Some("zzz".into()), 0)
        .collect()
        .await;
    assert_eq!(wrong.len(), 1);
    assert!(matches!(wrong[0], Err(Error::Invalid(_))));
}

#[tokio::test]
async fn close_logs_ends_followers_of_executions_that_never_ran() {
    let h = Harness::new();
    let id = uuid::Uuid::new_v4();
    let mut stream = h.files.follow_logs(id, None, 0);
    let files = h.files.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        files.close_logs(id).await.unwrap();
    });
    let next = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap();
    assert!(next.is_none());
    // Idempotent.
    h.files.close_logs(id).await.unwrap();
}
