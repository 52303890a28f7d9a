-- Issue 5: browser login sessions of the authorization server's pages (login, consent,
-- device verification). The cookie carries an opaque secret; only its hex SHA-256 is
-- kept, and any replica can look it up. SQLite's 0004 has the same table and indexes.
CREATE TABLE oauth_browser_sessions (
    secret_hash  text        PRIMARY KEY,
    user_id      uuid        NOT NULL REFERENCES users(id),
    method       text        NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);
-- Purging expired sessions.
CREATE INDEX oauth_browser_sessions_expiry ON oauth_browser_sessions (expires_at);
CREATE INDEX oauth_browser_sessions_user ON oauth_browser_sessions (user_id);
