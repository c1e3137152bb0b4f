-- Who may write (src/triptych/security/): API keys, stored only as a hash, with
-- scopes; a revoked key stays listed (who had access, and until when).
CREATE TABLE api_keys (
    key_id        TEXT        PRIMARY KEY CHECK (key_id ~ '^[0-9a-f]{12}$'),
    name          TEXT        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- sha256 of the whole key: keys are 256-bit random, so a fast hash is enough
    -- (nothing to brute-force, unlike a password).
    key_hash      CHAR(64)    NOT NULL UNIQUE CHECK (key_hash ~ '^[0-9a-f]{64}$'),
    scopes        TEXT[]      NOT NULL CHECK (scopes <@ ARRAY['read', 'upload', 'label', 'admin']::text[]),
    -- uploads (images) per minute; NULL = the configured default
    rate_per_minute INTEGER   CHECK (rate_per_minute > 0),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at  TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ
);
CREATE UNIQUE INDEX api_keys_active_name_uq ON api_keys (name) WHERE revoked_at IS NULL;

-- Upload rate limiting shared by every replica of the API and the upload
-- function: images counted per caller and minute (a fixed window).
CREATE TABLE api_rate_windows (
    caller        TEXT        NOT NULL,
    window_start  TIMESTAMPTZ NOT NULL,
    used          INTEGER     NOT NULL CHECK (used >= 0),
    PRIMARY KEY (caller, window_start)
);

-- Runs of a workflow (retraining): what was asked, by whom, and how it ended.
-- Started by POST /retrain (the API or the retrain function) or its cron trigger.
CREATE TABLE pipeline_runs (
    run_id        UUID        PRIMARY KEY,
    workflow      TEXT        NOT NULL,
    state         TEXT        NOT NULL DEFAULT 'queued'
                  CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    params        JSONB       NOT NULL DEFAULT '{}'::jsonb,
    requested_by  TEXT,
    result        JSONB,
    error         TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at    TIMESTAMPTZ,
    ended_at      TIMESTAMPTZ
);
CREATE INDEX pipeline_runs_created_at_idx ON pipeline_runs (created_at DESC);
