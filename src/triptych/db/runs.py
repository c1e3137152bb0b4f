"""pipeline_runs: each retraining run, from the request to its outcome, so a caller
that got a run id can ask how it went (`GET /retrain/{run_id}`)."""

from __future__ import annotations

import json
import uuid

COLUMNS = "run_id, workflow, state, params, requested_by, result, error, created_at, started_at, ended_at"


def create_run(cur, workflow: str, params: dict, requested_by: str | None) -> dict:
    cur.execute(
        f"""INSERT INTO pipeline_runs (run_id, workflow, params, requested_by) VALUES (%s, %s, %s::jsonb, %s)
            RETURNING {COLUMNS}""",
        (str(uuid.uuid4()), workflow, json.dumps(params), requested_by),
    )
    return dict(cur.fetchone())


def start_run(cur, run_id: str) -> None:
    cur.execute("UPDATE pipeline_runs SET state = 'running', started_at = now() WHERE run_id = %s", (run_id,))


def finish_run(cur, run_id: str, result: dict | None = None, error: str | None = None) -> None:
    cur.execute(
        """UPDATE pipeline_runs SET state = %s, result = %s::jsonb, error = %s, ended_at = now()
           WHERE run_id = %s""",
        ("failed" if error else "succeeded", json.dumps(result, default=str) if result is not None else None, error,
         run_id),
    )


def unfinished_runs(cur, workflow: str) -> list[dict]:
    cur.execute(f"SELECT {COLUMNS} FROM pipeline_runs WHERE workflow = %s AND state IN ('queued', 'running') "
                "ORDER BY created_at", (workflow,))
    return [dict(r) for r in cur.fetchall()]


def fail_unfinished(cur, workflow: str, reason: str) -> int:
    """Runs a previous process left unfinished (it died mid-run) end as failed."""
    cur.execute("""UPDATE pipeline_runs SET state = 'failed', error = %s, ended_at = now()
                   WHERE workflow = %s AND state IN ('queued', 'running')""", (reason, workflow))
    return cur.rowcount


def get_run(cur, run_id: str) -> dict | None:
    cur.execute(f"SELECT {COLUMNS} FROM pipeline_runs WHERE run_id = %s", (run_id,))
    row = cur.fetchone()
    return dict(row) if row else None


def recent_runs(cur, limit: int = 20) -> list[dict]:
    cur.execute(f"SELECT {COLUMNS} FROM pipeline_runs ORDER BY created_at DESC LIMIT %s", (limit,))
    return [dict(r) for r in cur.fetchall()]
