//! Artifact collection, limits, containment and reading back.

use crate::common::*;
use assay_core::Error;
use assay_core::execution::{
    Artifact, ArtifactContent, ArtifactQuery, ArtifactSpec, ExecutionStatus::*,
};
use assay_core::ports::ExecutionFiles;
use futures::StreamExt;

fn collecting(reference: &str, script: &str, paths: &[&str]) -> assay_core::execution::PlannedStep {
    let mut s = shell(reference, script);
    s.artifacts = Some(ArtifactSpec {
        paths: paths.iter().map(|p| p.to_string()).collect(),
        working_dir: None,
    });
    s
}

#[tokio::test]
async fn collects_globs_and_reads_them_back() {
    let h = Harness::new();
    let script = "mkdir -p reports/sub other; seq 1 20 | sed 's/^/row /' > reports/a.txt; \
                  echo nested > reports/sub/b.log; echo no > other/c.txt; \
                  printf 'AB\\000\\001\\377' > data.bin; exit 1";
    let mut s = collecting("1", script, &["reports/**", "*.bin"]);
    s.optional = true;
    let run = h.run(plan(vec![s])).await;
    assert_eq!(
        run.step("1").status,
        Failed,
        "collected whatever the status"
    );

    let mut list = h.files.list_artifacts(run.id).await.unwrap();
    list.sort_by(|a, b| a.path.cmp(&b.path));
    let artifact = |path: &str, size, ct: Option<&str>| Artifact {
        path: path.into(),
        size,
        step: "1".into(),
        content_type: ct.map(str::to_string),
    };
    let a_size = (1..=20).map(|i| format!("row {i}\n").len() as u64).sum();
    assert_eq!(
        list,
        vec![
            artifact("data.bin", 5, Some("application/octet-stream")),
            artifact("reports/a.txt", a_size, Some("text/plain")),
            artifact("reports/sub/b.log", 7, Some("text/plain")),
        ]
    );

    let read = |path: &str, q: ArtifactQuery| {
        let (files, path) = (h.files.clone(), path.to_string());
        async move { files.read_artifact(run.id, &path, &q).await }
    };
    let lines = |c: ArtifactContent| match c {
        ArtifactContent::Text {
            lines,
            total_lines,
            truncated,
            ..
        } => (lines, total_lines, truncated),
        other => panic!("expected text, got {other:?}"),
    };
    let (l, total, truncated) = lines(
        read("reports/a.txt", ArtifactQuery::default())
            .await
            .unwrap(),
    );
    assert_eq!((l.len(), total, truncated), (20, 20, false));
    assert_eq!(l[0], (1, "row 1".to_string()));

    let (l, total, _) = lines(
        read(
            "reports/a.txt",
            ArtifactQuery {
                from_line: Some(5),
                to_line: Some(7),
                ..Default::default()
            },
        )
        .await
        .unwrap(),
    );
    assert_eq!(total, 20);
    assert_eq!(
        l,
        vec![
            (5, "row 5".into()),
            (6, "row 6".into()),
            (7, "row 7".into())
        ]
    );

    let (l, _, truncated) = lines(
        read(
            "reports/a.txt",
            ArtifactQuery {
                grep: Some("^row 1[05]$".into()),
                context: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap(),
    );
    let numbers: Vec<u64> = l.iter().map(|(n, _)| *n).collect();
    assert_eq!((numbers, truncated), (vec![9, 10, 11, 14, 15, 16], false));

    let (l, _, truncated) = lines(
        read(
            "reports/a.txt",
            ArtifactQuery {
                max_lines: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap(),
    );
    assert_eq!((l.len(), truncated), (2, true));

    match read("data.bin", ArtifactQuery::default()).await.unwrap() {
        ArtifactContent::Binary {
            path,
            size,
            content_type,
            head_hex,
        } => {
            assert_eq!(path, "data.bin");
            assert_eq!(size, 5);
            assert_eq!(content_type.as_deref(), Some("application/octet-stream"));
            assert_eq!(head_hex, "41420001ff");
        }
        other => panic!("expected binary, got {other:?}"),
    }

    let (meta, stream) = h
        .files
        .open_artifact(run.id, "reports/a.txt")
        .await
        .unwrap();
    assert_eq!(meta.size, a_size);
    let bytes: Vec<u8> = stream
        .map(|c| c.unwrap())
        .collect::<Vec<_>>()
        .await
        .concat();
    assert_eq!(
        bytes,
        std::fs::read(h.workspace(run.id).join("reports/a.txt")).unwrap()
    );

    assert!(matches!(
        read("other/c.txt", ArtifactQuery::default()).await,
        Err(Error::NotFound { .. })
    ));
    match read(
        "reports/a.txt",
        ArtifactQuery {
            grep: Some("[".into()),
            ..Default::default()
        },
    )
    .await
    {
        Err(Error::Invalid(e)) => assert_eq!(e[0].path, "grep"),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn size_limits_skip_files_with_a_warning() {
    let h = Harness::with(|c| {
        c.max_artifact_bytes = 1000;
        c.max_artifacts_total_bytes = 1500;
    });
    let script = "head -c 2000 /dev/zero > big.txt; head -c 800 /dev/zero > a.txt; head -c 800 /dev/zero > b.txt";
    let run = h.run(plan(vec![collecting("1", script, &["*.txt"])])).await;
    assert_eq!(run.outcome.status, Passed);
    let list = h.files.list_artifacts(run.id).await.unwrap();
    let paths: Vec<_> = list.iter().map(|a| (a.path.as_str(), a.size)).collect();
    assert_eq!(paths, vec![("a.txt", 800)]);
    assert_eq!(
        h.log_texts(run.id).await,
        vec![
            "assay: warning: skipped artifact b.txt: the execution's artifacts would exceed the total limit of 1500 bytes",
            "assay: warning: skipped artifact big.txt: 2000 bytes exceeds the per-file limit of 1000 bytes",
        ]
    );
}

#[tokio::test]
async fn symlinks_never_lead_out_of_the_workspace() {
    let h = Harness::new();
    let script = "mkdir -p out/real; echo ok > out/ok.txt; echo inner > out/real/in.txt; \
                  ln -s /etc/passwd out/passwd; ln -s / out/root; \
                  ln -s ../../../../../../../../etc/hostname out/climb; ln -s real/in.txt out/alias.txt";
    let mut s = collecting("1", script, &["out/**", "/etc/passwd", "../*"]);
    s.artifacts
        .as_mut()
        .unwrap()
        .paths
        .push("out/root/etc/passwd".into());
    let run = h.run(plan(vec![s])).await;
    assert_eq!(run.outcome.status, Passed);

    let mut paths: Vec<String> = h
        .files
        .list_artifacts(run.id)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.path)
        .collect();
    paths.sort();
    // A symlink that stays inside the workspace is copied as the file it points to.
    assert_eq!(
        paths,
        vec!["out/alias.txt", "out/ok.txt", "out/real/in.txt"]
    );
    let log = h.log_texts(run.id).await;
    for expected in [
        "assay: warning: artifact pattern \"/etc/passwd\" must be relative",
        "assay: warning: artifact pattern \"../*\" must not contain '..'",
        "assay: warning: skipped artifact out/climb: symlink leads outside the workspace",
        "assay: warning: skipped artifact out/passwd: symlink leads outside the workspace",
        "assay: warning: skipped artifact out/root: symlink leads outside the workspace",
    ] {
        assert!(
            log.iter().any(|l| l == expected),
            "missing {expected:?} in {log:#?}"
        );
    }
    for path in ["out/passwd", "out/root", "out/root/etc/passwd", "out/climb"] {
        assert!(
            matches!(
                h.files
                    .read_artifact(run.id, path, &ArtifactQuery::default())
                    .await,
                Err(Error::NotFound { .. })
            ),
            "{path}"
        );
    }
}

#[tokio::test]
async fn read_artifact_refuses_traversal_in_every_spelling() {
    let h = Harness::new();
    let run = h
        .run(plan(vec![collecting(
            "1",
            "mkdir a; echo hi > a/x; echo top > x",
            &["**"],
        )]))
        .await;
    // An indexed artifact replaced by a symlink out of the root: never served.
    let root = h
        .dir
        .path()
        .join(format!("executions/{}/artifacts", run.id));
    std::fs::remove_file(root.join("a/x")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", root.join("a/x")).unwrap();

    for path in [
        "../../etc/passwd",
        "/etc/passwd",
        "a/../../x",
        "..%2f..%2fetc%2fpasswd",
        "a\\..\\b",
        "a/../x",
        "./x",
        "a//x",
        "",
        "a/x",
        "x\0",
    ] {
        let result = h
            .files
            .read_artifact(run.id, path, &ArtifactQuery::default())
            .await;
        assert!(
            matches!(result, Err(Error::NotFound { .. })),
            "{path:?}: {result:?}"
        );
        assert!(
            h.files.open_artifact(run.id, path).await.is_err(),
            "{path:?}"
        );
    }
    // The untouched one is fine.
    match h
        .files
        .read_artifact(run.id, "x", &ArtifactQuery::default())
        .await
        .unwrap()
    {
        ArtifactContent::Text { lines, .. } => assert_eq!(lines, vec![(1, "top".to_string())]),
        other => panic!("expected text, got {other:?}"),
    }
}
