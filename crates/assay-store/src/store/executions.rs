//! Executions, their tag/label side tables, and resource samples.
//!
//! Listing walks one index range already in list order (newest first) and stops after
//! a page, whatever the filter:
//! - a `key=value` tag or label requirement walks `execution_tags_lookup` /
//!   `execution_labels_lookup` (env, key, value, queued_at, id);
//! - otherwise a workflow filter walks `executions_env_workflow`, a single status
//!   `executions_env_status`, and anything else `executions_env_queued`.
//!
//! Side rows carry the execution's env, queued_at, workflow name and status, so with a
//! `key=value` driver the workflow/status filters and the total are answered from the
//! side index alone. Other requirements are probes on the side tables' primary keys.
//! Totals count the same index range the page walks.

use super::rows;
use crate::backend::{Backend, RowExt, WriteTx};
use crate::codec::{self, to_json, truncate_micros, u64_to_i64};
use crate::cursor::ExecutionCursor;
use crate::error::{db, unique};
use crate::selector::{Requirement, Selector};
use crate::sql::{Arg, Sql};
use assay_core::execution::{
    Execution, ExecutionFilter, ExecutionStatus, ExecutionSummary, ResourceSample,
};
use assay_core::page::{Page, PageRequest};
use assay_core::{Error, Result, Timestamp};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// Rows per multi-row INSERT: far below both engines' parameter limits.
const ROWS_PER_INSERT: usize = 200;

/// Which side table a selector applies to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Tags,
    Labels,
}

impl Side {
    fn table(self) -> &'static str {
        match self {
            Side::Tags => "execution_tags",
            Side::Labels => "execution_labels",
        }
    }
}

/// The execution columns copied into each side row.
struct SideRow<'a> {
    execution_id: Uuid,
    env_id: Uuid,
    queued_at: Timestamp,
    workflow_name: &'a str,
    status: ExecutionStatus,
}

impl<'a> SideRow<'a> {
    fn of(e: &'a Execution) -> Self {
        Self {
            execution_id: e.id,
            env_id: e.env_id,
            queued_at: e.queued_at,
            workflow_name: &e.workflow_name,
            status: e.status,
        }
    }
}

async fn write_side<T: WriteTx>(
    tx: &mut T,
    side: Side,
    row: &SideRow<'_>,
    pairs: &BTreeMap<String, String>,
) -> Result<()> {
    let pairs: Vec<_> = pairs.iter().collect();
    for chunk in pairs.chunks(ROWS_PER_INSERT) {
        let mut q = Sql::new(&format!(
            "INSERT INTO {} (execution_id, key, value, env_id, queued_at, workflow_name, \
             status) VALUES ",
            side.table()
        ));
        for (i, (key, value)) in chunk.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            q.bind_tuple([
                Arg::Uuid(row.execution_id),
                Arg::Text((*key).clone()),
                Arg::Text((*value).clone()),
                Arg::Uuid(row.env_id),
                Arg::Time(row.queued_at),
                Arg::Text(row.workflow_name.to_owned()),
                Arg::Text(row.status.as_str().to_owned()),
            ]);
        }
        tx.execute(q).await.map_err(db)?;
    }
    Ok(())
}

