//! Artifacts: files collected from the workspace after each step, and reading them back.

pub(crate) mod collect;
pub(crate) mod content_type;
pub(crate) mod read;

use assay_core::execution::Artifact;
use std::path::Path;

/// Reads the artifact index (empty when nothing was collected).
pub(crate) fn read_index(path: &Path) -> std::io::Result<Vec<Artifact>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(std::io::Error::other),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Replaces the index atomically so readers never see half of it.
pub(crate) fn write_index(path: &Path, artifacts: &[Artifact]) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(artifacts).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
