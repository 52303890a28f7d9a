-- Issue 3: API token rotation, per-organization audit retention, and what audit export,
-- retention and the activity report need. (0001 is applied on existing installations:
-- everything here is additive.)

-- How long each organization keeps audit events (DESIGN.md §5: 180 days by default).
ALTER TABLE orgs ADD COLUMN audit_retention_days bigint NOT NULL DEFAULT 180;

-- Rotation with a grace period: the pre-rotation secret's hash keeps working until
-- previous_valid_until. Authentication looks tokens up by either hash.
ALTER TABLE api_tokens
    ADD COLUMN previous_secret_hash text,
    ADD COLUMN previous_valid_until timestamptz;
CREATE INDEX api_tokens_previous_hash ON api_tokens (previous_secret_hash)
    WHERE previous_secret_hash IS NOT NULL;
-- Removing a member revokes every token they created.
CREATE INDEX api_tokens_created_by ON api_tokens (org_id, created_by);

-- The actor's kind and display name as columns: export filters on the name, and the
-- activity report groups by (kind, id) and shows the latest name. Existing rows are
-- filled from their stored JSON; the append-only trigger is lifted for that one update
-- (the migration runs in one transaction).
ALTER TABLE audit_events
    ADD COLUMN actor_kind text COLLATE "C" NOT NULL DEFAULT '',
    ADD COLUMN actor_name text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update;
UPDATE audit_events SET
    actor_kind = coalesce(event::json -> 'actor' ->> 'kind', ''),
    actor_name = coalesce(event::json -> 'actor' ->> 'name', '');
ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update;
CREATE INDEX audit_events_actor_name ON audit_events (org_id, actor_name, seq);

-- Where retention last cut each organization's chain: the seq and hash of the last
-- purged event, so the remaining events still verify.
CREATE TABLE audit_checkpoints (
    org_id         uuid        PRIMARY KEY,
    seq            bigint      NOT NULL,
    hash           text        NOT NULL,
    purged_before  timestamptz NOT NULL,
    created_at     timestamptz NOT NULL
);
