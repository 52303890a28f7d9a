//! Column lists and row decoders shared by both backends. Every selected column is
//! aliased (`x.col AS col`) because SQLite leaves unaliased names unspecified.

use crate::backend::RowExt;
use crate::codec::{self, from_json};
use crate::error::db;
use assay_core::Result;
use assay_core::audit::AuditCheckpoint;
use assay_core::execution::{Execution, ExecutionSummary};
use assay_core::identity::{ApiTokenRecord, Membership, User};
use assay_core::tenancy::{Environment, Organization};
use assay_core::workflow::WorkflowRecord;

pub const ORG_COLS: &str = "o.id AS id, o.slug AS slug, o.name AS name, \
     o.audit_retention_days AS audit_retention_days, o.created_at AS created_at";

pub fn org<R: RowExt>(r: &R) -> Result<Organization> {
    Ok(Organization {
        id: r.uuid("id").map_err(db)?,
        slug: r.text("slug").map_err(db)?,
        name: r.text("name").map_err(db)?,
        audit_retention_days: codec::days(r.i64("audit_retention_days").map_err(db)?),
        created_at: r.time("created_at").map_err(db)?,
    })
}

pub const ENV_COLS: &str = "v.id AS id, v.org_id AS org_id, v.slug AS slug, v.name AS name, \
     v.created_at AS created_at";

pub fn env<R: RowExt>(r: &R) -> Result<Environment> {
    Ok(Environment {
        id: r.uuid("id").map_err(db)?,
        org_id: r.uuid("org_id").map_err(db)?,
        slug: r.text("slug").map_err(db)?,
        name: r.text("name").map_err(db)?,
        created_at: r.time("created_at").map_err(db)?,
    })
}

pub const USER_COLS: &str = "u.id AS id, u.email AS email, u.display_name AS display_name, \
     u.password_hash AS password_hash, u.disabled AS disabled, u.created_at AS created_at";

pub fn user<R: RowExt>(r: &R) -> Result<User> {
    Ok(User {
        id: r.uuid("id").map_err(db)?,
        email: r.text("email").map_err(db)?,
        display_name: r.text("display_name").map_err(db)?,
        password_hash: r.opt_text("password_hash").map_err(db)?,
        disabled: r.bool("disabled").map_err(db)?,
        created_at: r.time("created_at").map_err(db)?,
    })
}

pub const MEMBERSHIP_COLS: &str =
    "m.org_id AS org_id, m.user_id AS user_id, m.role AS role, m.grants AS grants";

pub fn membership<R: RowExt>(r: &R) -> Result<Membership> {
    Ok(Membership {
        org_id: r.uuid("org_id").map_err(db)?,
        user_id: r.uuid("user_id").map_err(db)?,
        role: codec::org_role(&r.text("role").map_err(db)?)?,
        grants: from_json("grants", &r.text("grants").map_err(db)?)?,
    })
}

pub const TOKEN_COLS: &str = "t.id AS id, t.org_id AS org_id, t.name AS name, \
     t.description AS description, t.kind AS kind, t.grants AS grants, \
     t.secret_hash AS secret_hash, t.created_by AS created_by, t.created_at AS created_at, \
     t.expires_at AS expires_at, t.last_used_at AS last_used_at, \
     t.last_used_ip AS last_used_ip, t.revoked_at AS revoked_at, \
     t.previous_secret_hash AS previous_secret_hash, \
     t.previous_valid_until AS previous_valid_until";

pub fn token<R: RowExt>(r: &R) -> Result<ApiTokenRecord> {
    Ok(ApiTokenRecord {
        id: r.uuid("id").map_err(db)?,
        org_id: r.uuid("org_id").map_err(db)?,
        name: r.text("name").map_err(db)?,
        description: r.text("description").map_err(db)?,
        kind: codec::token_kind(&r.text("kind").map_err(db)?)?,
        grants: from_json("grants", &r.text("grants").map_err(db)?)?,
        secret_hash: r.text("secret_hash").map_err(db)?,
        created_by: r.opt_uuid("created_by").map_err(db)?,
        created_at: r.time("created_at").map_err(db)?,
        expires_at: r.opt_time("expires_at").map_err(db)?,
        last_used_at: r.opt_time("last_used_at").map_err(db)?,
        last_used_ip: r.opt_text("last_used_ip").map_err(db)?,
        revoked_at: r.opt_time("revoked_at").map_err(db)?,
        previous_secret_hash: r.opt_text("previous_secret_hash").map_err(db)?,
        previous_valid_until: r.opt_time("previous_valid_until").map_err(db)?,
    })
}

pub const WORKFLOW_COLS: &str = "w.id AS id, w.env_id AS env_id, w.kind AS kind, \
     w.name AS name, w.description AS description, w.labels AS labels, w.source AS source, \
     w.created_at AS created_at, w.updated_at AS updated_at";

