"""The scheduled lifecycle jobs' handlers: data quality (daily), metrics snapshots
(hourly), the shadow gate and the drift detectors (every minute). Each takes an
MLRun-style context (`log_result`, `log_results`): `triptych.lifecycle.jobs` runs
them as MLRun jobs where MLRun is installed, and as plain calls where it is not
(the serving image, which the `jobs` function runs from on Kubernetes).
`projects/jobs/lifecycle_jobs.py` is their MLRun command file."""

from __future__ import annotations


def data_quality(context, run_id: str = "") -> None:
    from triptych.config import get_settings
    from triptych.lifecycle.quality import run_data_quality

    context.log_results(run_data_quality(get_settings(), run_id or None))


def metrics_snapshot(context, run_id: str = "") -> None:
    from triptych.config import get_settings
    from triptych.lifecycle.snapshots import snapshot_hours

    context.log_results(snapshot_hours(get_settings(), run_id or None))


def shadow_gate(context, run_id: str = "") -> None:
    from triptych.config import get_settings
    from triptych.lifecycle.gate import review_shadow
    from triptych.lifecycle.int8 import export_int8_champions

    context.log_result("decisions", review_shadow(get_settings()))
    # The same minute's look at the registry says whether the int8 twin has work (its wake on Kubernetes).
    context.log_result("int8_champions", export_int8_champions(get_settings()))


def drift_watch(context, run_id: str = "") -> None:
    from triptych.config import get_settings
    from triptych.lifecycle.drift import watch_drift

    results = watch_drift(get_settings())
    context.log_result("drifting", sorted(name for name, r in results.items() if r["status"] == "drift"))
