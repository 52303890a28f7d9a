//! Collecting a step's artifacts: glob the step's directory, copy matching regular files
//! into the execution's artifact root, and keep the index. Nothing outside the workspace is
//! ever read: symlinks are resolved and checked, directories reached through symlinks are
//! not walked, and patterns cannot be absolute or climb with `..`.

use super::{content_type, write_index};
use assay_core::execution::{Artifact, ArtifactSpec};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

/// Walking stops after this many directory entries (a guard against runaway trees).
const MAX_ENTRIES: usize = 200_000;

pub(crate) struct Collector {
    /// Canonical workspace path.
    workspace: PathBuf,
    /// The workspace as spelled in the layout (absolute paths in plans may use it).
    alias: PathBuf,
    root: PathBuf,
    index_path: PathBuf,
    entries: Vec<Artifact>,
    total: u64,
    max_file: u64,
    max_total: u64,
}

impl Collector {
    pub(crate) fn new(
        workspace: PathBuf,
        alias: PathBuf,
        root: PathBuf,
        index_path: PathBuf,
        max_file: u64,
        max_total: u64,
    ) -> Self {
        Self {
            workspace,
            alias,
            root,
            index_path,
            entries: Vec::new(),
            total: 0,
            max_file,
            max_total,
        }
    }

    pub(crate) fn artifacts(&self) -> &[Artifact] {
        &self.entries
    }

    /// Collects what `spec` names for `step`; returns warnings for the step's log.
    pub(crate) fn collect(
        &mut self,
        step: &str,
        spec: &ArtifactSpec,
        step_dir: &Path,
    ) -> Vec<String> {
        let mut warnings = Vec::new();
        let base = match spec.working_dir.as_deref().filter(|d| !d.is_empty()) {
            None => step_dir.to_path_buf(),
            Some(dir) => match self.existing_dir(dir) {
                Ok(Some(base)) => base,
                Ok(None) => {
                    warnings.push(format!("artifact directory {dir:?} does not exist"));
                    return warnings;
                }
                Err(e) => {
                    warnings.push(e);
                    return warnings;
                }
            },
        };
        let Some(globs) = build_globs(&spec.paths, &mut warnings) else {
            return warnings;
        };
        let before = self.entries.clone();
        self.walk(step, &base, &globs, &mut warnings);
        if self.entries != before
            && let Err(e) = write_index(&self.index_path, &self.entries)
        {
            warnings.push(format!("cannot write the artifact index: {e}"));
        }
        warnings
    }

    /// Resolves an artifact working directory without creating it.
    fn existing_dir(&self, dir: &str) -> Result<Option<PathBuf>, String> {
        let path = Path::new(dir);
        if path.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(format!("artifact directory {dir:?} must not contain '..'"));
        }
        let candidate = if path.is_absolute() {
            if !(path.starts_with(&self.workspace) || path.starts_with(&self.alias)) {
                return Err(format!(
                    "artifact directory {dir:?} is outside the workspace"
                ));
            }
            path.to_path_buf()
        } else {
            self.workspace.join(path)
        };
        match std::fs::canonicalize(&candidate) {
            Ok(c) if c.starts_with(&self.workspace) && c.is_dir() => Ok(Some(c)),
            Ok(_) => Err(format!(
                "artifact directory {dir:?} is not a directory inside the workspace"
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("artifact directory {dir:?}: {e}")),
        }
    }

    fn walk(&mut self, step: &str, base: &Path, globs: &GlobSet, warnings: &mut Vec<String>) {
        // (directory, its path relative to base with a trailing '/', matched as a whole)
        let mut stack = vec![(base.to_path_buf(), String::new(), false)];
        let mut seen = 0usize;
        while let Some((dir, prefix, included)) = stack.pop() {
            let Ok(read) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut entries: Vec<_> = read.flatten().collect();
            entries.sort_by_key(|e| e.file_name());
            for entry in entries {
                seen += 1;
                if seen > MAX_ENTRIES {
                    warnings.push(format!(
                        "stopped looking for artifacts after {MAX_ENTRIES} directory entries"
                    ));
                    return;
                }
                let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                let rel = format!("{prefix}{name}");
                let matched = included || globs.is_match(&rel);
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if kind.is_dir() {
                    stack.push((entry.path(), format!("{rel}/"), matched));
                } else if !matched {
                    continue;
                } else if kind.is_file() {
                    self.copy(step, &entry.path(), &rel, warnings);
                } else if kind.is_symlink() {
                    match std::fs::canonicalize(entry.path()) {
                        Ok(target) if !target.starts_with(&self.workspace) => warnings.push(
                            format!("skipped artifact {rel}: symlink leads outside the workspace"),
                        ),
                        Ok(target) if target.is_file() => self.copy(step, &target, &rel, warnings),
                        Ok(_) => warnings.push(format!(
                            "skipped artifact {rel}: symlinked directories are not followed"
                        )),
                        Err(_) => warnings.push(format!("skipped artifact {rel}: broken symlink")),
                    }
                } else {
                    warnings.push(format!("skipped artifact {rel}: not a regular file"));
                }
            }
        }
    }

