-- Assay schema for SQLite.
-- UUIDs are 16-byte BLOBs (compact keys, memcmp order = PostgreSQL uuid order);
-- timestamps are INTEGER unix microseconds (exact, indexable, same precision as timestamptz).
-- Free-form structured fields are JSON text. Large columns come last in each table so
-- list queries that read only the leading columns do not touch overflow pages.

CREATE TABLE orgs (
    id          BLOB    PRIMARY KEY,
    slug        TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE envs (
    id          BLOB    PRIMARY KEY,
    org_id      BLOB    NOT NULL REFERENCES orgs(id),
    slug        TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (org_id, slug)
);

CREATE TABLE users (
    id             BLOB    PRIMARY KEY,
    email          TEXT    NOT NULL,
    display_name   TEXT    NOT NULL,
    password_hash  TEXT,
    disabled       INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL
);
-- Emails are unique and looked up case-insensitively.
CREATE UNIQUE INDEX users_email ON users (lower(email));

CREATE TABLE memberships (
    org_id   BLOB NOT NULL REFERENCES orgs(id),
    user_id  BLOB NOT NULL REFERENCES users(id),
    role     TEXT NOT NULL,
    grants   TEXT NOT NULL,
    PRIMARY KEY (org_id, user_id)
) WITHOUT ROWID;
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE api_tokens (
    id            BLOB    PRIMARY KEY,
    org_id        BLOB    NOT NULL REFERENCES orgs(id),
    name          TEXT    NOT NULL,
    description   TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    grants        TEXT    NOT NULL,
    secret_hash   TEXT    NOT NULL UNIQUE,
    created_by    BLOB,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER,
    last_used_at  INTEGER,
    last_used_ip  TEXT,
    revoked_at    INTEGER
);
CREATE INDEX api_tokens_org ON api_tokens (org_id, name);

-- Workflows and templates (kind = 'workflow' | 'template').
CREATE TABLE workflows (
    id           BLOB    PRIMARY KEY,
    env_id       BLOB    NOT NULL REFERENCES envs(id),
    kind         TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    description  TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    labels       TEXT    NOT NULL,
    source       TEXT    NOT NULL,
    UNIQUE (env_id, kind, name)
);

-- One row per workflow label. env_id/kind/name are copied from the workflow (all
-- immutable) so `key=value` selectors walk one index range already in name order.
CREATE TABLE workflow_labels (
    workflow_id  BLOB NOT NULL REFERENCES workflows(id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    value        TEXT NOT NULL,
    env_id       BLOB NOT NULL,
    kind         TEXT NOT NULL,
    name         TEXT NOT NULL,
    PRIMARY KEY (workflow_id, key)
) WITHOUT ROWID;
CREATE INDEX workflow_labels_lookup ON workflow_labels (env_id, kind, key, value, name);

-- Next execution number per (environment, workflow name): numbers and names are never
-- reused, even after executions are purged or the workflow is deleted and re-created.
CREATE TABLE execution_counters (
    env_id         BLOB    NOT NULL,
    workflow_name  TEXT    NOT NULL,
    last_number    INTEGER NOT NULL,
    PRIMARY KEY (env_id, workflow_name)
) WITHOUT ROWID;

-- No foreign key to workflows: executions outlive their workflow.
CREATE TABLE executions (
    id             BLOB    PRIMARY KEY,
    env_id         BLOB    NOT NULL REFERENCES envs(id),
    workflow_id    BLOB    NOT NULL,
    workflow_name  TEXT    NOT NULL,
    number         INTEGER NOT NULL,
    name           TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    queued_at      INTEGER NOT NULL,
    started_at     INTEGER,
    finished_at    INTEGER,
    duration_ms    INTEGER,
    tags           TEXT    NOT NULL,
    runner         TEXT,
    error          TEXT,
    labels         TEXT    NOT NULL,
    started_by     TEXT    NOT NULL,
    config         TEXT    NOT NULL,
    junit          TEXT,
    steps          TEXT    NOT NULL,
    plan           TEXT    NOT NULL,
    UNIQUE (env_id, name),
    UNIQUE (workflow_id, number)  -- also serves recent_executions (scanned backwards)
);
CREATE INDEX executions_env_queued   ON executions (env_id, queued_at DESC, id DESC);
CREATE INDEX executions_env_workflow ON executions (env_id, workflow_name, queued_at DESC, id DESC);
CREATE INDEX executions_env_status   ON executions (env_id, status, queued_at DESC, id DESC);
CREATE INDEX executions_status       ON executions (status, queued_at, id);

-- Tags and workflow labels of executions, one row per key. env_id, queued_at and
-- workflow_name are copied from the execution (all immutable), and so is status (kept in
-- step by update_execution), so a `key=value` selector is one index range already in
-- list order, and combining it with a workflow or status filter, or counting it, never
-- touches the executions table: no scan, no sort.
CREATE TABLE execution_tags (
    execution_id   BLOB    NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
    key            TEXT    NOT NULL,
    value          TEXT    NOT NULL,
    env_id         BLOB    NOT NULL,
    queued_at      INTEGER NOT NULL,
    workflow_name  TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    PRIMARY KEY (execution_id, key)
) WITHOUT ROWID;
CREATE INDEX execution_tags_lookup ON execution_tags (env_id, key, value, queued_at DESC, execution_id DESC,
    workflow_name, status);

CREATE TABLE execution_labels (
    execution_id   BLOB    NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
    key            TEXT    NOT NULL,
    value          TEXT    NOT NULL,
    env_id         BLOB    NOT NULL,
    queued_at      INTEGER NOT NULL,
    workflow_name  TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    PRIMARY KEY (execution_id, key)
) WITHOUT ROWID;
CREATE INDEX execution_labels_lookup ON execution_labels (env_id, key, value, queued_at DESC, execution_id DESC,
    workflow_name, status);

CREATE TABLE resource_samples (
    id              INTEGER PRIMARY KEY,
    execution_id    BLOB    NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
    step            TEXT    NOT NULL,
    time            INTEGER NOT NULL,
    cpu_millicores  INTEGER NOT NULL,
    memory_bytes    INTEGER NOT NULL
);
CREATE INDEX resource_samples_execution ON resource_samples (execution_id, time, id);

-- Audit: the head of each organization's chain, and the events themselves (full JSON
-- plus the columns audit queries filter on). No foreign keys: the audit log must accept
-- events about anything, including organizations that never existed.
CREATE TABLE audit_heads (
    org_id  BLOB    PRIMARY KEY,
    seq     INTEGER NOT NULL,
    hash    TEXT    NOT NULL
);

CREATE TABLE audit_events (
    org_id    BLOB    NOT NULL,
    seq       INTEGER NOT NULL,
    id        BLOB    NOT NULL UNIQUE,
    time      INTEGER NOT NULL,
    env_id    BLOB,
    actor_id  BLOB    NOT NULL,
    action    TEXT    NOT NULL,
    outcome   TEXT    NOT NULL,
    hash      TEXT    NOT NULL,
    event     TEXT    NOT NULL,
    PRIMARY KEY (org_id, seq)
);
CREATE INDEX audit_events_time  ON audit_events (org_id, time);
CREATE INDEX audit_events_actor ON audit_events (org_id, actor_id, seq);
CREATE INDEX audit_events_env   ON audit_events (org_id, env_id, seq);

-- Append-only: an edited event would still fail verification, but refuse it outright.
-- (Deletion stays possible for retention, which leaves a checkpoint.)
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only');
END;
