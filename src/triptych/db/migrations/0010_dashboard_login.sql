-- Who may use the dashboard, and the sessions they hold (triptych.security.users,
-- triptych.security.sessions). Passwords are argon2 hashes; session ids and
-- one-time login links are 256-bit random values stored only as sha256 hashes, so a
-- read of this table gives nobody a way in.
CREATE TABLE dashboard_users (
    name          TEXT        PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9._@-]{1,64}$'),
    role          TEXT        NOT NULL CHECK (role IN ('viewer', 'labeller', 'admin')),
    -- NULL: no password (the local admin signs in only through one-time links).
    password_hash TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE dashboard_sessions (
    session_hash  TEXT        PRIMARY KEY,
    -- A user's name, or `key:<key id>` for a session opened with an API key.
    subject       TEXT        NOT NULL,
    role          TEXT        NOT NULL CHECK (role IN ('viewer', 'labeller', 'admin')),
    csrf_token    TEXT        NOT NULL,
    how           TEXT        NOT NULL CHECK (how IN ('password', 'key', 'link')),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions (expires_at);

CREATE TABLE dashboard_login_links (
    link_hash     TEXT        PRIMARY KEY,
    user_name     TEXT        NOT NULL REFERENCES dashboard_users (name) ON DELETE CASCADE,
    expires_at    TIMESTAMPTZ NOT NULL,
    used_at       TIMESTAMPTZ
);

-- Failed sign-ins, per user name and per client address, over a sliding window
-- (triptych.security.login_limit): past the limit a sign-in is refused with 429.
CREATE TABLE dashboard_login_failures (
    subject       TEXT        NOT NULL,
    failed_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX dashboard_login_failures_recent ON dashboard_login_failures (subject, failed_at);
