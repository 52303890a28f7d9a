//! Workflows and templates, with their labels mirrored into `workflow_labels`.

use super::rows;
use crate::backend::{Backend, WriteTx};
use crate::codec::to_json;
use crate::cursor::NameCursor;
use crate::error::{db, unique};
use crate::selector::{Requirement, Selector};
use crate::sql::{Arg, Sql};
use assay_core::page::{Page, PageRequest};
use assay_core::workflow::{ResourceKind, WorkflowFilter, WorkflowRecord};
use assay_core::{Error, Result};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

fn not_found(kind: ResourceKind, name: &str) -> Error {
    Error::not_found(kind.as_str(), name)
}

async fn write_labels<T: WriteTx>(tx: &mut T, record: &WorkflowRecord, id: Uuid) -> Result<()> {
    if record.labels.is_empty() {
        return Ok(());
    }
    let mut q = Sql::new(
        "INSERT INTO workflow_labels (workflow_id, key, value, env_id, kind, name) VALUES ",
    );
    for (i, (key, value)) in record.labels.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.bind_tuple([
            Arg::Uuid(id),
            Arg::Text(key.clone()),
            Arg::Text(value.clone()),
            Arg::Uuid(record.env_id),
            Arg::Text(record.kind.as_str().into()),
            Arg::Text(record.name.clone()),
        ]);
    }
    tx.execute(q).await.map_err(db)?;
    Ok(())
}