/// Assigns the next number for (env, workflow name) and inserts the execution with
/// its side rows, inside the caller's transaction. Returns the number.
///
/// The counter row is taken with an upsert: on PostgreSQL that locks the row until
/// commit, so concurrent inserts for one workflow queue up on it (and only on it); on
/// SQLite the transaction already holds the database's write lock. Numbers are never
/// reused, even after the workflow is deleted and re-created or executions are purged,
/// so `<workflow>-<number>` names stay unique.
async fn insert_in<T: WriteTx>(tx: &mut T, e: &Execution) -> Result<i64> {
    let q = Sql::new(
        "INSERT INTO execution_counters (env_id, workflow_name, last_number) VALUES ($1, $2, 1) \
         ON CONFLICT (env_id, workflow_name) \
         DO UPDATE SET last_number = execution_counters.last_number + 1 \
         RETURNING last_number",
    )
    .arg(e.env_id)
    .arg(&e.workflow_name);
    let row = tx
        .fetch_optional(q)
        .await
        .map_err(db)?
        .ok_or_else(|| Error::Internal("execution counter upsert returned no row".into()))?;
    let number = row.i64("last_number").map_err(db)?;
    let name = format!("{}-{}", e.workflow_name, number);
    let q = Sql::new(
        "INSERT INTO executions (id, env_id, workflow_id, workflow_name, number, name, status, \
         queued_at, started_at, finished_at, duration_ms, tags, runner, error, labels, \
         started_by, config, junit, steps, plan) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
         $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
    )
    .arg(e.id)
    .arg(e.env_id)
    .arg(e.workflow_id)
    .arg(&e.workflow_name)
    .arg(number)
    .arg(name.as_str())
    .arg(e.status.as_str())
    .arg(e.queued_at)
    .arg(e.started_at)
    .arg(e.finished_at)
    .arg(e.duration_ms)
    .arg(to_json(&e.tags)?)
    .arg(e.runner.clone())
    .arg(e.error.clone())
    .arg(to_json(&e.labels)?)
    .arg(to_json(&e.started_by)?)
    .arg(to_json(&e.config)?)
    .arg(e.junit.as_ref().map(to_json).transpose()?)
    .arg(to_json(&e.steps)?)
    .arg(to_json(&e.plan)?);
    tx.execute(q).await.map_err(unique(format!(
        "execution {} or {name:?} already exists",
        e.id
    )))?;
    let side = SideRow::of(e);
    write_side(tx, Side::Tags, &side, &e.tags).await?;
    write_side(tx, Side::Labels, &side, &e.labels).await?;
    Ok(number)
}

/// Stored timestamps have microsecond precision; the caller's copy is rounded the same
/// way so it equals what a later read returns.
fn normalize_times(e: &mut Execution) {
    e.queued_at = truncate_micros(e.queued_at);
    e.started_at = e.started_at.map(truncate_micros);
    e.finished_at = e.finished_at.map(truncate_micros);
}

fn assign(e: &mut Execution, number: i64) {
    e.number = number;
    e.name = format!("{}-{}", e.workflow_name, number);
}

pub async fn insert<B: Backend>(conn: &B, e: &mut Execution) -> Result<()> {
    normalize_times(e);
    let mut tx = conn.begin().await.map_err(db)?;
    let number = insert_in(&mut tx, e).await?;
    tx.commit().await.map_err(db)?;
    assign(e, number);
    Ok(())
}

pub async fn bulk_insert<B: Backend>(conn: &B, executions: &mut [Execution]) -> Result<()> {
    let mut tx = conn.begin().await.map_err(db)?;
    let mut numbers = Vec::with_capacity(executions.len());
    for e in executions.iter_mut() {
        normalize_times(e);
        numbers.push(insert_in(&mut tx, e).await?);
    }
    tx.commit().await.map_err(db)?;
    for (e, n) in executions.iter_mut().zip(numbers) {
        assign(e, n);
    }
    Ok(())
}

/// Replaces the mutable fields. `queued_at` (the list order), identity, config, plan,
/// labels and `started_by` are fixed at insert. Side rows follow tag and status changes.
pub async fn update<B: Backend>(conn: &B, e: &Execution) -> Result<()> {
    let mut tx = conn.begin().await.map_err(db)?;
    let q = Sql::new(&format!(
        "SELECT e.tags AS tags, e.status AS status, e.queued_at AS queued_at, \
         e.workflow_name AS workflow_name FROM executions e \
         WHERE e.id = $1 AND e.env_id = $2{}",
        B::FOR_UPDATE
    ))
    .arg(e.id)
    .arg(e.env_id);
    let row = tx
        .fetch_optional(q)
        .await
        .map_err(db)?
        .ok_or_else(|| Error::not_found("execution", e.id.to_string()))?;
    let old_tags: BTreeMap<String, String> =
        codec::from_json("tags", &row.text("tags").map_err(db)?)?;
    let old_status = codec::status(&row.text("status").map_err(db)?)?;
    let workflow_name = row.text("workflow_name").map_err(db)?;
    let side = SideRow {
        execution_id: e.id,
        env_id: e.env_id,
        queued_at: row.time("queued_at").map_err(db)?,
        workflow_name: &workflow_name,
        status: e.status,
    };
    let q = Sql::new(
        "UPDATE executions SET status = $1, started_at = $2, finished_at = $3, \
         duration_ms = $4, steps = $5, junit = $6, error = $7, tags = $8, runner = $9 \
         WHERE id = $10",
    )
    .arg(e.status.as_str())
    .arg(e.started_at)
    .arg(e.finished_at)
    .arg(e.duration_ms)
    .arg(to_json(&e.steps)?)
    .arg(e.junit.as_ref().map(to_json).transpose()?)
    .arg(e.error.clone())
    .arg(to_json(&e.tags)?)
    .arg(e.runner.clone())
    .arg(e.id);
    tx.execute(q).await.map_err(db)?;
    if old_tags != e.tags {
        tx.execute(Sql::new("DELETE FROM execution_tags WHERE execution_id = $1").arg(e.id))
            .await
            .map_err(db)?;
        write_side(&mut tx, Side::Tags, &side, &e.tags).await?;
    }
    if old_status != e.status {
        let mut tables = vec!["execution_labels"];
        if old_tags == e.tags {
            tables.push("execution_tags"); // otherwise rewritten above, new status included
        }
        for table in tables {
            let q = Sql::new(&format!(
                "UPDATE {table} SET status = $1 WHERE execution_id = $2"
            ))
            .arg(e.status.as_str())
            .arg(e.id);
            tx.execute(q).await.map_err(db)?;
        }
    }
    tx.commit().await.map_err(db)
}

