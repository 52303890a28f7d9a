//! Git content from a local bare repository made with the system git.

use crate::common::*;
use assay_core::execution::{ExecutionStatus::*, GitContent};
use std::path::Path;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.invalid",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A bare repo with two commits: v1 (hello.txt = "v1", src/a.txt) and the branch head
/// (hello.txt = "v2", src/a.txt, docs/d.txt).
fn bare_repo(root: &Path) -> String {
    let bare = root.join("origin.git");
    let work = root.join("work");
    std::fs::create_dir_all(&work).unwrap();
    git(root, &["init", "--bare", "-q", bare.to_str().unwrap()]);
    git(&work, &["init", "-q"]);
    std::fs::create_dir_all(work.join("src")).unwrap();
    std::fs::write(work.join("hello.txt"), "v1\n").unwrap();
    std::fs::write(work.join("src/a.txt"), "a\n").unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "one"]);
    git(&work, &["tag", "v1"]);
    std::fs::create_dir_all(work.join("docs")).unwrap();
    std::fs::write(work.join("hello.txt"), "v2\n").unwrap();
    std::fs::write(work.join("docs/d.txt"), "d\n").unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "two"]);
    git(
        &work,
        &[
            "push",
            "-q",
            bare.to_str().unwrap(),
            "HEAD:refs/heads/main",
            "v1",
        ],
    );
    git(
        root,
        &[
            "--git-dir",
            bare.to_str().unwrap(),
            "symbolic-ref",
            "HEAD",
            "refs/heads/main",
        ],
    );
    format!("file://{}", bare.display())
}

fn with_git(
    uri: &str,
    revision: Option<&str>,
    paths: &[&str],
    script: &str,
) -> assay_core::execution::ExecutionPlan {
    let mut p = plan(vec![shell("1", script)]);
    p.git = Some(GitContent {
        uri: uri.into(),
        revision: revision.map(str::to_string),
        paths: paths.iter().map(|s| s.to_string()).collect(),
        mount_path: "repo".into(),
    });
    p
}

#[tokio::test]
async fn clones_a_local_repository() {
    let repos = tempfile::tempdir().unwrap();
    let uri = bare_repo(repos.path());
    let h = Harness::new();

    let run = h
        .run(with_git(&uri, None, &[], "cat repo/hello.txt; ls repo"))
        .await;
    assert_eq!(run.outcome.status, Passed, "{:?}", run.outcome.error);
    let log = h.log_texts(run.id).await;
    assert_eq!(log[0], format!("assay: cloning {uri} into repo"));
    let step1: Vec<_> = h
        .files
        .read_logs(
            run.id,
            &assay_core::execution::LogQuery {
                step: Some("1".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .lines
        .into_iter()
        .map(|l| l.text)
        .collect();
    assert_eq!(step1, vec!["v2", "docs", "hello.txt", "src"]);

    // A tag, and a plain local path instead of a file:// URI.
    let local = repos
        .path()
        .join("origin.git")
        .to_string_lossy()
        .into_owned();
    let run = h
        .run(with_git(&local, Some("v1"), &[], "cat repo/hello.txt"))
        .await;
    assert_eq!(run.outcome.status, Passed, "{:?}", run.outcome.error);
    assert_eq!(h.log_texts(run.id).await.last().unwrap(), "v1");

    // Sparse paths.
    let run = h.run(with_git(&uri, None, &["src"], "ls repo")).await;
    assert_eq!(run.outcome.status, Passed, "{:?}", run.outcome.error);
    assert_eq!(h.log_texts(run.id).await.last().unwrap(), "src");
}

#[tokio::test]
async fn a_failed_clone_fails_the_execution() {
    let repos = tempfile::tempdir().unwrap();
    let h = Harness::new();
    let missing = format!("file://{}/missing.git", repos.path().display());
    let mut p = with_git(&missing, None, &[], "echo never");
    p.after = vec![shell("after.1", "echo cleanup")];
    let run = h.run(p).await;
    assert_eq!(run.outcome.status, Failed);
    let error = run.outcome.error.clone().unwrap();
    assert!(
        error.starts_with(&format!(
            "git checkout of {missing} failed: `git clone` ended with exit code"
        )),
        "{error}"
    );
    assert_eq!(run.step("1").status, Skipped);
    assert_eq!(
        run.step("1").error.as_deref(),
        Some("not run: workspace preparation failed")
    );
    assert_eq!(run.step("after.1").status, Passed);
    let content = h
        .files
        .read_logs(
            run.id,
            &assay_core::execution::LogQuery {
                step: Some("content".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        content.lines.iter().any(
            |l| l.text.contains("does not appear to be a git repository")
                || l.text.contains("not found")
        ),
        "{:?}",
        content.lines
    );
    assert_eq!(
        content.lines.last().unwrap().text,
        format!("assay: error: {error}")
    );
}