pub async fn insert<B: Backend>(conn: &B, record: &WorkflowRecord) -> Result<()> {
    let mut tx = conn.begin().await.map_err(db)?;
    let q = Sql::new(
        "INSERT INTO workflows (id, env_id, kind, name, description, created_at, updated_at, \
         labels, source) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .arg(record.id)
    .arg(record.env_id)
    .arg(record.kind.as_str())
    .arg(&record.name)
    .arg(&record.description)
    .arg(record.created_at)
    .arg(record.updated_at)
    .arg(to_json(&record.labels)?)
    .arg(&record.source);
    tx.execute(q).await.map_err(unique(format!(
        "{} {:?} already exists in this environment",
        record.kind.as_str(),
        record.name
    )))?;
    write_labels(&mut tx, record, record.id).await?;
    tx.commit().await.map_err(db)
}

pub async fn update<B: Backend>(conn: &B, record: &WorkflowRecord) -> Result<()> {
    let mut tx = conn.begin().await.map_err(db)?;
    let q = Sql::new(
        "UPDATE workflows SET source = $1, description = $2, labels = $3, updated_at = $4 \
         WHERE env_id = $5 AND kind = $6 AND name = $7 RETURNING id",
    )
    .arg(&record.source)
    .arg(&record.description)
    .arg(to_json(&record.labels)?)
    .arg(record.updated_at)
    .arg(record.env_id)
    .arg(record.kind.as_str())
    .arg(&record.name);
    let row = tx
        .fetch_optional(q)
        .await
        .map_err(db)?
        .ok_or_else(|| not_found(record.kind, &record.name))?;
    let id = crate::backend::RowExt::uuid(&row, "id").map_err(db)?;
    tx.execute(Sql::new("DELETE FROM workflow_labels WHERE workflow_id = $1").arg(id))
        .await
        .map_err(db)?;
    write_labels(&mut tx, record, id).await?;
    tx.commit().await.map_err(db)
}

pub async fn delete<B: Backend>(
    conn: &B,
    env_id: Uuid,
    kind: ResourceKind,
    name: &str,
) -> Result<bool> {
    // Labels go by ON DELETE CASCADE; executions stay (they have no foreign key here).
    let q = Sql::new("DELETE FROM workflows WHERE env_id = $1 AND kind = $2 AND name = $3")
        .arg(env_id)
        .arg(kind.as_str())
        .arg(name);
    Ok(conn.execute(q).await.map_err(db)? > 0)
}

pub async fn get<B: Backend>(
    conn: &B,
    env_id: Uuid,
    kind: ResourceKind,
    name: &str,
) -> Result<Option<WorkflowRecord>> {
    let q = Sql::new(&format!(
        "SELECT {} FROM workflows w WHERE w.env_id = $1 AND w.kind = $2 AND w.name = $3",
        rows::WORKFLOW_COLS
    ))
    .arg(env_id)
    .arg(kind.as_str())
    .arg(name);
    conn.fetch_optional(q)
        .await
        .map_err(db)?
        .map(|r| rows::workflow(&r))
        .transpose()
}

/// `%search%` with `%`, `_` and `\` escaped for `LIKE … ESCAPE '\'`. Case folding is
/// left to the engine's `lower()` on both sides, so pattern and column fold alike
/// (ASCII-only on SQLite, Unicode on PostgreSQL).
fn like_pattern(search: &str) -> String {
    let mut p = String::with_capacity(search.len() + 2);
    p.push('%');
    for c in search.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// A label requirement as a predicate on the workflow whose ID is in column `id_col`.
fn push_requirement(q: &mut Sql, id_col: &str, r: &Requirement) {
    let (negate, key, value) = match r {
        Requirement::Equals { key, value } => (false, key, Some(value)),
        Requirement::NotEquals { key, value } => (true, key, Some(value)),
        Requirement::Exists { key } => (false, key, None),
    };
    q.push(if negate {
        " AND NOT EXISTS"
    } else {
        " AND EXISTS"
    });
    q.push(" (SELECT 1 FROM workflow_labels l WHERE l.workflow_id = ");
    q.push(id_col);
    q.push(" AND l.key = ").bind(key.as_str());
    if let Some(value) = value {
        q.push(" AND l.value = ").bind(value.as_str());
    }
    q.push(")");
}

/// Builds the list query (or its count). With a `key=value` requirement the scan walks
/// `workflow_labels_lookup` (env, kind, key, value, name) — one index range already in
/// name order; otherwise it walks the (env, kind, name) unique index. Other requirements
/// are probes on `workflow_labels`' primary key. `search` is a substring match, so it
/// filters the rows of the walked range (at most the environment's workflows of this
/// kind — fine for 10k; a trigram index would be the next step).
fn build(
    env_id: Uuid,
    kind: ResourceKind,
    selector: &Selector,
    search: Option<&str>,
    page: Option<(Option<&NameCursor>, u32)>,
) -> Sql {
    let driver = selector
        .requirements
        .iter()
        .position(|r| matches!(r, Requirement::Equals { .. }));
    let mut q = Sql::default();
    let counting = page.is_none();
    q.push(if counting {
        "SELECT COUNT(*) AS n"
    } else {
        "SELECT "
    });
    if !counting {
        q.push(rows::WORKFLOW_COLS);
    }
    let (name_col, id_col) = match driver.map(|i| &selector.requirements[i]) {
        Some(Requirement::Equals { key, value }) => {
            q.push(" FROM workflow_labels d JOIN workflows w ON w.id = d.workflow_id");
            q.push(" WHERE d.env_id = ").bind(env_id);
            q.push(" AND d.kind = ").bind(kind.as_str());
            q.push(" AND d.key = ").bind(key.as_str());
            q.push(" AND d.value = ").bind(value.as_str());
            ("d.name", "d.workflow_id")
        }
        _ => {
            q.push(" FROM workflows w WHERE w.env_id = ").bind(env_id);
            q.push(" AND w.kind = ").bind(kind.as_str());
            ("w.name", "w.id")
        }
    };
    for (i, r) in selector.requirements.iter().enumerate() {
        if Some(i) != driver {
            push_requirement(&mut q, id_col, r);
        }
    }
    if let Some(search) = search.filter(|s| !s.is_empty()) {
        let pattern = like_pattern(search);
        q.push(" AND (lower(w.name) LIKE lower(")
            .bind(pattern.clone());
        q.push(") ESCAPE '\\' OR lower(w.description) LIKE lower(")
            .bind(pattern);
        q.push(") ESCAPE '\\')");
    }
    if let Some((after, limit)) = page {
        if let Some(after) = after {
            q.push(" AND ")
                .push(name_col)
                .push(" > ")
                .bind(after.name.as_str());
        }
        q.push(" ORDER BY ").push(name_col);
        q.push_limit(i64::from(limit) + 1);
    }
    q
}

pub async fn list<B: Backend>(
    conn: &B,
    env_id: Uuid,
    kind: ResourceKind,
    filter: &WorkflowFilter,
    page: &PageRequest,
) -> Result<Page<WorkflowRecord>> {
    let selector = Selector::parse_opt(filter.selector.as_deref())?;
    let after = page.cursor.as_deref().map(NameCursor::decode).transpose()?;
    let size = page.size();
    let search = filter.search.as_deref().map(str::trim);

    let count = build(env_id, kind, &selector, search, None);
    let total = match conn.fetch_optional(count).await.map_err(db)? {
        Some(row) => rows::count(&row)?,
        None => 0,
    };
    let q = build(
        env_id,
        kind,
        &selector,
        search,
        Some((after.as_ref(), size)),
    );
    let mut items = conn
        .fetch_all(q)
        .await
        .map_err(db)?
        .iter()
        .map(rows::workflow)
        .collect::<Result<Vec<_>>>()?;
    let next_cursor = if items.len() > size as usize {
        items.truncate(size as usize);
        items.last().map(|w| {
            NameCursor {
                name: w.name.clone(),
            }
            .encode()
        })
    } else {
        None
    };
    Ok(Page {
        items,
        total,
        next_cursor,
    })
}

/// Label keys and values across the environment's workflows (not templates), read from
/// the covering index `workflow_labels_lookup`.
pub async fn label_values<B: Backend>(
    conn: &B,
    env_id: Uuid,
) -> Result<BTreeMap<String, BTreeSet<String>>> {
    let q = Sql::new(
        "SELECT DISTINCT l.key AS key, l.value AS value FROM workflow_labels l \
         WHERE l.env_id = $1 AND l.kind = $2",
    )
    .arg(env_id)
    .arg(ResourceKind::Workflow.as_str());
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for row in conn.fetch_all(q).await.map_err(db)? {
        use crate::backend::RowExt;
        let key = row.text("key").map_err(db)?;
        let value = row.text("value").map_err(db)?;
        out.entry(key).or_default().insert(value);
    }
    Ok(out)
}
