//! The environments of one organization, for translating grants between what callers
//! write (environment ID or slug) and what is stored (environment ID).

use assay_core::error::FieldError;
use assay_core::ports::Store;
use assay_core::{Environment, Level, Result};
use std::collections::BTreeMap;
use uuid::Uuid;

pub(crate) struct EnvIndex {
    envs: Vec<Environment>,
}

impl EnvIndex {
    pub(crate) async fn load(store: &dyn Store, org_id: Uuid) -> Result<Self> {
        Ok(Self {
            envs: store.list_envs(org_id).await?,
        })
    }

    #[cfg(test)]
    pub(crate) fn empty() -> Self {
        Self { envs: Vec::new() }
    }

    /// By ID or slug.
    pub(crate) fn resolve(&self, key: &str) -> Option<&Environment> {
        match Uuid::parse_str(key) {
            Ok(id) => self.envs.iter().find(|e| e.id == id),
            Err(_) => self.envs.iter().find(|e| e.slug == key),
        }
    }

    /// The slug for display; the ID of an environment that no longer exists.
    pub(crate) fn slug(&self, id: Uuid) -> String {
        self.envs
            .iter()
            .find(|e| e.id == id)
            .map_or_else(|| id.to_string(), |e| e.slug.clone())
    }

    pub(crate) fn by_slug(&self, grants: &BTreeMap<Uuid, Level>) -> BTreeMap<String, Level> {
        grants
            .iter()
            .map(|(id, level)| (self.slug(*id), *level))
            .collect()
    }

    /// Grants keyed by environment ID; an unknown environment is an error at
    /// `<path>.<key>` (collected, so every problem is reported at once).
    pub(crate) fn resolve_grants(
        &self,
        grants: &BTreeMap<String, Level>,
        path: &str,
        errors: &mut Vec<FieldError>,
    ) -> BTreeMap<Uuid, Level> {
        let mut resolved = BTreeMap::new();
        for (key, level) in grants {
            match self.resolve(key) {
                Some(env) => {
                    resolved.insert(env.id, *level);
                }
                None => errors.push(FieldError {
                    path: format!("{path}.{key}"),
                    message: format!("unknown environment {key:?}"),
                }),
            }
        }
        resolved
    }
}

/// Resources naming grants on audit events: `grant:<env slug>=<level>`.
pub(crate) fn grant_refs(grants: &BTreeMap<String, Level>) -> impl Iterator<Item = String> + '_ {
    grants
        .iter()
        .map(|(env, level)| format!("grant:{env}={level}"))
}