pub fn workflow<R: RowExt>(r: &R) -> Result<WorkflowRecord> {
    Ok(WorkflowRecord {
        id: r.uuid("id").map_err(db)?,
        env_id: r.uuid("env_id").map_err(db)?,
        kind: codec::resource_kind(&r.text("kind").map_err(db)?)?,
        name: r.text("name").map_err(db)?,
        description: r.text("description").map_err(db)?,
        labels: from_json("labels", &r.text("labels").map_err(db)?)?,
        source: r.text("source").map_err(db)?,
        created_at: r.time("created_at").map_err(db)?,
        updated_at: r.time("updated_at").map_err(db)?,
    })
}

/// Only the leading (small) columns: lists never read plans, steps or JUnit.
pub const SUMMARY_COLS: &str = "e.id AS id, e.name AS name, e.number AS number, \
     e.workflow_name AS workflow_name, e.status AS status, e.tags AS tags, \
     e.queued_at AS queued_at, e.started_at AS started_at, e.finished_at AS finished_at, \
     e.duration_ms AS duration_ms";

pub fn summary<R: RowExt>(r: &R) -> Result<ExecutionSummary> {
    Ok(ExecutionSummary {
        id: r.uuid("id").map_err(db)?,
        name: r.text("name").map_err(db)?,
        number: r.i64("number").map_err(db)?,
        workflow_name: r.text("workflow_name").map_err(db)?,
        status: codec::status(&r.text("status").map_err(db)?)?,
        tags: from_json("tags", &r.text("tags").map_err(db)?)?,
        queued_at: r.time("queued_at").map_err(db)?,
        started_at: r.opt_time("started_at").map_err(db)?,
        finished_at: r.opt_time("finished_at").map_err(db)?,
        duration_ms: r.opt_i64("duration_ms").map_err(db)?,
    })
}

pub const EXECUTION_COLS: &str = "e.id AS id, e.env_id AS env_id, \
     e.workflow_id AS workflow_id, e.workflow_name AS workflow_name, e.number AS number, \
     e.name AS name, e.status AS status, e.queued_at AS queued_at, \
     e.started_at AS started_at, e.finished_at AS finished_at, e.duration_ms AS duration_ms, \
     e.tags AS tags, e.runner AS runner, e.error AS error, e.labels AS labels, \
     e.started_by AS started_by, e.config AS config, e.junit AS junit, e.steps AS steps, \
     e.plan AS plan";

pub fn execution<R: RowExt>(r: &R) -> Result<Execution> {
    let junit = r
        .opt_text("junit")
        .map_err(db)?
        .map(|j| from_json("junit", &j))
        .transpose()?;
    Ok(Execution {
        id: r.uuid("id").map_err(db)?,
        env_id: r.uuid("env_id").map_err(db)?,
        workflow_id: r.uuid("workflow_id").map_err(db)?,
        workflow_name: r.text("workflow_name").map_err(db)?,
        number: r.i64("number").map_err(db)?,
        name: r.text("name").map_err(db)?,
        status: codec::status(&r.text("status").map_err(db)?)?,
        config: from_json("config", &r.text("config").map_err(db)?)?,
        tags: from_json("tags", &r.text("tags").map_err(db)?)?,
        labels: from_json("labels", &r.text("labels").map_err(db)?)?,
        started_by: from_json("started_by", &r.text("started_by").map_err(db)?)?,
        queued_at: r.time("queued_at").map_err(db)?,
        started_at: r.opt_time("started_at").map_err(db)?,
        finished_at: r.opt_time("finished_at").map_err(db)?,
        duration_ms: r.opt_i64("duration_ms").map_err(db)?,
        steps: from_json("steps", &r.text("steps").map_err(db)?)?,
        junit,
        error: r.opt_text("error").map_err(db)?,
        plan: from_json("plan", &r.text("plan").map_err(db)?)?,
        runner: r.opt_text("runner").map_err(db)?,
    })
}

pub const CHECKPOINT_COLS: &str = "c.org_id AS org_id, c.seq AS seq, c.hash AS hash, \
     c.purged_before AS purged_before, c.created_at AS created_at";

pub fn checkpoint<R: RowExt>(r: &R) -> Result<AuditCheckpoint> {
    Ok(AuditCheckpoint {
        org_id: r.uuid("org_id").map_err(db)?,
        seq: r.i64("seq").map_err(db)?,
        hash: r.text("hash").map_err(db)?,
        purged_before: r.time("purged_before").map_err(db)?,
        created_at: r.time("created_at").map_err(db)?,
    })
}

/// `COUNT(*) AS n`.
pub fn count<R: RowExt>(r: &R) -> Result<u64> {
    Ok(codec::i64_to_u64(r.i64("n").map_err(db)?))
}
