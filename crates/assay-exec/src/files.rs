//! `FsExecutionFiles`: logs and artifacts of executions on the local file system.

use crate::artifacts::read::{normalize, open_verified, read_content};
use crate::artifacts::read_index;
use crate::layout::{Layout, remove_tree};
use crate::logs::live::LiveLogs;
use crate::logs::{CLOSED_FILE, follow, reader};
use assay_core::execution::{Artifact, ArtifactContent, ArtifactQuery, LogLine, LogPage, LogQuery};
use assay_core::ports::ExecutionFiles;
use assay_core::{Error, Result};
use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use uuid::Uuid;

const DOWNLOAD_CHUNK: usize = 64 * 1024;

/// Serves (and, through the executor, stores) each execution's logs and artifacts under
/// `data_dir/executions/<id>/`. Share one instance between the executor and the control
/// plane so log followers are woken directly instead of polling.
#[derive(Debug, Clone)]
pub struct FsExecutionFiles {
    data_dir: PathBuf,
    live: Arc<LiveLogs>,
}

impl FsExecutionFiles {
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            live: Arc::new(LiveLogs::default()),
        }
    }

    /// The working directory of an execution.
    pub fn workspace_dir(&self, id: Uuid) -> PathBuf {
        self.layout(id).workspace()
    }

    /// Deletes an execution's workspace, keeping its logs and artifacts (retention).
    pub async fn remove_workspace(&self, id: Uuid) -> Result<()> {
        let dir = self.workspace_dir(id);
        blocking(move || remove_tree(&dir).map_err(Error::internal)).await
    }

    pub(crate) fn layout(&self, id: Uuid) -> Layout {
        Layout::new(&self.data_dir, id)
    }

    pub(crate) fn live(&self) -> &LiveLogs {
        &self.live
    }

    /// The index entry for an untrusted path. Anything suspicious is `NotFound`, exactly
    /// like a missing artifact, so probing paths reveals nothing.
    async fn find_artifact(&self, id: Uuid, path: &str) -> Result<(Artifact, std::fs::File)> {
        let not_found = || Error::not_found("artifact", path);
        let Some(key) = normalize(path) else {
            return Err(not_found());
        };
        let layout = self.layout(id);
        let found = blocking(move || {
            let index = read_index(&layout.artifact_index()).map_err(Error::internal)?;
            let Some(artifact) = index.into_iter().find(|a| a.path == key) else {
                return Ok(None);
            };
            match open_verified(&layout.artifacts(), &artifact.path) {
                Ok(file) => Ok(Some((artifact, file))),
                // Symlinks, escapes and vanished files all look like "no such artifact".
                Err(_) => Ok(None),
            }
        })
        .await?;
        found.ok_or_else(not_found)
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(Error::internal)?
}

#[async_trait]
impl ExecutionFiles for FsExecutionFiles {
    async fn read_logs(&self, execution_id: Uuid, query: &LogQuery) -> Result<LogPage> {
        let dir = self.layout(execution_id).logs();
        let query = query.clone();
        blocking(move || reader::query(&dir, &query)).await
    }

    fn follow_logs(
        &self,
        execution_id: Uuid,
        step: Option<String>,
        after_line: u64,
    ) -> BoxStream<'static, Result<LogLine>> {
        let dir = self.layout(execution_id).logs();
        follow::follow(dir, self.live.subscribe(execution_id), step, after_line)
    }

    async fn close_logs(&self, execution_id: Uuid) -> Result<()> {
        let dir = self.layout(execution_id).logs();
        blocking(move || {
            std::fs::create_dir_all(&dir).map_err(Error::internal)?;
            std::fs::File::create(dir.join(CLOSED_FILE)).map_err(Error::internal)?;
            Ok(())
        })
        .await?;
        self.live.finish(execution_id);
        Ok(())
    }

    async fn list_artifacts(&self, execution_id: Uuid) -> Result<Vec<Artifact>> {
        let path = self.layout(execution_id).artifact_index();
        blocking(move || read_index(&path).map_err(Error::internal)).await
    }

    async fn read_artifact(
        &self,
        execution_id: Uuid,
        path: &str,
        query: &ArtifactQuery,
    ) -> Result<ArtifactContent> {
        let (artifact, file) = self.find_artifact(execution_id, path).await?;
        let query = query.clone();
        blocking(move || read_content(file, &artifact, &query)).await
    }

    async fn open_artifact(
        &self,
        execution_id: Uuid,
        path: &str,
    ) -> Result<(Artifact, BoxStream<'static, Result<Vec<u8>>>)> {
        let (artifact, file) = self.find_artifact(execution_id, path).await?;
        let file = tokio::fs::File::from_std(file);
        let stream = futures::stream::unfold(Some(file), |file| async move {
            let mut file = file?;
            let mut buf = vec![0u8; DOWNLOAD_CHUNK];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(buf), Some(file)))
                }
                Err(e) => Some((Err(Error::internal(e)), None)),
            }
        })
        .boxed();
        Ok((artifact, stream))
    }

    async fn workspaces(&self) -> Result<Vec<(Uuid, assay_core::Timestamp)>> {
        let root = self.data_dir.join("executions");
        blocking(move || {
            let entries = match std::fs::read_dir(&root) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(Error::internal(e)),
            };
            let mut out = Vec::new();
            for entry in entries.flatten() {
                let Some(id) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| Uuid::parse_str(n).ok())
                else {
                    continue;
                };
                let Ok(meta) = std::fs::symlink_metadata(entry.path().join("workspace")) else {
                    continue;
                };
                if !meta.is_dir() {
                    continue;
                }
                let modified = meta.modified().map_err(Error::internal)?;
                out.push((id, time::OffsetDateTime::from(modified)));
            }
            out.sort_by_key(|(_, t)| *t);
            Ok(out)
        })
        .await
    }

    async fn remove_workspace(&self, execution_id: Uuid) -> Result<()> {
        FsExecutionFiles::remove_workspace(self, execution_id).await
    }

    async fn remove(&self, execution_id: Uuid) -> Result<()> {
        self.live.finish(execution_id);
        let layout = self.layout(execution_id);
        blocking(move || remove_tree(layout.root()).map_err(Error::internal)).await
    }
}
