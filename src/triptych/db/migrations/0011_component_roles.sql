-- Least privilege: one role per component, holding only the rights its work needs
-- (triptych.security.db_roles names the components and makes each role a login
-- with its own password; this migration only grants). A leaked password of one
-- component cannot touch another's data: the server refuses, whatever the code.
--
-- Every later migration that adds a table grants it here's way, to the roles
-- that need it: nothing is granted by default.
--
-- The roles are made NOLOGIN when missing (the migrating owner needs CREATEROLE:
-- `triptych up` gives it to the local owner; a chart's PostgreSQL runs migrations
-- as its superuser; with CloudNativePG they are the Cluster's managed roles).
DO $$
DECLARE
    component TEXT;
BEGIN
    FOREACH component IN ARRAY ARRAY['upload', 'ingest', 'infer', 'aggregate', 'jobs', 'retrain', 'api',
                                     'dashboard', 'supervisor'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'triptych_' || component) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', 'triptych_' || component);
        END IF;
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), 'triptych_' || component);
        EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', 'triptych_' || component);
        -- The audit trail is append-only for everyone (log_system_event reads back a
        -- deduplicated row's id): no component may edit or delete what it recorded.
        EXECUTE format('GRANT SELECT, INSERT ON system_events TO %I', 'triptych_' || component);
        EXECUTE format('GRANT USAGE ON SEQUENCE system_events_event_id_seq TO %I', 'triptych_' || component);
    END LOOP;
END $$;

-- upload: authenticates callers and limits their rate; finds an earlier copy of an image
-- and registers the one it stored (ingest registers the same row again, by its key).
GRANT SELECT, INSERT, UPDATE ON images TO triptych_upload;
GRANT SELECT, UPDATE ON api_keys TO triptych_upload;
GRANT SELECT, INSERT, UPDATE, DELETE ON api_rate_windows TO triptych_upload;

-- ingest: registers images and sweeps the buckets.
GRANT SELECT, INSERT, UPDATE ON images, bucket_sweeps TO triptych_ingest;

-- infer: reads the classes the models answered lately (label choices without the registry).
GRANT SELECT ON predictions TO triptych_infer;

-- aggregate: predictions, comparisons and the per-minute metrics; an image's status.
GRANT SELECT, UPDATE ON images TO triptych_aggregate;
GRANT SELECT, INSERT, UPDATE ON predictions, int8_predictions, model_comparisons, model_metrics TO triptych_aggregate;
GRANT USAGE ON SEQUENCE predictions_prediction_id_seq, model_comparisons_comparison_id_seq TO triptych_aggregate;

-- jobs: the lifecycle jobs (shadow gate, drift, snapshots, data quality and retention).
GRANT SELECT ON images, predictions, int8_predictions, model_comparisons, model_metrics,
    model_performance_comparison, model_stats, recent_predictions TO triptych_jobs;
GRANT UPDATE, DELETE ON images, predictions, int8_predictions, model_comparisons, model_metrics TO triptych_jobs;
GRANT INSERT ON model_metrics TO triptych_jobs;
GRANT SELECT, INSERT, UPDATE, DELETE ON drift_detectors, drift_watermarks TO triptych_jobs;
GRANT SELECT, INSERT, UPDATE ON pipeline_runs, pipeline_steps TO triptych_jobs;
GRANT DELETE ON api_rate_windows TO triptych_jobs;

-- retrain: reads the labelled images and answers it trains on; records its runs;
-- authenticates the callers of its HTTP trigger (an admin key).
GRANT SELECT ON images, predictions, model_comparisons, model_metrics TO triptych_retrain;
GRANT SELECT, INSERT, UPDATE ON pipeline_runs, pipeline_steps TO triptych_retrain;
GRANT SELECT, UPDATE ON api_keys TO triptych_retrain;

-- api: reads everything but the dashboard's users and sessions; labels; asks for and
-- cancels retraining; clears predictions (admin); authenticates and rate-limits callers.
GRANT SELECT ON images, predictions, int8_predictions, model_comparisons, model_metrics, bucket_sweeps,
    drift_detectors, drift_watermarks, pipeline_runs, pipeline_steps,
    model_performance_comparison, model_stats, recent_predictions TO triptych_api;
GRANT UPDATE ON images, model_comparisons TO triptych_api;
GRANT DELETE ON predictions, int8_predictions, model_comparisons, model_metrics TO triptych_api;
GRANT INSERT, UPDATE ON pipeline_runs TO triptych_api;
GRANT SELECT, UPDATE ON api_keys TO triptych_api;
GRANT SELECT, INSERT, UPDATE, DELETE ON api_rate_windows TO triptych_api;

-- dashboard: reads every page's data; labels; asks for and cancels retraining; its own
-- users, sessions, login links and failed attempts; signs in with API keys.
GRANT SELECT ON images, predictions, int8_predictions, model_comparisons, model_metrics, bucket_sweeps,
    drift_detectors, drift_watermarks, pipeline_runs, pipeline_steps,
    model_performance_comparison, model_stats, recent_predictions TO triptych_dashboard;
GRANT UPDATE ON images, model_comparisons TO triptych_dashboard;
GRANT INSERT, UPDATE ON pipeline_runs TO triptych_dashboard;
GRANT SELECT, UPDATE ON api_keys TO triptych_dashboard;
GRANT SELECT, INSERT, UPDATE, DELETE ON api_rate_windows TO triptych_dashboard;
GRANT SELECT, INSERT, UPDATE, DELETE ON dashboard_users, dashboard_sessions, dashboard_login_links,
    dashboard_login_failures TO triptych_dashboard;

-- supervisor: records its scaling decisions (system_events, above); nothing else.
