-- Drift (triptych.stats.drift, the `drift` job). Ingest records each image's pixel
-- statistics on the 64 px copy the models see; the job compares the newest with
-- the training set's. Older rows have none and are simply not in the window.
ALTER TABLE images ADD COLUMN pixel_stats JSONB;
CREATE INDEX images_pixel_stats_idx ON images (uploaded_at DESC) WHERE pixel_stats IS NOT NULL;

-- The drift job's detectors between runs: one row each. `state` is the detector's
-- own (river's ADWIN, pickled); `summary` is what the API and the Compare page read.
CREATE TABLE drift_detectors (
    detector    TEXT        PRIMARY KEY,     -- confidence:<model>, agreement, input:pixels
    kind        TEXT        NOT NULL CHECK (kind IN ('output', 'input')),
    status      TEXT        NOT NULL DEFAULT 'ok' CHECK (status IN ('ok', 'drift', 'warming up')),
    state       BYTEA,
    summary     JSONB       NOT NULL DEFAULT '{}'::jsonb,
    drift_at    TIMESTAMPTZ,                 -- the newest detection
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- How far the job has read (comparisons are read once each, in id order), and the
-- training set's statistics (computed once per data set).
CREATE TABLE drift_watermarks (
    name        TEXT        PRIMARY KEY,
    value       JSONB       NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
