-- Triptych's schema. Every table has a natural unique key so that a replayed
-- Kafka message upserts the same row instead of adding a second one
-- (at-least-once delivery + idempotent sinks = effectively exactly once).

-- Images: one row per distinct object version. The same bytes re-uploaded under
-- another key are a new image (sha256 is indexed to recognise duplicates);
-- the same event replayed is the same image.
CREATE TABLE images (
    image_id           UUID PRIMARY KEY,
    bucket             TEXT        NOT NULL,
    object_key         TEXT        NOT NULL,
    -- '' for unversioned buckets, so the unique key below never compares NULLs.
    object_version     TEXT        NOT NULL DEFAULT '',
    sha256             CHAR(64)    NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    etag               TEXT,
    filename           TEXT        NOT NULL,
    content_type       TEXT,
    image_format       TEXT CHECK (image_format IN ('jpeg', 'png', 'webp', 'bmp')),
    size_bytes         BIGINT      NOT NULL CHECK (size_bytes >= 0),
    width              INTEGER CHECK (width > 0),
    height             INTEGER CHECK (height > 0),
    channels           SMALLINT CHECK (channels BETWEEN 1 AND 4),
    source             TEXT        NOT NULL DEFAULT 'unknown'
                       CHECK (source IN ('upload', 'bucket', 'cifar10', 'synthetic', 'webcam', 'video', 'rtsp', 'dir', 'unknown')),
    ground_truth_label TEXT,
    client_metadata    JSONB       NOT NULL DEFAULT '{}'::jsonb,
    status             TEXT        NOT NULL DEFAULT 'registered'
                       CHECK (status IN ('registered', 'processing', 'classified', 'quarantined')),
    quarantine_reason  TEXT,
    needs_review       BOOLEAN     NOT NULL DEFAULT FALSE,
    uploaded_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    registered_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT images_object_uq UNIQUE (bucket, object_key, object_version, sha256),
    CONSTRAINT images_quarantine_has_reason CHECK (status <> 'quarantined' OR quarantine_reason IS NOT NULL)
);
CREATE INDEX images_uploaded_at_idx ON images (uploaded_at DESC);
CREATE INDEX images_sha256_idx ON images (sha256);
CREATE INDEX images_needs_review_idx ON images (uploaded_at DESC) WHERE needs_review;
CREATE INDEX images_status_idx ON images (status);

-- Predictions: one per (image, model, model version). A replayed prediction
-- message upserts; a new model version adds a row beside the old one.
CREATE TABLE predictions (
    prediction_id    BIGSERIAL PRIMARY KEY,
    image_id         UUID             NOT NULL REFERENCES images (image_id) ON DELETE CASCADE,
    model_name       TEXT             NOT NULL,
    model_version    TEXT             NOT NULL,
    predicted_class  TEXT             NOT NULL,
    confidence       DOUBLE PRECISION NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    -- [{"label": "cat", "confidence": 0.91}, ...] best first
    top_k            JSONB            NOT NULL DEFAULT '[]'::jsonb,
    fetch_ms         DOUBLE PRECISION CHECK (fetch_ms >= 0),
    decode_ms        DOUBLE PRECISION CHECK (decode_ms >= 0),
    preprocess_ms    DOUBLE PRECISION CHECK (preprocess_ms >= 0),
    inference_ms     DOUBLE PRECISION NOT NULL CHECK (inference_ms >= 0),
    total_ms         DOUBLE PRECISION CHECK (total_ms >= 0),
    backend          TEXT,
    batch_size       INTEGER CHECK (batch_size > 0),
    worker_id        TEXT,
    predicted_at     TIMESTAMPTZ      NOT NULL DEFAULT now(),
    created_at       TIMESTAMPTZ      NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ      NOT NULL DEFAULT now(),
    CONSTRAINT predictions_image_model_version_uq UNIQUE (image_id, model_name, model_version)
);
CREATE INDEX predictions_created_at_idx ON predictions (created_at DESC);
CREATE INDEX predictions_model_created_idx ON predictions (model_name, created_at DESC);

