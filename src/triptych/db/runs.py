"""pipeline_runs and pipeline_steps: each workflow run (retraining, a scheduled
job), from the request to its outcome, and each of its steps as it goes, so a
caller that got a run id can ask how it went (`GET /retrain/{run_id}`,
`triptych runs show`, the dashboard's Models page)."""

from __future__ import annotations

import json
import uuid

COLUMNS = (
    "run_id, workflow, state, params, requested_by, result, error, created_at, started_at, ended_at, "
    "mlrun_workflow_id, heartbeat_at, cancel_requested_at, cancelled_by"
)


def create_run(cur, workflow: str, params: dict, requested_by: str | None) -> dict:
    cur.execute(
        f"""INSERT INTO pipeline_runs (run_id, workflow, params, requested_by) VALUES (%s, %s, %s::jsonb, %s)
            RETURNING {COLUMNS}""",
        (str(uuid.uuid4()), workflow, json.dumps(params), requested_by),
    )
    return dict(cur.fetchone())


def start_run(cur, run_id: str) -> None:
    cur.execute(
        "UPDATE pipeline_runs SET state = 'running', started_at = now(), heartbeat_at = now() WHERE run_id = %s",
        (run_id,),
    )


def heartbeat(cur, run_id: str) -> None:
    cur.execute("UPDATE pipeline_runs SET heartbeat_at = now() WHERE run_id = %s AND state = 'running'", (run_id,))


def finish_run(cur, run_id: str, result: dict | None = None, error: str | None = None, cancelled: bool = False) -> None:
    cur.execute(
        """UPDATE pipeline_runs SET state = %s, result = %s::jsonb, error = %s, ended_at = now()
           WHERE run_id = %s""",
        (
            "cancelled" if cancelled else "failed" if error else "succeeded",
            json.dumps(result, default=str) if result is not None else None,
            error,
            run_id,
        ),
    )


def request_cancel(cur, run_id: str, by: str) -> dict | None:
    """Ask an unfinished run to stop (it does at its next progress report); the run
    as it now stands, or None when there is no such run. A finished run is left as it ended."""
    cur.execute(
        f"""UPDATE pipeline_runs SET cancel_requested_at = COALESCE(cancel_requested_at, now()),
                        cancelled_by = COALESCE(cancelled_by, %s)
                    WHERE run_id = %s AND state IN ('queued', 'running') RETURNING {COLUMNS}""",
        (by, run_id),
    )
    row = cur.fetchone()
    return dict(row) if row else get_run(cur, run_id)


def cancel_requested(cur, run_id: str) -> bool:
    cur.execute("SELECT cancel_requested_at IS NOT NULL AS asked FROM pipeline_runs WHERE run_id = %s", (run_id,))
    row = cur.fetchone()
    return bool(row and row["asked"])


def unfinished_runs(cur, workflow: str) -> list[dict]:
    cur.execute(
        f"SELECT {COLUMNS} FROM pipeline_runs WHERE workflow = %s AND state IN ('queued', 'running') "
        "ORDER BY created_at",
        (workflow,),
    )
    return [dict(r) for r in cur.fetchall()]


# A running run's process beats every HEARTBEAT_S; one silent for STALE_S has died.
HEARTBEAT_S = 15
STALE_S = 120


def fail_unfinished(cur, workflow: str, reason: str, stale_s: float = STALE_S) -> int:
    """Runs whose process died mid-run (no heartbeat, or none for `stale_s`) end as
    failed; a run another live process is running is left alone."""
    cur.execute(
        """UPDATE pipeline_runs SET state = 'failed', error = %s, ended_at = now()
                   WHERE workflow = %s AND state IN ('queued', 'running')
                     AND COALESCE(heartbeat_at, created_at) < now() - make_interval(secs => %s)
                   RETURNING run_id""",
        (reason, workflow, stale_s),
    )
    failed = [str(r["run_id"]) for r in cur.fetchall()]
    cur.execute(
        """UPDATE pipeline_steps SET state = 'failed', error = %s, ended_at = now(), updated_at = now()
                   WHERE run_id = ANY(%s::uuid[]) AND state = 'running'""",
        (reason, failed),
    )
    return len(failed)


def get_run(cur, run_id: str) -> dict | None:
    """A run with its steps."""
    cur.execute(f"SELECT {COLUMNS} FROM pipeline_runs WHERE run_id = %s", (run_id,))
    row = cur.fetchone()
    if row is None:
        return None
    return {**dict(row), "steps": steps_of(cur, [run_id])[str(run_id)]}


def recent_runs(cur, limit: int = 20, workflow: str | None = None, with_steps: bool = False) -> list[dict]:
    cur.execute(
        f"SELECT {COLUMNS} FROM pipeline_runs WHERE (%s::text IS NULL OR workflow = %s) "
        "ORDER BY created_at DESC LIMIT %s",
        (workflow, workflow, limit),
    )
    rows = [dict(r) for r in cur.fetchall()]
    if with_steps:
        steps = steps_of(cur, [r["run_id"] for r in rows])
        for row in rows:
            row["steps"] = steps[str(row["run_id"])]
    return rows


# --- steps ---------------------------------------------------------------------

STEP_COLUMNS = (
    "run_id, step, state, progress, result, error, mlflow_run_id, mlrun_run_uid, started_at, updated_at, ended_at"
)


def start_step(cur, run_id: str, step: str, mlrun_run_uid: str | None = None) -> None:
    """A step begins (again, when a run retries it: the earlier attempt's outcome is replaced)."""
    cur.execute(
        """INSERT INTO pipeline_steps (run_id, step, mlrun_run_uid) VALUES (%s, %s, %s)
           ON CONFLICT (run_id, step) DO UPDATE SET state = 'running', progress = '{}'::jsonb, result = NULL,
               error = NULL, mlrun_run_uid = EXCLUDED.mlrun_run_uid, started_at = now(), updated_at = now(),
               ended_at = NULL""",
        (run_id, step, mlrun_run_uid),
    )


def step_progress(cur, run_id: str, step: str, progress: dict) -> None:
    cur.execute(
        "UPDATE pipeline_steps SET progress = %s::jsonb, updated_at = now() WHERE run_id = %s AND step = %s",
        (json.dumps(progress, default=str), run_id, step),
    )


def finish_step(
    cur,
    run_id: str,
    step: str,
    state: str,
    result: dict | None = None,
    error: str | None = None,
    mlflow_run_id: str | None = None,
) -> None:
    cur.execute(
        """UPDATE pipeline_steps SET state = %s, result = %s::jsonb, error = %s,
               mlflow_run_id = COALESCE(%s, mlflow_run_id), updated_at = now(), ended_at = now()
           WHERE run_id = %s AND step = %s""",
        (state, json.dumps(result, default=str) if result is not None else None, error, mlflow_run_id, run_id, step),
    )


def steps_of(cur, run_ids: list[str]) -> dict[str, list[dict]]:
    """Each run's steps in the order they started."""
    result: dict[str, list[dict]] = {str(r): [] for r in run_ids}
    if run_ids:
        cur.execute(
            f"SELECT {STEP_COLUMNS} FROM pipeline_steps WHERE run_id = ANY(%s::uuid[]) ORDER BY started_at, step",
            (list(map(str, run_ids)),),
        )
        for row in cur.fetchall():
            result[str(row["run_id"])].append(dict(row))
    return result


def set_workflow_id(cur, run_id: str, workflow_id: str) -> None:
    cur.execute("UPDATE pipeline_runs SET mlrun_workflow_id = %s WHERE run_id = %s", (workflow_id, run_id))
