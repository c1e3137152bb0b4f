-- Where ingest's sweep stands in each bucket (src/triptych/ingress/ingest.py,
-- Ingestor.sweep): it lists one page of keys after `after_key` each tick and
-- wraps to the start at the end, so every key of a bucket of any size is looked
-- at once a pass, at the cost of one listing page and one lookup a tick.
CREATE TABLE bucket_sweeps (
    bucket            TEXT        PRIMARY KEY,
    after_key         TEXT        NOT NULL DEFAULT '',
    pass_started_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_pass_seconds DOUBLE PRECISION,
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