-- Comparisons: one per image and set of model versions that answered, keyed by
-- a canonical text of that set ('efficientnet_b0@3,mobilenet_v2@2,resnet50@5').
CREATE TABLE model_comparisons (
    comparison_id        BIGSERIAL PRIMARY KEY,
    image_id             UUID             NOT NULL REFERENCES images (image_id) ON DELETE CASCADE,
    model_set            TEXT             NOT NULL,
    model_versions       JSONB            NOT NULL,  -- {"resnet50": "5", ...}
    consensus_class      TEXT,
    consensus_confidence DOUBLE PRECISION CHECK (consensus_confidence BETWEEN 0 AND 1),
    agreement_level      TEXT             NOT NULL CHECK (agreement_level IN ('all', 'majority', 'none')),
    agreement_ratio      DOUBLE PRECISION NOT NULL CHECK (agreement_ratio BETWEEN 0 AND 1),
    fastest_model        TEXT,
    fastest_inference_ms DOUBLE PRECISION,
    ground_truth_label   TEXT,
    -- {"resnet50": {"class": "cat", "confidence": 0.9, "inference_ms": 12.1, "correct": true}, ...}
    per_model            JSONB            NOT NULL,
    consensus_correct    BOOLEAN,
    needs_review         BOOLEAN          NOT NULL DEFAULT FALSE,
    created_at           TIMESTAMPTZ      NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ      NOT NULL DEFAULT now(),
    CONSTRAINT model_comparisons_image_set_uq UNIQUE (image_id, model_set)
);
CREATE INDEX model_comparisons_created_at_idx ON model_comparisons (created_at DESC);
CREATE INDEX model_comparisons_review_idx ON model_comparisons (created_at DESC) WHERE needs_review;
CREATE INDEX model_comparisons_agreement_idx ON model_comparisons (agreement_level, created_at DESC);

-- Rolling per-model metrics, one row per model version and time window.
CREATE TABLE model_metrics (
    model_name          TEXT             NOT NULL,
    model_version       TEXT             NOT NULL,
    window_start        TIMESTAMPTZ      NOT NULL,
    window_seconds      INTEGER          NOT NULL DEFAULT 60 CHECK (window_seconds > 0),
    prediction_count    INTEGER          NOT NULL CHECK (prediction_count >= 0),
    mean_inference_ms   DOUBLE PRECISION,
    p50_inference_ms    DOUBLE PRECISION,
    p95_inference_ms    DOUBLE PRECISION,
    p99_inference_ms    DOUBLE PRECISION,
    mean_total_ms       DOUBLE PRECISION,
    p50_total_ms        DOUBLE PRECISION,
    p95_total_ms        DOUBLE PRECISION,
    p99_total_ms        DOUBLE PRECISION,
    mean_confidence     DOUBLE PRECISION,
    labelled_count      INTEGER          NOT NULL DEFAULT 0,
    correct_count       INTEGER          NOT NULL DEFAULT 0,
    accuracy            DOUBLE PRECISION CHECK (accuracy BETWEEN 0 AND 1),
    agreement_rate      DOUBLE PRECISION CHECK (agreement_rate BETWEEN 0 AND 1),
    updated_at          TIMESTAMPTZ      NOT NULL DEFAULT now(),
    PRIMARY KEY (model_name, model_version, window_seconds, window_start),
    CONSTRAINT model_metrics_correct_le_labelled CHECK (correct_count <= labelled_count)
);
CREATE INDEX model_metrics_window_idx ON model_metrics (window_start DESC);

-- System events: quarantines, dead letters, model promotions, data-quality
-- findings. dedup_key makes a replayed record a no-op (e.g. 'dlq:topic:part:offset').
CREATE TABLE system_events (
    event_id    BIGSERIAL PRIMARY KEY,
    event_type  TEXT        NOT NULL,
    severity    TEXT        NOT NULL DEFAULT 'info'
                CHECK (severity IN ('debug', 'info', 'warning', 'error', 'critical')),
    component   TEXT        NOT NULL,
    message     TEXT        NOT NULL,
    details     JSONB       NOT NULL DEFAULT '{}'::jsonb,
    image_id    UUID REFERENCES images (image_id) ON DELETE SET NULL,
    dedup_key   TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT system_events_dedup_uq UNIQUE (dedup_key)
);
CREATE INDEX system_events_created_at_idx ON system_events (created_at DESC);
CREATE INDEX system_events_type_created_idx ON system_events (event_type, created_at DESC);

