//! Workflows and templates: stored exactly as submitted, parsed on the way in and out.

use crate::LocalControlPlane;
use crate::access::Scope;
use crate::audit::Call;
use crate::insight;
use crate::suggest;
use assay_core::execution::ExecutionSummary;
use assay_core::page::{MAX_PAGE_SIZE, Page, PageRequest};
use assay_core::spec::{self, WorkflowDocument};
use assay_core::workflow::{
    ApplyResult, ResourceKind, WorkflowDetail, WorkflowFilter, WorkflowRecord, WorkflowSummary,
};
use assay_core::{Error, Result};
use std::collections::HashMap;
use uuid::Uuid;

pub(crate) fn resource_ref(kind: ResourceKind, name: &str) -> String {
    format!("{}:{name}", kind.as_str())
}

impl LocalControlPlane {
    /// Lists with health per workflow: the recent executions of every workflow on the page
    /// come from one batched store call, not one query per item.
    pub(crate) async fn list_resources_in(
        &self,
        scope: &Scope,
        kind: ResourceKind,
        filter: &WorkflowFilter,
        page: &PageRequest,
    ) -> Result<Page<WorkflowSummary>> {
        let records = self
            .store
            .list_resources(scope.env.id, kind, filter, page)
            .await?;
        let mut recent = match kind {
            ResourceKind::Workflow => {
                let ids: Vec<Uuid> = records.items.iter().map(|r| r.id).collect();
                self.store
                    .recent_executions_for_workflows(scope.env.id, &ids, insight::HEALTH_FETCH)
                    .await?
            }
            ResourceKind::Template => HashMap::new(),
        };
        let items = records
            .items
            .into_iter()
            .map(|record| {
                let executions = recent.remove(&record.id).unwrap_or_default();
                summarize(record, &executions).0
            })
            .collect();
        Ok(Page {
            items,
            total: records.total,
            next_cursor: records.next_cursor,
        })
    }

    pub(crate) async fn get_resource_in(
        &self,
        scope: &Scope,
        kind: ResourceKind,
        name: &str,
    ) -> Result<WorkflowDetail> {
        let record = self.find_resource(scope, kind, name).await?;
        // Stored documents were valid when submitted; if the spec has since become
        // stricter the source is still returned, with no parsed definition.
        let definition = match spec::parse(&record.source, kind) {
            Ok(doc) => doc.to_json(),
            Err(e) => {
                tracing::warn!(kind = kind.as_str(), name, error = %e, "stored document no longer parses");
                serde_json::Value::Null
            }
        };
        self.detail(record, definition).await
    }

    pub(crate) async fn create_resource_in(
        &self,
        call: &mut Call<'_>,
        scope: &Scope,
        kind: ResourceKind,
        source: &str,
    ) -> Result<WorkflowDetail> {
        let doc = spec::parse(source, kind)?;
        call.add(resource_ref(kind, &doc.name));
        let record = self.new_record(scope, &doc, source);
        self.store.insert_resource(&record).await?;
        self.detail(record, doc.to_json()).await
    }

    pub(crate) async fn update_resource_in(
        &self,
        scope: &Scope,
        kind: ResourceKind,
        name: &str,
        source: &str,
    ) -> Result<WorkflowDetail> {
        let doc = spec::parse(source, kind)?;
        if doc.name != name {
            return Err(Error::invalid(
                "metadata.name",
                format!(
                    "the document is named {:?} but the request is for {name:?}; \
                     to rename, delete and create",
                    doc.name
                ),
            ));
        }
        let existing = self.find_resource(scope, kind, name).await?;
        let record = self.replacement(existing, &doc, source);
        self.store.update_resource(&record).await?;
        self.detail(record, doc.to_json()).await
    }

