-- Issue 3: API token rotation, per-organization audit retention, and what audit export,
-- retention and the activity report need. (0001 is applied on existing installations:
-- everything here is additive.)

-- How long each organization keeps audit events (DESIGN.md §5: 180 days by default).
ALTER TABLE orgs ADD COLUMN audit_retention_days INTEGER NOT NULL DEFAULT 180;

-- Rotation with a grace period: the pre-rotation secret's hash keeps working until
-- previous_valid_until. Authentication looks tokens up by either hash.
ALTER TABLE api_tokens ADD COLUMN previous_secret_hash TEXT;
ALTER TABLE api_tokens ADD COLUMN previous_valid_until INTEGER;
CREATE INDEX api_tokens_previous_hash ON api_tokens (previous_secret_hash)
    WHERE previous_secret_hash IS NOT NULL;
-- Removing a member revokes every token they created.
CREATE INDEX api_tokens_created_by ON api_tokens (org_id, created_by);

-- The actor's kind and display name as columns: export filters on the name, and the
-- activity report groups by (kind, id) and shows the latest name. Existing rows are
-- filled from their stored JSON; the append-only trigger is lifted for that one update.
ALTER TABLE audit_events ADD COLUMN actor_kind TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_events ADD COLUMN actor_name TEXT NOT NULL DEFAULT '';
DROP TRIGGER audit_events_no_update;
UPDATE audit_events SET
    actor_kind = coalesce(json_extract(event, '$.actor.kind'), ''),
    actor_name = coalesce(json_extract(event, '$.actor.name'), '');
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only');
END;
CREATE INDEX audit_events_actor_name ON audit_events (org_id, actor_name, seq);

-- Where retention last cut each organization's chain: the seq and hash of the last
-- purged event, so the remaining events still verify.
CREATE TABLE audit_checkpoints (
    org_id         BLOB    PRIMARY KEY,
    seq            INTEGER NOT NULL,
    hash           TEXT    NOT NULL,
    purged_before  INTEGER NOT NULL,
    created_at     INTEGER NOT NULL
);