-- Records an event; with a dedup_key, a second call for the same thing returns
-- the first row's id instead of adding another.
CREATE FUNCTION log_system_event(
    p_event_type TEXT,
    p_severity   TEXT,
    p_component  TEXT,
    p_message    TEXT,
    p_details    JSONB DEFAULT '{}'::jsonb,
    p_image_id   UUID  DEFAULT NULL,
    p_dedup_key  TEXT  DEFAULT NULL
) RETURNS BIGINT
LANGUAGE plpgsql AS $$
DECLARE
    new_id BIGINT;
BEGIN
    INSERT INTO system_events (event_type, severity, component, message, details, image_id, dedup_key)
    VALUES (p_event_type, p_severity, p_component, p_message, COALESCE(p_details, '{}'::jsonb), p_image_id, p_dedup_key)
    ON CONFLICT (dedup_key) DO NOTHING
    RETURNING event_id INTO new_id;
    IF new_id IS NULL THEN
        SELECT event_id INTO new_id FROM system_events WHERE dedup_key = p_dedup_key;
    END IF;
    RETURN new_id;
END;
$$;

-- Per model version: volume, latency, confidence and accuracy where labelled.
CREATE VIEW model_stats AS
SELECT
    p.model_name,
    p.model_version,
    count(*)                                                          AS prediction_count,
    avg(p.confidence)                                                 AS mean_confidence,
    avg(p.inference_ms)                                               AS mean_inference_ms,
    percentile_cont(0.5)  WITHIN GROUP (ORDER BY p.inference_ms)      AS p50_inference_ms,
    percentile_cont(0.95) WITHIN GROUP (ORDER BY p.inference_ms)      AS p95_inference_ms,
    avg(p.total_ms)                                                   AS mean_total_ms,
    count(i.ground_truth_label)                                       AS labelled_count,
    count(*) FILTER (WHERE p.predicted_class = i.ground_truth_label)  AS correct_count,
    (count(*) FILTER (WHERE p.predicted_class = i.ground_truth_label))::double precision
        / NULLIF(count(i.ground_truth_label), 0)                      AS accuracy,
    min(p.created_at)                                                 AS first_prediction_at,
    max(p.created_at)                                                 AS last_prediction_at
FROM predictions p
JOIN images i USING (image_id)
GROUP BY p.model_name, p.model_version;

-- Predictions with their image, newest first when queried with ORDER BY/LIMIT.
CREATE VIEW recent_predictions AS
SELECT
    p.prediction_id,
    p.image_id,
    i.filename,
    i.source,
    i.ground_truth_label,
    p.model_name,
    p.model_version,
    p.predicted_class,
    p.confidence,
    p.inference_ms,
    p.total_ms,
    p.backend,
    p.worker_id,
    CASE WHEN i.ground_truth_label IS NULL THEN NULL
         ELSE p.predicted_class = i.ground_truth_label END AS correct,
    p.created_at
FROM predictions p
JOIN images i USING (image_id);

-- The models side by side, over everything they have both seen: how often each
-- agrees with the consensus and how often it is the fastest.
CREATE VIEW model_performance_comparison AS
WITH per_model AS (
    SELECT
        c.comparison_id,
        m.key                               AS model_name,
        (m.value ->> 'class')               AS predicted_class,
        (m.value ->> 'inference_ms')::double precision AS inference_ms,
        (m.value ->> 'correct')::boolean    AS correct,
        c.consensus_class,
        c.fastest_model
    FROM model_comparisons c
    CROSS JOIN LATERAL jsonb_each(c.per_model) AS m
)
SELECT
    model_name,
    count(*)                                                     AS images_compared,
    avg(inference_ms)                                            AS mean_inference_ms,
    percentile_cont(0.95) WITHIN GROUP (ORDER BY inference_ms)   AS p95_inference_ms,
    (count(*) FILTER (WHERE predicted_class = consensus_class))::double precision / count(*) AS agrees_with_consensus_rate,
    (count(*) FILTER (WHERE fastest_model = model_name))::double precision / count(*)        AS fastest_rate,
    (count(*) FILTER (WHERE correct))::double precision
        / NULLIF(count(*) FILTER (WHERE correct IS NOT NULL), 0) AS accuracy
FROM per_model
GROUP BY model_name;