/// By ID when the text is a UUID of an execution in the environment, else by name.
pub async fn get<B: Backend>(
    conn: &B,
    env_id: Uuid,
    id_or_name: &str,
) -> Result<Option<Execution>> {
    if let Ok(id) = Uuid::try_parse(id_or_name) {
        let q = Sql::new(&format!(
            "SELECT {} FROM executions e WHERE e.env_id = $1 AND e.id = $2",
            rows::EXECUTION_COLS
        ))
        .arg(env_id)
        .arg(id);
        if let Some(row) = conn.fetch_optional(q).await.map_err(db)? {
            return rows::execution(&row).map(Some);
        }
    }
    let q = Sql::new(&format!(
        "SELECT {} FROM executions e WHERE e.env_id = $1 AND e.name = $2",
        rows::EXECUTION_COLS
    ))
    .arg(env_id)
    .arg(id_or_name);
    conn.fetch_optional(q)
        .await
        .map_err(db)?
        .map(|r| rows::execution(&r))
        .transpose()
}

/// A requirement as a predicate on the execution whose ID is in column `id_col`.
fn push_requirement(q: &mut Sql, side: Side, id_col: &str, r: &Requirement) {
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
    q.push(" (SELECT 1 FROM ").push(side.table());
    q.push(" s WHERE s.execution_id = ").push(id_col);
    q.push(" AND s.key = ").bind(key.as_str());
    if let Some(value) = value {
        q.push(" AND s.value = ").bind(value.as_str());
    }
    q.push(")");
}

struct ListQuery<'a> {
    env_id: Uuid,
    filter: &'a ExecutionFilter,
    statuses: Vec<ExecutionStatus>,
    tags: Selector,
    labels: Selector,
    /// The `key=value` requirement whose index range drives the scan, if any.
    driver: Option<(Side, usize)>,
}

impl<'a> ListQuery<'a> {
    fn new(env_id: Uuid, filter: &'a ExecutionFilter) -> Result<Self> {
        let tags = Selector::parse_opt(filter.tag_selector.as_deref())?;
        let labels = Selector::parse_opt(filter.label_selector.as_deref())?;
        let first_eq = |s: &Selector| {
            s.requirements
                .iter()
                .position(|r| matches!(r, Requirement::Equals { .. }))
        };
        let driver = first_eq(&tags)
            .map(|i| (Side::Tags, i))
            .or_else(|| first_eq(&labels).map(|i| (Side::Labels, i)));
        let mut statuses = filter.statuses.clone();
        statuses.sort_by_key(|s| s.as_str());
        statuses.dedup();
        Ok(Self {
            env_id,
            filter,
            statuses,
            tags,
            labels,
            driver,
        })
    }

