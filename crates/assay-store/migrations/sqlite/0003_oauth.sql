-- Issue 5: the OAuth 2.1 authorization server. Secrets (codes, refresh tokens, device
-- codes) are stored only as hex SHA-256 hashes; lookups go by that hash. Everything
-- here is additive. PostgreSQL's 0003 has the same tables, keys and indexes.

-- Public clients: generated IDs (DCR, first-party) or CIMD https URLs.
CREATE TABLE oauth_clients (
    id             TEXT    PRIMARY KEY,
    kind           TEXT    NOT NULL,
    client_name    TEXT    NOT NULL,
    redirect_uris  TEXT    NOT NULL,   -- JSON array
    created_at     INTEGER NOT NULL,
    last_used_at   INTEGER,
    expires_at     INTEGER
);
-- Purging unused registrations.
CREATE INDEX oauth_clients_unused_expiry ON oauth_clients (expires_at)
    WHERE last_used_at IS NULL AND expires_at IS NOT NULL;

-- Consent, per (user, client, resource); at most one live grant per triple.
CREATE TABLE oauth_grants (
    id              BLOB    PRIMARY KEY,
    org_id          BLOB    NOT NULL REFERENCES orgs(id),
    user_id         BLOB    NOT NULL REFERENCES users(id),
    client_id       TEXT    NOT NULL REFERENCES oauth_clients(id),
    scope           TEXT    NOT NULL,
    resource        TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    revoked_at      INTEGER,
    revoked_reason  TEXT
);
CREATE UNIQUE INDEX oauth_grants_live ON oauth_grants (user_id, client_id, resource)
    WHERE revoked_at IS NULL;
-- "My grants" and revoking all of a user's (or a membership's) grants.
CREATE INDEX oauth_grants_user ON oauth_grants (user_id, org_id, created_at);
CREATE INDEX oauth_grants_client ON oauth_grants (client_id);

CREATE TABLE oauth_codes (
    code_hash       TEXT    PRIMARY KEY,
    grant_id        BLOB    NOT NULL REFERENCES oauth_grants(id),
    client_id       TEXT    NOT NULL REFERENCES oauth_clients(id),
    redirect_uri    TEXT    NOT NULL,
    code_challenge  TEXT    NOT NULL,
    resource        TEXT    NOT NULL,
    scope           TEXT    NOT NULL,
    user_id         BLOB    NOT NULL REFERENCES users(id),
    org_id          BLOB    NOT NULL REFERENCES orgs(id),
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    consumed_at     INTEGER
) WITHOUT ROWID;
CREATE INDEX oauth_codes_grant ON oauth_codes (grant_id);
CREATE INDEX oauth_codes_expiry ON oauth_codes (expires_at);

CREATE TABLE oauth_refresh_tokens (
    token_hash       TEXT    PRIMARY KEY,
    family_id        BLOB    NOT NULL,
    grant_id         BLOB    NOT NULL REFERENCES oauth_grants(id),
    client_id        TEXT    NOT NULL REFERENCES oauth_clients(id),
    resource         TEXT    NOT NULL,
    scope            TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    idle_expires_at  INTEGER NOT NULL,
    used_at          INTEGER,
    revoked_at       INTEGER
) WITHOUT ROWID;
CREATE INDEX oauth_refresh_tokens_family ON oauth_refresh_tokens (family_id);
CREATE INDEX oauth_refresh_tokens_grant ON oauth_refresh_tokens (grant_id);

-- Access tokens revoked before they expire (RFC 7009), kept until they would expire.
CREATE TABLE oauth_revoked_access_tokens (
    jti         TEXT    PRIMARY KEY,
    expires_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX oauth_revoked_access_tokens_expiry ON oauth_revoked_access_tokens (expires_at);

-- EdDSA signing keys: PKCS#8 DER as hex. Not yet encrypted at rest (see
-- assay_core::oauth::SigningKeyRecord).
CREATE TABLE oauth_signing_keys (
    kid            TEXT    PRIMARY KEY,
    private_pkcs8  TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    retired_at     INTEGER
);
CREATE INDEX oauth_signing_keys_created ON oauth_signing_keys (created_at);

-- RFC 8628. status: 'pending' | 'approved' (user, org and grant set) | 'denied'.
CREATE TABLE oauth_device_authorizations (
    device_code_hash  TEXT    PRIMARY KEY,
    user_code         TEXT    NOT NULL,
    client_id         TEXT    NOT NULL REFERENCES oauth_clients(id),
    scope             TEXT    NOT NULL,
    resource          TEXT    NOT NULL,
    created_at        INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL,
    interval_secs     INTEGER NOT NULL,
    last_poll_at      INTEGER,
    status            TEXT    NOT NULL,
    user_id           BLOB    REFERENCES users(id),
    org_id            BLOB    REFERENCES orgs(id),
    grant_id          BLOB    REFERENCES oauth_grants(id)
) WITHOUT ROWID;
-- A user code names one pending authorization at a time.
CREATE UNIQUE INDEX oauth_device_authorizations_user_code
    ON oauth_device_authorizations (user_code) WHERE status = 'pending';
CREATE INDEX oauth_device_authorizations_client ON oauth_device_authorizations (client_id);
CREATE INDEX oauth_device_authorizations_expiry ON oauth_device_authorizations (expires_at);