    fn copy(&mut self, step: &str, source: &Path, rel: &str, warnings: &mut Vec<String>) {
        // O_NOFOLLOW: a file swapped for a symlink after the walk is refused, not followed.
        // O_NONBLOCK: a file swapped for a FIFO cannot hang the executor.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
            .open(source);
        let file = match file {
            Ok(f) => f,
            Err(e) => {
                warnings.push(format!("skipped artifact {rel}: {e}"));
                return;
            }
        };
        let size = match file.metadata() {
            Ok(m) if m.is_file() => m.len(),
            Ok(_) => {
                warnings.push(format!("skipped artifact {rel}: not a regular file"));
                return;
            }
            Err(e) => {
                warnings.push(format!("skipped artifact {rel}: {e}"));
                return;
            }
        };
        if size > self.max_file {
            warnings.push(format!(
                "skipped artifact {rel}: {size} bytes exceeds the per-file limit of {} bytes",
                self.max_file
            ));
            return;
        }
        let previous = self.entries.iter().position(|a| a.path == rel);
        let replaced = previous.map_or(0, |i| self.entries[i].size);
        if self.total - replaced + size > self.max_total {
            warnings.push(format!(
                "skipped artifact {rel}: the execution's artifacts would exceed the total limit of {} bytes",
                self.max_total
            ));
            return;
        }
        let dest = self.root.join(rel);
        let copied = (|| -> std::io::Result<u64> {
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let mut out = File::create(&dest)?;
            std::io::copy(&mut file.take(self.max_file + 1), &mut out)
        })();
        let copied = match copied {
            Ok(n) if n > self.max_file || self.total - replaced + n > self.max_total => {
                // The file grew while being copied.
                let _ = std::fs::remove_file(&dest);
                warnings.push(format!(
                    "skipped artifact {rel}: it grew beyond the size limits"
                ));
                return;
            }
            Ok(n) => n,
            Err(e) => {
                let _ = std::fs::remove_file(&dest);
                warnings.push(format!("skipped artifact {rel}: {e}"));
                return;
            }
        };
        self.total = self.total - replaced + copied;
        let artifact = Artifact {
            path: rel.to_string(),
            size: copied,
            step: step.to_string(),
            content_type: content_type::guess(rel),
        };
        match previous {
            Some(i) => self.entries[i] = artifact,
            None => self.entries.push(artifact),
        }
    }
}

/// Globs are matched against paths relative to the artifact base, `/`-separated; `*` stays
/// within one directory and `**` crosses directories.
fn build_globs(patterns: &[String], warnings: &mut Vec<String>) -> Option<GlobSet> {
    let mut builder = GlobSetBuilder::new();
    let mut any = false;
    for raw in patterns {
        let pattern = raw.trim().trim_start_matches("./");
        if pattern.is_empty() {
            continue;
        }
        if pattern.starts_with('/') {
            warnings.push(format!("artifact pattern {raw:?} must be relative"));
            continue;
        }
        if pattern.split('/').any(|s| s == "..") {
            warnings.push(format!("artifact pattern {raw:?} must not contain '..'"));
            continue;
        }
        match GlobBuilder::new(pattern).literal_separator(true).build() {
            Ok(glob) => {
                builder.add(glob);
                any = true;
            }
            Err(e) => warnings.push(format!("artifact pattern {raw:?} is invalid: {e}")),
        }
    }
    if !any {
        return None;
    }
    match builder.build() {
        Ok(set) => Some(set),
        Err(e) => {
            warnings.push(format!("artifact patterns are invalid: {e}"));
            None
        }
    }
}
