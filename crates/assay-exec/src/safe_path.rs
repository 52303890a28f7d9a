//! Containment: every path that comes from a plan or a request is resolved here, so that
//! nothing a workflow or a caller writes can reach outside the directory it belongs to.

use std::path::{Component, Path, PathBuf};

/// Splits a relative, `/`-separated path into its normal components, refusing anything that
/// could leave the directory it is joined to (absolute paths, `..`, backslashes, NUL).
pub(crate) fn relative_components(path: &str) -> Result<Vec<&str>, String> {
    if path.contains('\0') {
        return Err(format!("path {path:?} contains a NUL byte"));
    }
    if path.contains('\\') {
        return Err(format!("path {path:?} contains a backslash"));
    }
    if path.starts_with('/') {
        return Err(format!("path {path:?} must be relative"));
    }
    let mut out = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => return Err(format!("path {path:?} must not contain '..'")),
            s => out.push(s),
        }
    }
    if out.is_empty() {
        return Err(format!("path {path:?} is empty"));
    }
    Ok(out)
}

/// Walks `components` below `root` (which must be canonical), creating missing directories.
/// An existing symlink is followed only when it resolves inside `root`, so a symlink planted
/// by cloned content cannot redirect writes elsewhere.
pub(crate) fn ensure_dir_inside(root: &Path, components: &[&str]) -> Result<PathBuf, String> {
    let mut current = root.to_path_buf();
    for component in components {
        let next = current.join(component);
        match std::fs::symlink_metadata(&next) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let resolved = std::fs::canonicalize(&next)
                    .map_err(|e| format!("cannot resolve {}: {e}", next.display()))?;
                if !resolved.starts_with(root) {
                    return Err(format!(
                        "{} is a symlink leading outside the workspace",
                        next.display()
                    ));
                }
                if !resolved.is_dir() {
                    return Err(format!("{} is not a directory", next.display()));
                }
                current = resolved;
            }
            Ok(meta) if meta.is_dir() => current = next,
            Ok(_) => return Err(format!("{} is not a directory", next.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&next)
                    .map_err(|e| format!("cannot create {}: {e}", next.display()))?;
                current = next;
            }
            Err(e) => return Err(format!("cannot inspect {}: {e}", next.display())),
        }
    }
    Ok(current)
}

/// The directory a step runs in: `dir` relative to the workspace, or absolute inside it.
/// `workspace` is canonical; `alias` is the same directory as spelled in the layout (absolute
/// paths in plans may use either spelling). Missing directories are created.
pub(crate) fn resolve_working_dir(
    workspace: &Path,
    alias: &Path,
    dir: Option<&str>,
) -> Result<PathBuf, String> {
    let Some(dir) = dir.filter(|d| !d.is_empty()) else {
        return Ok(workspace.to_path_buf());
    };
    let relative = if dir.starts_with('/') {
        let path = Path::new(dir);
        if path.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(format!("working directory {dir:?} must not contain '..'"));
        }
        let rest = path
            .strip_prefix(workspace)
            .or_else(|_| path.strip_prefix(alias))
            .map_err(|_| format!("working directory {dir:?} is outside the workspace"))?;
        match rest.to_str() {
            Some("") => return Ok(workspace.to_path_buf()),
            Some(s) => s.to_string(),
            None => return Err(format!("working directory {dir:?} is not valid UTF-8")),
        }
    } else {
        dir.to_string()
    };
    let components =
        relative_components(&relative).map_err(|e| format!("working directory {dir:?}: {e}"))?;
    ensure_dir_inside(workspace, &components).map_err(|e| format!("working directory {dir:?}: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn relative_components_refuses_escapes() {
        assert_eq!(
            relative_components("a/./b//c").unwrap(),
            vec!["a", "b", "c"]
        );
        for bad in [
            "",
            ".",
            "/etc/passwd",
            "a/../b",
            "..",
            "a\\b",
            "a\0b",
            "../x",
        ] {
            assert!(relative_components(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn working_dir_stays_inside() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = std::fs::canonicalize(tmp.path()).unwrap();
        std::os::unix::fs::symlink("/", ws.join("root")).unwrap();
        assert_eq!(resolve_working_dir(&ws, &ws, None).unwrap(), ws);
        assert_eq!(
            resolve_working_dir(&ws, &ws, Some("x/y")).unwrap(),
            ws.join("x/y")
        );
        let abs = ws.join("z").to_string_lossy().into_owned();
        assert_eq!(
            resolve_working_dir(&ws, &ws, Some(&abs)).unwrap(),
            ws.join("z")
        );
        assert!(resolve_working_dir(&ws, &ws, Some("/tmp")).is_err());
        assert!(resolve_working_dir(&ws, &ws, Some("root/tmp")).is_err());
        assert!(resolve_working_dir(&ws, &ws, Some("../x")).is_err());
    }
}