    /// The count (`page: None`) or one page of summaries after `after`.
    fn build(&self, page: Option<(Option<&ExecutionCursor>, u32)>) -> Result<Sql> {
        let mut q = Sql::default();
        match page {
            None => q.push("SELECT COUNT(*) AS n"),
            Some(_) => q.push("SELECT ").push(rows::SUMMARY_COLS),
        };
        let driver_req = self.driver.map(|(side, i)| {
            let sel = match side {
                Side::Tags => &self.tags,
                Side::Labels => &self.labels,
            };
            (side, &sel.requirements[i])
        });
        // The table whose columns the filters read: the side table when it drives (it
        // carries workflow_name and status), so counting never needs the join.
        let (t, id_col) = match driver_req {
            Some((side, Requirement::Equals { key, value })) => {
                q.push(" FROM ").push(side.table()).push(" d");
                if page.is_some() {
                    q.push(" JOIN executions e ON e.id = d.execution_id");
                }
                q.push(" WHERE d.env_id = ").bind(self.env_id);
                q.push(" AND d.key = ").bind(key.as_str());
                q.push(" AND d.value = ").bind(value.as_str());
                ("d", "d.execution_id")
            }
            _ => {
                q.push(" FROM executions e WHERE e.env_id = ")
                    .bind(self.env_id);
                ("e", "e.id")
            }
        };
        let time_col = if t == "d" {
            "d.queued_at"
        } else {
            "e.queued_at"
        };
        if let Some(workflow) = &self.filter.workflow {
            q.push(" AND ").push(t).push(".workflow_name = ");
            q.bind(workflow.as_str());
        }
        match self.statuses.as_slice() {
            [] => {}
            [one] => {
                q.push(" AND ")
                    .push(t)
                    .push(".status = ")
                    .bind(one.as_str());
            }
            many => {
                q.push(" AND ").push(t).push(".status IN ");
                q.bind_tuple(many.iter().map(|s| Arg::Text(s.as_str().into())));
            }
        }
        if let Some(since) = self.filter.since {
            q.push(" AND ").push(time_col).push(" >= ").bind(since);
        }
        if let Some(until) = self.filter.until {
            q.push(" AND ").push(time_col).push(" <= ").bind(until);
        }
        for (side, sel) in [(Side::Tags, &self.tags), (Side::Labels, &self.labels)] {
            for (i, r) in sel.requirements.iter().enumerate() {
                let is_driver = self.driver == Some((side, i));
                if !is_driver {
                    push_requirement(&mut q, side, id_col, r);
                }
            }
        }
        if let Some((after, limit)) = page {
            if let Some(after) = after {
                q.push(" AND (")
                    .push(time_col)
                    .push(", ")
                    .push(id_col)
                    .push(") < (");
                q.bind(after.queued_at()?)
                    .push(", ")
                    .bind(after.id)
                    .push(")");
            }
            q.push(" ORDER BY ")
                .push(time_col)
                .push(" DESC, ")
                .push(id_col);
            q.push(" DESC").push_limit(i64::from(limit) + 1);
        }
        Ok(q)
    }
}

pub async fn list<B: Backend>(
    conn: &B,
    env_id: Uuid,
    filter: &ExecutionFilter,
    page: &PageRequest,
) -> Result<Page<ExecutionSummary>> {
    let lq = ListQuery::new(env_id, filter)?;
    let after = page
        .cursor
        .as_deref()
        .map(ExecutionCursor::decode)
        .transpose()?;
    let size = page.size();
    let total = match conn.fetch_optional(lq.build(None)?).await.map_err(db)? {
        Some(row) => rows::count(&row)?,
        None => 0,
    };
    let mut items = conn
        .fetch_all(lq.build(Some((after.as_ref(), size)))?)
        .await
        .map_err(db)?
        .iter()
        .map(rows::summary)
        .collect::<Result<Vec<_>>>()?;
    let next_cursor = if items.len() > size as usize {
        items.truncate(size as usize);
        items
            .last()
            .map(|s| ExecutionCursor::after(s.queued_at, s.id).encode())
    } else {
        None
    };
    Ok(Page {
        items,
        total,
        next_cursor,
    })
}

pub async fn with_status<B: Backend>(
    conn: &B,
    statuses: &[ExecutionStatus],
) -> Result<Vec<Execution>> {
    if statuses.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = Sql::new(&format!(
        "SELECT {} FROM executions e WHERE e.status IN ",
        rows::EXECUTION_COLS
    ));
    q.bind_tuple(statuses.iter().map(|s| Arg::Text(s.as_str().into())));
    q.push(" ORDER BY e.queued_at, e.id");
    conn.fetch_all(q)
        .await
        .map_err(db)?
        .iter()
        .map(rows::execution)
        .collect()
}

pub async fn recent<B: Backend>(
    conn: &B,
    workflow_id: Uuid,
    limit: u32,
) -> Result<Vec<ExecutionSummary>> {
    let mut q = Sql::new(&format!(
        "SELECT {} FROM executions e WHERE e.workflow_id = $1 ORDER BY e.number DESC",
        rows::SUMMARY_COLS
    ))
    .arg(workflow_id);
    q.push_limit(i64::from(limit));
    conn.fetch_all(q)
        .await
        .map_err(db)?
        .iter()
        .map(rows::summary)
        .collect()
}

