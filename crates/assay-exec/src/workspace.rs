//! Preparing an execution's workspace: inline files and the git checkout.

use crate::safe_path::{ensure_dir_inside, relative_components};
use assay_core::execution::{GitContent, InlineFile};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Writes `files` below `workspace` (canonical). Paths must be relative and stay inside;
/// an existing symlink is never written through.
pub(crate) fn write_files(workspace: &Path, files: &[InlineFile]) -> Result<(), String> {
    for file in files {
        let components =
            relative_components(&file.path).map_err(|e| format!("content file: {e}"))?;
        let (name, parents) = components
            .split_last()
            .ok_or_else(|| format!("content file {:?} has no name", file.path))?;
        let dir = ensure_dir_inside(workspace, parents)
            .map_err(|e| format!("content file {:?}: {e}", file.path))?;
        let mode = file.mode.unwrap_or(0o644) & 0o777;
        let target = dir.join(name);
        let write = || -> std::io::Result<()> {
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(mode)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(&target)?;
            out.write_all(file.content.as_bytes())?;
            // The umask may have narrowed the mode given at creation.
            out.set_permissions(std::fs::Permissions::from_mode(mode))
        };
        write().map_err(|e| format!("cannot write content file {:?}: {e}", file.path))?;
    }
    Ok(())
}

/// The git commands that check `git` out into `dest` (absolute, inside the workspace):
/// clone without checkout, optional sparse patterns, then checkout of the revision.
pub(crate) fn git_commands(git: &GitContent, dest: &Path) -> Result<Vec<Vec<String>>, String> {
    if git.uri.trim().is_empty() {
        return Err("git uri is empty".into());
    }
    // Values starting with '-' could be taken for options.
    if git.uri.starts_with('-') {
        return Err(format!("git uri {:?} is invalid", redact_uri(&git.uri)));
    }
    if let Some(rev) = &git.revision
        && (rev.starts_with('-') || rev.contains(['\0', '\n']))
    {
        return Err(format!("git revision {rev:?} is invalid"));
    }
    let dest = dest.to_string_lossy().into_owned();
    let mut commands = vec![vec![
        "git".to_string(),
        "clone".into(),
        "--no-checkout".into(),
        "--".into(),
        git.uri.clone(),
        dest.clone(),
    ]];
    let patterns: Vec<String> = git
        .paths
        .iter()
        .map(|p| p.trim().trim_start_matches("./").trim_matches('/'))
        .filter(|p| !p.is_empty())
        .map(|p| {
            relative_components(p)
                .map(|_| format!("/{p}"))
                .map_err(|e| format!("git sparse path: {e}"))
        })
        .collect::<Result<_, _>>()?;
    if !patterns.is_empty() {
        let mut sparse = vec![
            "git".to_string(),
            "-C".into(),
            dest.clone(),
            "sparse-checkout".into(),
            "set".into(),
            "--no-cone".into(),
            "--".into(),
        ];
        sparse.extend(patterns);
        commands.push(sparse);
    }
    let mut checkout = vec![
        "git".to_string(),
        "-c".into(),
        "advice.detachedHead=false".into(),
        "-C".into(),
        dest,
        "checkout".into(),
    ];
    if let Some(rev) = git.revision.as_deref().filter(|r| !r.is_empty()) {
        checkout.push(rev.to_string());
        checkout.push("--".into());
    }
    commands.push(checkout);
    Ok(commands)
}

/// The URI without credentials, for messages.
pub(crate) fn redact_uri(uri: &str) -> String {
    match credentials(uri) {
        Some(userinfo) => uri.replacen(userinfo, "***", 1),
        None => uri.to_string(),
    }
}

/// The `user:password` part of `scheme://user:password@host/…`, if any.
pub(crate) fn credentials(uri: &str) -> Option<&str> {
    let (_, rest) = uri.split_once("://")?;
    let authority = rest.split('/').next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    (!userinfo.is_empty()).then_some(userinfo)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn redacts_credentials() {
        assert_eq!(
            redact_uri("https://user:tok@example.com/r.git"),
            "https://***@example.com/r.git"
        );
        assert_eq!(redact_uri("file:///srv/r.git"), "file:///srv/r.git");
        assert_eq!(credentials("git@host:org/r.git"), None);
    }

    #[test]
    fn git_commands_are_safe() {
        let git = GitContent {
            uri: "file:///srv/r.git".into(),
            revision: Some("v1".into()),
            paths: vec!["./src/".into(), "docs".into()],
            mount_path: "repo".into(),
        };
        let cmds = git_commands(&git, Path::new("/ws/repo")).unwrap();
        assert_eq!(cmds.len(), 3);
        assert_eq!(cmds[1][7..], ["/src".to_string(), "/docs".to_string()]);
        assert_eq!(cmds[2][6..], ["v1".to_string(), "--".to_string()]);
        let bad = GitContent {
            revision: Some("--upload-pack=evil".into()),
            ..git.clone()
        };
        assert!(git_commands(&bad, Path::new("/ws/repo")).is_err());
        let bad = GitContent {
            paths: vec!["../x".into()],
            ..git
        };
        assert!(git_commands(&bad, Path::new("/ws/repo")).is_err());
    }

    #[test]
    fn files_stay_inside() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = std::fs::canonicalize(tmp.path()).unwrap();
        let ok = InlineFile {
            path: "a/b/run.sh".into(),
            content: "echo hi\n".into(),
            mode: Some(0o755),
        };
        write_files(&ws, std::slice::from_ref(&ok)).unwrap();
        let meta = std::fs::metadata(ws.join("a/b/run.sh")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o755);
        std::os::unix::fs::symlink("/tmp", ws.join("out")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", ws.join("link")).unwrap();
        for path in ["/etc/x", "../x", "out/x", "link"] {
            let f = InlineFile {
                path: path.into(),
                ..ok.clone()
            };
            assert!(write_files(&ws, &[f]).is_err(), "{path}");
        }
    }
}
