"""Champions carried into another deployment's registry (the multi-host cluster's,
the Kubernetes node's) from the registry this process points at, without training
them again: `triptych models export` here, `triptych models import` there.

Each side is its own process: MLflow's client keeps its tracking URI and S3
settings in process-wide state, so one process must never talk to both."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ..config import Settings
from ..errors import StackError
from .bootstrap import missing_champions

# The CLI as a program (never imported here: models sits below it).
CLI = [sys.executable, "-m", "triptych.cli"]


def environ_without_this_stack() -> dict[str, str]:
    """This process's environment less its TRIPTYCH_ settings (its ports, URLs and
    data dir), so that nothing of the caller's own stack leaks into the other side;
    the install cache is shared."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TRIPTYCH_") or k == "TRIPTYCH_CACHE_DIR"}


def mlflow_answers(settings: Settings, timeout_s: float = 3.0) -> bool:
    """Whether the MLflow `settings` point at answers now (MLflow's own client would
    retry a dead server in silence for minutes)."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"{settings.mlflow_url}/health", timeout=timeout_s) as reply:
            return reply.status == 200
    except OSError:
        return False


def carry_champions(
    source: Settings, target: Settings, target_env: dict[str, str], where: str, report=lambda _msg: None
) -> bool:
    """Give `target` (reached with `target_env`) the source's champions when it has none;
    True when something was carried. Says at once when either MLflow does not answer."""
    if not mlflow_answers(target, timeout_s=30.0):
        raise StackError(f"the {where}'s MLflow at {target.mlflow_url} does not answer")
    if not missing_champions(target):
        report(f"the {where}'s MLflow has its champions already")
        return False
    if not mlflow_answers(source):
        raise StackError(
            f"the {where}'s MLflow has no champions, and this stack's MLflow at {source.mlflow_url}, "
            "which they are carried from, does not answer: `triptych up` starts it (then "
            "`triptych models bootstrap --train` if it has none), or give the "
            f"{where} champions with `triptych models import`"
        )
    if missing_champions(source):
        raise StackError(
            f"the {where}'s MLflow has no champions and neither has this stack's to carry over: "
            "`triptych models bootstrap --train` first, or import some with `triptych models import`"
        )
    report(f"exporting the champions from {source.mlflow_url}, importing them into the {where}'s MLflow")
    with tempfile.TemporaryDirectory() as folder:
        export = subprocess.run([*CLI, "models", "export", "--to", folder], capture_output=True, text=True)
        if export.returncode != 0:
            raise StackError(f"`triptych models export` failed:\n{export.stderr[-2000:]}")
        folders = sorted(str(p) for p in Path(folder).iterdir() if p.is_dir())
        imported = subprocess.run(
            [*CLI, "models", "import", *folders],
            capture_output=True,
            text=True,
            env={**environ_without_this_stack(), **target_env},
        )
        if imported.returncode != 0:
            raise StackError(f"`triptych models import` into the {where} failed:\n{imported.stderr[-2000:]}")
    return True