/// Workflows per statement in [`recent_for_workflows`]: one `UNION ALL` arm each, well
/// under SQLite's compound-select limit (500) and both engines' parameter limits.
const WORKFLOWS_PER_STATEMENT: usize = 100;

/// [`recent`] for many workflows of one environment, in one statement per
/// [`WORKFLOWS_PER_STATEMENT`]. Each workflow is its own `UNION ALL` arm with its own
/// `LIMIT`, so each walks the `(workflow_id, number)` unique index backwards and stops after
/// `limit` rows; a `ROW_NUMBER() OVER (PARTITION BY …)` form would instead number every
/// execution the workflows ever had before filtering.
pub async fn recent_for_workflows<B: Backend>(
    conn: &B,
    env_id: Uuid,
    workflow_ids: &[Uuid],
    limit: u32,
) -> Result<HashMap<Uuid, Vec<ExecutionSummary>>> {
    let mut out: HashMap<Uuid, Vec<ExecutionSummary>> = HashMap::new();
    if limit == 0 {
        return Ok(out);
    }
    let mut ids = workflow_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    for chunk in ids.chunks(WORKFLOWS_PER_STATEMENT) {
        let mut q = Sql::new("");
        for (i, id) in chunk.iter().enumerate() {
            if i > 0 {
                q.push(" UNION ALL ");
            }
            // Each arm is wrapped so that its ORDER BY/LIMIT is its own (SQLite allows
            // neither on a bare compound member).
            q.push(&format!(
                "SELECT * FROM (SELECT {}, e.workflow_id AS workflow_id FROM executions e \
                 WHERE e.workflow_id = ",
                rows::SUMMARY_COLS
            ));
            q.bind(*id).push(" AND e.env_id = ").bind(env_id);
            q.push(" ORDER BY e.number DESC")
                .push_limit(i64::from(limit))
                .push(&format!(") AS r{i}"));
        }
        for row in conn.fetch_all(q).await.map_err(db)? {
            let workflow_id = row.uuid("workflow_id").map_err(db)?;
            out.entry(workflow_id)
                .or_default()
                .push(rows::summary(&row)?);
        }
    }
    // Arms come back in any order; within one workflow, newest first like `recent`.
    for list in out.values_mut() {
        list.sort_unstable_by_key(|s| std::cmp::Reverse(s.number));
    }
    Ok(out)
}

pub async fn insert_samples<B: Backend>(
    conn: &B,
    execution_id: Uuid,
    step: &str,
    samples: &[ResourceSample],
) -> Result<()> {
    if samples.is_empty() {
        return Ok(());
    }
    let mut tx = conn.begin().await.map_err(db)?;
    for chunk in samples.chunks(ROWS_PER_INSERT) {
        let mut q = Sql::new(
            "INSERT INTO resource_samples (execution_id, step, time, cpu_millicores, \
             memory_bytes) VALUES ",
        );
        for (i, s) in chunk.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            q.bind_tuple([
                Arg::Uuid(execution_id),
                Arg::Text(step.to_owned()),
                Arg::Time(s.time),
                Arg::I64(u64_to_i64(s.cpu_millicores)),
                Arg::I64(u64_to_i64(s.memory_bytes)),
            ]);
        }
        tx.execute(q).await.map_err(db)?;
    }
    tx.commit().await.map_err(db)
}

pub async fn samples<B: Backend>(
    conn: &B,
    execution_id: Uuid,
) -> Result<Vec<(String, ResourceSample)>> {
    let q = Sql::new(
        "SELECT r.step AS step, r.time AS time, r.cpu_millicores AS cpu_millicores, \
         r.memory_bytes AS memory_bytes FROM resource_samples r WHERE r.execution_id = $1 \
         ORDER BY r.time, r.id",
    )
    .arg(execution_id);
    conn.fetch_all(q)
        .await
        .map_err(db)?
        .iter()
        .map(|r| {
            Ok((
                r.text("step").map_err(db)?,
                ResourceSample {
                    time: r.time("time").map_err(db)?,
                    cpu_millicores: codec::i64_to_u64(r.i64("cpu_millicores").map_err(db)?),
                    memory_bytes: codec::i64_to_u64(r.i64("memory_bytes").map_err(db)?),
                },
            ))
        })
        .collect()
}
