"""The real Nuclio processor, built from Nuclio's Go module, to prove that a
Triptych handler runs unchanged under Nuclio itself.

`go install github.com/nuclio/nuclio/cmd/processor@v1.14.2` is refused here: the
Go proxy answers 403 to the version *list* that `go install` reads for its
deprecation check, while serving the module itself. So the module is fetched
with `go mod download` and built with `go build` inside it (the same source and
the same go.sum), once, into the cache.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

from ..config import Settings
from ..errors import InstallError, ToolMissingError
from ..security.db_roles import take_declared_component

NUCLIO_MODULE = "github.com/nuclio/nuclio"
NUCLIO_VERSION = "v1.14.2"


def install_dir(settings: Settings) -> Path:
    return settings.cache_dir / f"nuclio-{NUCLIO_VERSION}"


def install_processor(settings: Settings) -> tuple[Path, Path]:
    """(processor binary, folder of the Python wrapper), built once and cached."""
    target = install_dir(settings)
    binary, wrapper_dir = target / "processor", target / "python"
    if binary.exists() and (wrapper_dir / "_nuclio_wrapper.py").exists():
        return binary, wrapper_dir
    target.parent.mkdir(parents=True, exist_ok=True)
    # Every replica of a fresh `up --runtime nuclio` asks at once: one builds, the others wait.
    with open(target.parent / f"nuclio-{NUCLIO_VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.exists() and (wrapper_dir / "_nuclio_wrapper.py").exists():
            return binary, wrapper_dir
        _build(target, binary, wrapper_dir)
    return binary, wrapper_dir


def _build(target: Path, binary: Path, wrapper_dir: Path) -> None:
    source = build_command("processor", binary)
    shutil.copytree(source / "pkg" / "processor" / "runtime" / "python" / "py", wrapper_dir, dirs_exist_ok=True)


def build_command(command: str, binary: Path) -> Path:
    """Build Nuclio's cmd/<command> into `binary`; the module's source folder (read-only)."""
    go = shutil.which("go")
    if not go:
        raise ToolMissingError(f"`go` was not found on PATH; it is needed to build Nuclio's {command}")
    proc = subprocess.run(
        [go, "mod", "download", "-json", f"{NUCLIO_MODULE}@{NUCLIO_VERSION}"], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise InstallError(f"go mod download {NUCLIO_MODULE}@{NUCLIO_VERSION} failed:\n{proc.stderr[-2000:]}")
    source = Path(json.loads(proc.stdout)["Dir"])
    binary.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "nuclio"
        shutil.copytree(source, work)  # the module cache is read-only
        os.chmod(work, 0o755)
        build = subprocess.run(
            [go, "build", "-trimpath", "-ldflags", "-s -w", "-o", str(binary), f"./cmd/{command}"],
            cwd=work,
            capture_output=True,
            text=True,
            env={**os.environ, "CGO_ENABLED": "0"},
        )
        if build.returncode != 0:
            raise InstallError(f"building Nuclio's {command} failed:\n{build.stderr[-3000:]}")
    return source


def install_controller(settings: Settings) -> Path:
    """Nuclio's controller (NuclioFunction -> Deployment, Service, HPA), built once and cached."""
    binary = install_dir(settings) / "controller"
    if not binary.exists():
        with open(install_dir(settings).parent / f"nuclio-controller-{NUCLIO_VERSION}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not binary.exists():
                build_command("controller", binary.with_suffix(".part"))
                binary.with_suffix(".part").rename(binary)
    return binary


def write_processor_configs(
    function_config: dict, folder: Path, admin_port: int, health_port: int
) -> tuple[Path, Path]:
    """processor.yaml (the function) and platform.yaml (logging, admin ports) for a local run."""
    folder.mkdir(parents=True, exist_ok=True)
    processor = folder / "processor.yaml"
    processor.write_text(yaml.safe_dump({"metadata": function_config["metadata"], "spec": function_config["spec"]}))
    platform = folder / "platform.yaml"
    platform.write_text(
        yaml.safe_dump(
            {
                "kind": "local",
                "webAdmin": {"enabled": True, "listenAddress": f"127.0.0.1:{admin_port}"},
                "healthCheck": {"enabled": True, "listenAddress": f"127.0.0.1:{health_port}"},
                "logger": {
                    "sinks": {"stdout": {"kind": "stdout"}},
                    "system": [{"level": "info", "sink": "stdout"}],
                    "functions": [{"level": "info", "sink": "stdout"}],
                },
            }
        )
    )
    return processor, platform


def processor_environment(function_config: dict, wrapper_dir: Path, python: str, module_path: Path) -> dict[str, str]:
    """The environment a Nuclio platform gives the processor's container: the
    function's env (the processor itself does not apply spec.env) plus where the
    Python wrapper, interpreter and handler module are."""
    # The caller's environment wins over the declaration's, as under the local runner.
    declared = {e["name"]: str(e["value"]) for e in function_config["spec"].get("env", [])}
    env = {**declared, **os.environ}
    take_declared_component(env, declared)
    env.update(
        {
            "NUCLIO_PYTHON_WRAPPER_PATH": str(wrapper_dir / "_nuclio_wrapper.py"),
            "NUCLIO_PYTHON_EXE_PATH": python,
            "NUCLIO_PYTHON_PATH": str(module_path),
        }
    )
    return env
