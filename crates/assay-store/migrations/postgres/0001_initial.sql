-- Assay schema for PostgreSQL.
-- Names and slugs use COLLATE "C": byte order, the same order SQLite uses, and cheaper
-- comparisons. Structured fields are JSON stored as text: exact round trips, and
-- strings may hold characters (U+0000) that jsonb rejects.

CREATE TABLE orgs (
    id          uuid        PRIMARY KEY,
    slug        text        COLLATE "C" NOT NULL UNIQUE,
    name        text        NOT NULL,
    created_at  timestamptz NOT NULL
);

CREATE TABLE envs (
    id          uuid        PRIMARY KEY,
    org_id      uuid        NOT NULL REFERENCES orgs(id),
    slug        text        COLLATE "C" NOT NULL,
    name        text        NOT NULL,
    created_at  timestamptz NOT NULL,
    UNIQUE (org_id, slug)
);

CREATE TABLE users (
    id             uuid        PRIMARY KEY,
    email          text        NOT NULL,
    display_name   text        NOT NULL,
    password_hash  text,
    disabled       boolean     NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL
);
CREATE UNIQUE INDEX users_email ON users (lower(email));

CREATE TABLE memberships (
    org_id   uuid NOT NULL REFERENCES orgs(id),
    user_id  uuid NOT NULL REFERENCES users(id),
    role     text NOT NULL,
    grants   text NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE api_tokens (
    id            uuid        PRIMARY KEY,
    org_id        uuid        NOT NULL REFERENCES orgs(id),
    name          text        NOT NULL,
    description   text        NOT NULL,
    kind          text        NOT NULL,
    grants        text        NOT NULL,
    secret_hash   text        NOT NULL UNIQUE,
    created_by    uuid,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz,
    last_used_at  timestamptz,
    last_used_ip  text,
    revoked_at    timestamptz
);
CREATE INDEX api_tokens_org ON api_tokens (org_id, name);

CREATE TABLE workflows (
    id           uuid        PRIMARY KEY,
    env_id       uuid        NOT NULL REFERENCES envs(id),
    kind         text        NOT NULL,
    name         text        COLLATE "C" NOT NULL,
    description  text        NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    labels       text        NOT NULL,
    source       text        NOT NULL,
    UNIQUE (env_id, kind, name)
);

CREATE TABLE workflow_labels (
    workflow_id  uuid NOT NULL REFERENCES workflows(id) ON DELETE CASCADE,
    key          text COLLATE "C" NOT NULL,
    value        text COLLATE "C" NOT NULL,
    env_id       uuid NOT NULL,
    kind         text NOT NULL,
    name         text COLLATE "C" NOT NULL,
    PRIMARY KEY (workflow_id, key)
);
CREATE INDEX workflow_labels_lookup ON workflow_labels (env_id, kind, key, value, name);

CREATE TABLE execution_counters (
    env_id         uuid   NOT NULL,
    workflow_name  text   COLLATE "C" NOT NULL,
    last_number    bigint NOT NULL,
    PRIMARY KEY (env_id, workflow_name)
);

CREATE TABLE executions (
    id             uuid        PRIMARY KEY,
    env_id         uuid        NOT NULL REFERENCES envs(id),
    workflow_id    uuid        NOT NULL,
    workflow_name  text        COLLATE "C" NOT NULL,
    number         bigint      NOT NULL,
    name           text        COLLATE "C" NOT NULL,
    status         text        NOT NULL,
    queued_at      timestamptz NOT NULL,
    started_at     timestamptz,
    finished_at    timestamptz,
    duration_ms    bigint,
    tags           text        NOT NULL,
    runner         text,
    error          text,
    labels         text        NOT NULL,
    started_by     text        NOT NULL,
    config         text        NOT NULL,
    junit          text,
    steps          text        NOT NULL,
    plan           text        NOT NULL,
    UNIQUE (env_id, name),
    UNIQUE (workflow_id, number)
);
CREATE INDEX executions_env_queued   ON executions (env_id, queued_at DESC, id DESC);
CREATE INDEX executions_env_workflow ON executions (env_id, workflow_name, queued_at DESC, id DESC);
CREATE INDEX executions_env_status   ON executions (env_id, status, queued_at DESC, id DESC);
CREATE INDEX executions_status       ON executions (status, queued_at, id);

-- See the SQLite schema for why env_id, queued_at, workflow_name and status are copied.
CREATE TABLE execution_tags (
    execution_id   uuid        NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
    key            text        COLLATE "C" NOT NULL,
    value          text        COLLATE "C" NOT NULL,
    env_id         uuid        NOT NULL,
    queued_at      timestamptz NOT NULL,
    workflow_name  text        COLLATE "C" NOT NULL,
    status         text        NOT NULL,
    PRIMARY KEY (execution_id, key)
);
CREATE INDEX execution_tags_lookup ON execution_tags (env_id, key, value, queued_at DESC, execution_id DESC)
    INCLUDE (workflow_name, status);

CREATE TABLE execution_labels (
    execution_id   uuid        NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
    key            text        COLLATE "C" NOT NULL,
    value          text        COLLATE "C" NOT NULL,
    env_id         uuid        NOT NULL,
    queued_at      timestamptz NOT NULL,
    workflow_name  text        COLLATE "C" NOT NULL,
    status         text        NOT NULL,
    PRIMARY KEY (execution_id, key)
);
CREATE INDEX execution_labels_lookup ON execution_labels (env_id, key, value, queued_at DESC, execution_id DESC)
    INCLUDE (workflow_name, status);

CREATE TABLE resource_samples (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    execution_id    uuid        NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
    step            text        NOT NULL,
    time            timestamptz NOT NULL,
    cpu_millicores  bigint      NOT NULL,
    memory_bytes    bigint      NOT NULL
);
CREATE INDEX resource_samples_execution ON resource_samples (execution_id, time, id);

CREATE TABLE audit_heads (
    org_id  uuid   PRIMARY KEY,
    seq     bigint NOT NULL,
    hash    text   NOT NULL
);

CREATE TABLE audit_events (
    org_id    uuid        NOT NULL,
    seq       bigint      NOT NULL,
    id        uuid        NOT NULL UNIQUE,
    time      timestamptz NOT NULL,
    env_id    uuid,
    actor_id  uuid        NOT NULL,
    action    text        NOT NULL,
    outcome   text        NOT NULL,
    hash      text        NOT NULL,
    event     text        NOT NULL,
    PRIMARY KEY (org_id, seq)
);
CREATE INDEX audit_events_time  ON audit_events (org_id, time);
CREATE INDEX audit_events_actor ON audit_events (org_id, actor_id, seq);
CREATE INDEX audit_events_env   ON audit_events (org_id, env_id, seq);

CREATE FUNCTION assay_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only';
END;
$$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION assay_audit_append_only();
