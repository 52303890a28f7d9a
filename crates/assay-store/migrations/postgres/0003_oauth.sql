-- Issue 5: the OAuth 2.1 authorization server. Secrets (codes, refresh tokens, device
-- codes) are stored only as hex SHA-256 hashes; lookups go by that hash. Everything
-- here is additive. SQLite's 0003 has the same tables, keys and indexes.

-- Public clients: generated IDs (DCR, first-party) or CIMD https URLs.
CREATE TABLE oauth_clients (
    id             text        PRIMARY KEY,
    kind           text        NOT NULL,
    client_name    text        NOT NULL,
    redirect_uris  text        NOT NULL,   -- JSON array
    created_at     timestamptz NOT NULL,
    last_used_at   timestamptz,
    expires_at     timestamptz
);
-- Purging unused registrations.
CREATE INDEX oauth_clients_unused_expiry ON oauth_clients (expires_at)
    WHERE last_used_at IS NULL AND expires_at IS NOT NULL;

-- Consent, per (user, client, resource); at most one live grant per triple.
CREATE TABLE oauth_grants (
    id              uuid        PRIMARY KEY,
    org_id          uuid        NOT NULL REFERENCES orgs(id),
    user_id         uuid        NOT NULL REFERENCES users(id),
    client_id       text        NOT NULL REFERENCES oauth_clients(id),
    scope           text        NOT NULL,
    resource        text        NOT NULL,
    created_at      timestamptz NOT NULL,
    revoked_at      timestamptz,
    revoked_reason  text
);
CREATE UNIQUE INDEX oauth_grants_live ON oauth_grants (user_id, client_id, resource)
    WHERE revoked_at IS NULL;
-- "My grants" and revoking all of a user's (or a membership's) grants.
CREATE INDEX oauth_grants_user ON oauth_grants (user_id, org_id, created_at);
CREATE INDEX oauth_grants_client ON oauth_grants (client_id);

CREATE TABLE oauth_codes (
    code_hash       text        PRIMARY KEY,
    grant_id        uuid        NOT NULL REFERENCES oauth_grants(id),
    client_id       text        NOT NULL REFERENCES oauth_clients(id),
    redirect_uri    text        NOT NULL,
    code_challenge  text        NOT NULL,
    resource        text        NOT NULL,
    scope           text        NOT NULL,
    user_id         uuid        NOT NULL REFERENCES users(id),
    org_id          uuid        NOT NULL REFERENCES orgs(id),
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    consumed_at     timestamptz
);
CREATE INDEX oauth_codes_grant ON oauth_codes (grant_id);
CREATE INDEX oauth_codes_expiry ON oauth_codes (expires_at);

CREATE TABLE oauth_refresh_tokens (
    token_hash       text        PRIMARY KEY,
    family_id        uuid        NOT NULL,
    grant_id         uuid        NOT NULL REFERENCES oauth_grants(id),
    client_id        text        NOT NULL REFERENCES oauth_clients(id),
    resource         text        NOT NULL,
    scope            text        NOT NULL,
    created_at       timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    idle_expires_at  timestamptz NOT NULL,
    used_at          timestamptz,
    revoked_at       timestamptz
);
CREATE INDEX oauth_refresh_tokens_family ON oauth_refresh_tokens (family_id);
CREATE INDEX oauth_refresh_tokens_grant ON oauth_refresh_tokens (grant_id);

-- Access tokens revoked before they expire (RFC 7009), kept until they would expire.
CREATE TABLE oauth_revoked_access_tokens (
    jti         text        PRIMARY KEY,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX oauth_revoked_access_tokens_expiry ON oauth_revoked_access_tokens (expires_at);

-- EdDSA signing keys: PKCS#8 DER as hex. Not yet encrypted at rest (see
-- assay_core::oauth::SigningKeyRecord).
CREATE TABLE oauth_signing_keys (
    kid            text        PRIMARY KEY,
    private_pkcs8  text        NOT NULL,
    created_at     timestamptz NOT NULL,
    retired_at     timestamptz
);
CREATE INDEX oauth_signing_keys_created ON oauth_signing_keys (created_at);

-- RFC 8628. status: 'pending' | 'approved' (user, org and grant set) | 'denied'.
CREATE TABLE oauth_device_authorizations (
    device_code_hash  text        PRIMARY KEY,
    user_code         text        NOT NULL,
    client_id         text        NOT NULL REFERENCES oauth_clients(id),
    scope             text        NOT NULL,
    resource          text        NOT NULL,
    created_at        timestamptz NOT NULL,
    expires_at        timestamptz NOT NULL,
    interval_secs     bigint      NOT NULL,
    last_poll_at      timestamptz,
    status            text        NOT NULL,
    user_id           uuid        REFERENCES users(id),
    org_id            uuid        REFERENCES orgs(id),
    grant_id          uuid        REFERENCES oauth_grants(id)
);
-- A user code names one pending authorization at a time.
CREATE UNIQUE INDEX oauth_device_authorizations_user_code
    ON oauth_device_authorizations (user_code) WHERE status = 'pending';
CREATE INDEX oauth_device_authorizations_client ON oauth_device_authorizations (client_id);
CREATE INDEX oauth_device_authorizations_expiry ON oauth_device_authorizations (expires_at);
