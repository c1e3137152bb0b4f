"""MLRun jobs run on a schedule by the `jobs` function (and by hand with
`triptych jobs run NAME`): data quality (daily), metrics snapshots (hourly) and
the shadow gate and the drift detectors (every minute). The handlers live in the
package (triptych.lifecycle.job_handlers), so that an image without MLRun or this
folder runs them too; this file is MLRun's command file. See triptych.lifecycle.jobs."""

from __future__ import annotations

from triptych.lifecycle.job_handlers import data_quality, drift_watch, metrics_snapshot, shadow_gate

__all__ = ["data_quality", "drift_watch", "metrics_snapshot", "shadow_gate"]
