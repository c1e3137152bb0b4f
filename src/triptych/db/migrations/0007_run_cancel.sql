-- A run can be cancelled (`triptych runs cancel`, DELETE /retrain/{run_id}): who
-- asked and when. The training stops at its next progress report (a few batches),
-- its step and the run end `cancelled`, and the gate is never reached, so the
-- champion stays as it was.
ALTER TABLE pipeline_runs
    DROP CONSTRAINT pipeline_runs_state_check,
    ADD CONSTRAINT pipeline_runs_state_check
        CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    ADD COLUMN cancel_requested_at TIMESTAMPTZ,
    ADD COLUMN cancelled_by TEXT;
ALTER TABLE pipeline_steps
    DROP CONSTRAINT pipeline_steps_state_check,
    ADD CONSTRAINT pipeline_steps_state_check
        CHECK (state IN ('running', 'succeeded', 'failed', 'skipped', 'cancelled'));
