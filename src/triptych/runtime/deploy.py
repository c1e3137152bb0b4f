"""Deploying the project's functions to a real Nuclio, through MLRun.

MLRun deploys Nuclio functions through its API server. Without one (no
MLRUN_DBPATH), MLRun quietly uses a no-op database and a deploy does nothing; we
refuse instead and say what is needed. Each function is deployed from the one
Triptych image (`fn.from_image`: Nuclio's codeEntryType "image"), never from its
bare handler file, which imports the `triptych` package only the image holds. The
usual path to a cluster is the Helm chart (`triptych deploy`, `triptych.kube`). `nuclio_function_config` renders the Nuclio
function configuration (what `nuctl deploy --file` and the Nuclio processor read)
from the same declaration, so it can be inspected and tested without a cluster.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .spec import project_functions


class DeployError(RuntimeError):
    pass


def nuclio_function_config(project_file: Path, name: str) -> dict:
    """The Nuclio function config (nuclio.io/v1 NuclioFunction) for one declared function."""
    return function_config(project_functions(project_file)[name], Path(project_file).resolve().parent)


def function_config(entry: dict, root: Path) -> dict:
    """The Nuclio function config of one `project.yaml` function entry (its source
    file relative to `root`): what `nuctl deploy --file` and the processor read."""
    name, spec = entry["name"], entry["spec"]["spec"]
    triggers = {
        key.removeprefix("spec.triggers."): value
        for key, value in spec.get("config", {}).items()
        if key.startswith("spec.triggers.")
    }
    source_file = Path(spec["build"]["origin_filename"])
    handler_name = spec.get("function_handler", "handler").rpartition(":")[2]
    source = (root / source_file).read_bytes()
    config: dict[str, Any] = {
        "apiVersion": "nuclio.io/v1",
        "kind": "NuclioFunction",
        "metadata": {"name": name, "labels": {"mlrun/project": "triptych"}},
        "spec": {
            "runtime": "python:3.11",
            "handler": f"{source_file.stem}:{handler_name}",
            "env": [e for e in spec.get("env", []) if "value" in e],
            "minReplicas": spec.get("min_replicas", 1),
            "maxReplicas": spec.get("max_replicas", 1),
            "triggers": triggers,
            "build": {"functionSourceCode": base64.b64encode(source).decode(), "baseImage": spec.get("image")},
        },
    }
    if "metadata.annotations" in spec.get("config", {}):
        config["metadata"]["annotations"] = spec["config"]["metadata.annotations"]
    if "spec.resources" in spec.get("config", {}):
        config["spec"]["resources"] = spec["config"]["spec.resources"]
    return config


# Where infra/image/Containerfile puts each function's folder.
IMAGE_FUNCTIONS_DIR = "/opt/triptych/functions"


def from_image(fn, image: str, source_file: str) -> None:
    """Point an MLRun Nuclio function at the Triptych image: the processor there
    runs `handler:handler` from the function's folder (NUCLIO_PYTHON_PATH)."""
    folder = Path(source_file).parent.name
    fn.spec.function_handler = f"{Path(source_file).stem}:{fn.spec.function_handler.rpartition(':')[2] or 'handler'}"
    fn.from_image(image)
    fn.set_env("NUCLIO_PYTHON_PATH", f"{IMAGE_FUNCTIONS_DIR}/{folder}")


def deploy_project(project_file: Path, dashboard_url: str, image: str) -> Iterator[str]:
    import mlrun
    from mlrun.db.nopdb import NopDB

    if not os.environ.get("MLRUN_DBPATH") or isinstance(mlrun.get_run_db(), NopDB):
        raise DeployError(
            "MLRun has no API server to deploy through: MLRUN_DBPATH is not set, so MLRun would use its "
            "no-op database and silently deploy nothing. Install MLRun on the cluster (its Helm chart "
            "ships the API and Nuclio), then `export MLRUN_DBPATH=http://<mlrun-api>:8080` and run this again. "
            "To inspect what would be deployed: `triptych functions nuclio-config NAME`."
        )
    mlrun.mlconf.nuclio_dashboard_url = dashboard_url
    project = mlrun.load_project(context=str(Path(project_file).resolve().parent), url=str(project_file), save=False)
    for name, entry in project_functions(project_file).items():
        yield f"deploying {name} from {image} ..."
        fn = project.get_function(name)
        from_image(fn, image, entry["spec"]["spec"]["build"]["origin_filename"])
        address = project.deploy_function(fn).outputs.get("endpoint", "")
        yield f"deployed {name} {address}"