    pub(crate) async fn apply_resource_in(
        &self,
        call: &mut Call<'_>,
        scope: &Scope,
        kind: ResourceKind,
        source: &str,
    ) -> Result<ApplyResult> {
        let doc = spec::parse(source, kind)?;
        call.add(resource_ref(kind, &doc.name));
        // Two attempts: a concurrent create between our read and insert turns into an update.
        for _ in 0..2 {
            match self
                .store
                .get_resource(scope.env.id, kind, &doc.name)
                .await?
            {
                Some(existing) => {
                    let record = self.replacement(existing, &doc, source);
                    match self.store.update_resource(&record).await {
                        Ok(()) => {
                            let workflow = self.detail(record, doc.to_json()).await?;
                            return Ok(ApplyResult {
                                created: false,
                                workflow,
                            });
                        }
                        // Deleted meanwhile: try again (as a create).
                        Err(Error::NotFound { .. }) => continue,
                        Err(e) => return Err(e),
                    }
                }
                None => {
                    let record = self.new_record(scope, &doc, source);
                    match self.store.insert_resource(&record).await {
                        Ok(()) => {
                            let workflow = self.detail(record, doc.to_json()).await?;
                            return Ok(ApplyResult {
                                created: true,
                                workflow,
                            });
                        }
                        Err(Error::Conflict(_)) => continue,
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Err(Error::Conflict(format!(
            "{} {:?} is being changed concurrently; try again",
            kind.as_str(),
            doc.name
        )))
    }

    pub(crate) async fn delete_resource_in(
        &self,
        scope: &Scope,
        kind: ResourceKind,
        name: &str,
    ) -> Result<()> {
        if self.store.delete_resource(scope.env.id, kind, name).await? {
            Ok(())
        } else {
            Err(self.not_found_suggesting(scope, kind, name).await)
        }
    }

    /// The record, or `NotFound` suggesting close names.
    pub(crate) async fn find_resource(
        &self,
        scope: &Scope,
        kind: ResourceKind,
        name: &str,
    ) -> Result<WorkflowRecord> {
        match self.store.get_resource(scope.env.id, kind, name).await? {
            Some(record) => Ok(record),
            None => Err(self.not_found_suggesting(scope, kind, name).await),
        }
    }

    /// Suggestions come from one bounded list query (the first `MAX_PAGE_SIZE` names).
    async fn not_found_suggesting(&self, scope: &Scope, kind: ResourceKind, name: &str) -> Error {
        let page = PageRequest {
            limit: Some(MAX_PAGE_SIZE),
            cursor: None,
        };
        let names: Vec<String> = match self
            .store
            .list_resources(scope.env.id, kind, &WorkflowFilter::default(), &page)
            .await
        {
            Ok(page) => page.items.into_iter().map(|r| r.name).collect(),
            Err(_) => Vec::new(),
        };
        suggest::not_found_with_suggestions(kind.as_str(), name, &names)
    }

    fn new_record(&self, scope: &Scope, doc: &WorkflowDocument, source: &str) -> WorkflowRecord {
        let now = crate::stamp::now(self.clock.as_ref());
        WorkflowRecord {
            id: Uuid::now_v7(),
            env_id: scope.env.id,
            kind: doc.kind,
            name: doc.name.clone(),
            description: doc.description.clone(),
            labels: doc.labels.clone(),
            source: source.to_string(),
            created_at: now,
            updated_at: now,
        }
    }

    fn replacement(
        &self,
        existing: WorkflowRecord,
        doc: &WorkflowDocument,
        source: &str,
    ) -> WorkflowRecord {
        WorkflowRecord {
            description: doc.description.clone(),
            labels: doc.labels.clone(),
            source: source.to_string(),
            updated_at: crate::stamp::now(self.clock.as_ref()),
            ..existing
        }
    }

    async fn detail(
        &self,
        record: WorkflowRecord,
        definition: serde_json::Value,
    ) -> Result<WorkflowDetail> {
        let recent = match record.kind {
            ResourceKind::Workflow => {
                self.store
                    .recent_executions(record.id, insight::HEALTH_FETCH)
                    .await?
            }
            ResourceKind::Template => Vec::new(),
        };
        let (summary, source) = summarize(record, &recent);
        Ok(WorkflowDetail {
            summary,
            source,
            definition,
        })
    }
}

/// The list view of a record (health from its recent executions, newest first, for
/// workflows), and the source it no longer carries.
fn summarize(record: WorkflowRecord, recent: &[ExecutionSummary]) -> (WorkflowSummary, String) {
    let (health, last_execution) = match record.kind {
        ResourceKind::Workflow => (
            Some(insight::health(recent)),
            insight::last_execution(recent),
        ),
        ResourceKind::Template => (None, None),
    };
    let summary = WorkflowSummary {
        id: record.id,
        kind: record.kind,
        name: record.name,
        description: record.description,
        labels: record.labels,
        created_at: record.created_at,
        updated_at: record.updated_at,
        health,
        last_execution,
    };
    (summary, record.source)
}
