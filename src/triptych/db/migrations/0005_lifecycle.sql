-- The model lifecycle (src/triptych/lifecycle/): workflow steps, shadow
-- predictions of a challenger, and the records the scheduled jobs keep.

-- Each step of a workflow run (gather, train:<model>, evaluate:<model>, gate:<model>,
-- or a scheduled job's single step), so the Models page and `triptych runs show`
-- can say where a run is and how each part went.
CREATE TABLE pipeline_steps (
    run_id         UUID        NOT NULL REFERENCES pipeline_runs (run_id) ON DELETE CASCADE,
    step           TEXT        NOT NULL CHECK (length(step) BETWEEN 1 AND 100),
    state          TEXT        NOT NULL DEFAULT 'running'
                   CHECK (state IN ('running', 'succeeded', 'failed', 'skipped')),
    -- epoch, images done, held-out accuracy, seconds left: updated as the step goes
    progress       JSONB       NOT NULL DEFAULT '{}'::jsonb,
    result         JSONB,
    error          TEXT,
    mlflow_run_id  TEXT,
    mlrun_run_uid  TEXT,
    started_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    ended_at       TIMESTAMPTZ,
    PRIMARY KEY (run_id, step)
);

-- The workflow run as MLRun knows it (its workflow id), beside ours; and the last
-- sign of life of the process running it, so a restarted retrain function fails
-- only runs whose runner went quiet, never one another process is running.
ALTER TABLE pipeline_runs ADD COLUMN mlrun_workflow_id TEXT;
ALTER TABLE pipeline_runs ADD COLUMN heartbeat_at TIMESTAMPTZ;
CREATE INDEX pipeline_runs_workflow_created_idx ON pipeline_runs (workflow, created_at DESC);

-- A challenger served in shadow answers the same images as the champion; its
-- predictions are kept (role 'shadow') but never count in a comparison's consensus.
-- When one version is both (a challenger just promoted), 'champion' wins.
ALTER TABLE predictions ADD COLUMN role TEXT NOT NULL DEFAULT 'champion'
    CHECK (role IN ('champion', 'shadow'));
CREATE INDEX predictions_shadow_idx ON predictions (model_name, model_version) WHERE role = 'shadow';

-- The shadow answers for a comparison's image, shown beside the champions':
-- {"resnet50": {"version": "7", "class": "cat", "confidence": 0.8, "correct": true}}
ALTER TABLE model_comparisons ADD COLUMN shadow JSONB NOT NULL DEFAULT '{}'::jsonb;

-- Retention deletes the oldest rows first, in batches.
CREATE INDEX predictions_predicted_at_idx ON predictions (predicted_at);
