-- Accounts, sessions, the OpenID Provider's state and per-application grants (issue 3).
-- Times are microseconds since the Unix epoch (UTC); booleans are 0/1 integers so that both
-- databases read them the same way. Secrets are stored only as hashes (SHA-256 hex for random
-- tokens, argon2id PHC strings for passwords).
CREATE TABLE auth_account (
    id                  TEXT    PRIMARY KEY,
    username            TEXT    NOT NULL UNIQUE,
    kind                TEXT    NOT NULL,
    national_id         TEXT,
    organisation        TEXT,
    display_name        TEXT    NOT NULL,
    roles               TEXT    NOT NULL,
    password_hash       TEXT,
    totp_secret         TEXT,
    totp_enabled        INTEGER NOT NULL DEFAULT 0,
    totp_last_step      INTEGER NOT NULL DEFAULT 0,
    failed_logins       INTEGER NOT NULL DEFAULT 0,
    locked_until_us     INTEGER NOT NULL DEFAULT 0,
    disabled            INTEGER NOT NULL DEFAULT 0,
    created_at_us       INTEGER NOT NULL
);
CREATE INDEX auth_account_national_id ON auth_account (national_id);

-- Throttling of login attempts by user name, whether or not the account exists, so that
-- unknown names are throttled like known ones (no account enumeration).
CREATE TABLE auth_login_throttle (
    username            TEXT    PRIMARY KEY,
    failures            INTEGER NOT NULL,
    locked_until_us     INTEGER NOT NULL,
    updated_at_us       INTEGER NOT NULL
);

CREATE TABLE auth_recovery_code (
    account_id          TEXT    NOT NULL REFERENCES auth_account (id) ON DELETE CASCADE,
    code_hash           TEXT    NOT NULL,
    used_at_us          INTEGER,
    PRIMARY KEY (account_id, code_hash)
);

CREATE TABLE auth_session (
    id_hash             TEXT    PRIMARY KEY,
    account_id          TEXT    NOT NULL REFERENCES auth_account (id) ON DELETE CASCADE,
    csrf_token          TEXT    NOT NULL,
    amr                 TEXT    NOT NULL,
    second_factor       INTEGER NOT NULL,
    created_at_us       INTEGER NOT NULL,
    last_seen_us        INTEGER NOT NULL
);
CREATE INDEX auth_session_account ON auth_session (account_id);

CREATE TABLE oauth_client (
    id                  TEXT    PRIMARY KEY,
    name                TEXT    NOT NULL,
    secret_hash         TEXT,
    grant_types         TEXT    NOT NULL,
    redirect_uris       TEXT    NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    scopes              TEXT    NOT NULL,
    launch_url          TEXT,
    revoked             INTEGER NOT NULL DEFAULT 0,
    created_at_us       INTEGER NOT NULL
);

CREATE TABLE oauth_code (
    code_hash           TEXT    PRIMARY KEY,
    client_id           TEXT    NOT NULL,
    account_id          TEXT    NOT NULL,
    redirect_uri        TEXT    NOT NULL,
    scope               TEXT    NOT NULL,
    code_challenge      TEXT    NOT NULL,
    nonce               TEXT,
    auth_time_us        INTEGER NOT NULL,
    amr                 TEXT    NOT NULL,
    expires_at_us       INTEGER NOT NULL,
    used_at_us          INTEGER,
    family_id           TEXT    NOT NULL
);

-- Refresh tokens: one family per authorization; presenting a token already used revokes the
-- whole family (reuse detection).
CREATE TABLE oauth_refresh_token (
    token_hash          TEXT    PRIMARY KEY,
    family_id           TEXT    NOT NULL,
    client_id           TEXT    NOT NULL,
    account_id          TEXT    NOT NULL,
    scope               TEXT    NOT NULL,
    amr                 TEXT    NOT NULL,
    expires_at_us       INTEGER NOT NULL,
    used_at_us          INTEGER,
    revoked             INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX oauth_refresh_token_family ON oauth_refresh_token (family_id);

-- Signing keys live in the database so that every replica signs and publishes the same keys.
CREATE TABLE oauth_signing_key (
    kid                 TEXT    PRIMARY KEY,
    private_pkcs8       BLOB    NOT NULL,
    public_x            TEXT    NOT NULL,
    public_y            TEXT    NOT NULL,
    created_at_us       INTEGER NOT NULL,
    retired_at_us       INTEGER
);

-- The shared revocation and closure list: a revoked token id, a closed account or
-- practitioner, a revoked client. Validation refuses tokens matching an entry.
CREATE TABLE auth_revocation (
    seq                 INTEGER PRIMARY KEY,
    kind                TEXT    NOT NULL,
    value               TEXT    NOT NULL,
    revoked_at_us       INTEGER NOT NULL,
    expires_at_us       INTEGER
);
CREATE INDEX auth_revocation_value ON auth_revocation (kind, value);

-- Applications the launcher shows (registered OIDC clients and plugins).
CREATE TABLE auth_application (
    id                  TEXT    PRIMARY KEY,
    name                TEXT    NOT NULL,
    launch_url          TEXT
);

-- Who may use an application: one row per rule; a principal matching any rule is allowed.
CREATE TABLE auth_grant (
    application_id      TEXT    NOT NULL,
    kind                TEXT    NOT NULL,
    value               TEXT    NOT NULL,
    created_at_us       INTEGER NOT NULL,
    PRIMARY KEY (application_id, kind, value)
);
