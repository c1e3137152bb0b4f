-- Indexes the dashboard's read-side queries need (src/triptych/db/queries.py),
-- so no refresh scans a whole table.
-- Previous / next image in upload order (keyset on (uploaded_at, image_id)).
CREATE INDEX images_uploaded_at_id_idx ON images (uploaded_at, image_id);
-- The review page's quarantine list, newest first.
CREATE INDEX images_quarantined_idx ON images (uploaded_at DESC) WHERE status = 'quarantined';
-- An image's latest comparison (history, review, the image page).
CREATE INDEX model_comparisons_image_updated_idx ON model_comparisons (image_id, updated_at DESC);
-- The Compare page's throughput series: model_metrics by time across models.
CREATE INDEX model_metrics_seconds_window_idx ON model_metrics (window_seconds, window_start);
-- Search by any part of a file name (History): a trigram index serves ILIKE '%part%'.
-- pg_trgm ships with PostgreSQL and is a trusted extension: the database owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX images_filename_trgm_idx ON images USING gin (filename gin_trgm_ops);
