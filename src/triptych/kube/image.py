"""Building the one Triptych image (infra/image/Containerfile) without a Docker engine.

`triptych image build` stages the build context (the package, the dashboard, the
function folders, project.yaml, and the Nuclio processor with its Python wrapper,
built from Nuclio's Go module by `runtime.nuclio_processor`), then builds with
buildah (daemonless, chroot isolation, on a container store of its own under the cache:
what works without a daemon), else podman or docker. Where the Containerfile's default base
(the official python:3.11-slim-bookworm) cannot be pulled, `debootstrap=True` makes
an equivalent base from Debian's own packages (bookworm, python3.11, python3-venv)
and builds on that. The dependency layer is cached by the builder (`--layers`), so
a rebuild after a code change takes seconds plus one copy of the layers.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..config import REPO_ROOT, Settings
from ..errors import InstallError, ToolMissingError
from ..runtime.nuclio_processor import install_processor
from ..stack.services.base import apt_install

CONTAINERFILE = REPO_ROOT / "infra" / "image" / "Containerfile"
DEFAULT_TAG = "localhost/triptych:dev"
DEBOOTSTRAP_BASE = "localhost/triptych-base:bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# Triptych's two images (infra/image/Containerfile's ROLE): serving runs everything
# but training and Grad-CAM, without torch; training is the same plus torch and MLRun.
# The third, mlflow, is MLflow's tracking server alone (infra/image/mlflow.Containerfile).
ROLES = ("serving", "training", "mlflow")
MLFLOW_CONTAINERFILE = REPO_ROOT / "infra" / "image" / "mlflow.Containerfile"
# Dependencies only training and Grad-CAM import (torch lazily everywhere else), and
# MLRun, whose client only the workflow and the deploy commands use.
TRAINING_ONLY = frozenset({"torch", "torchvision", "grad-cam", "mlrun", "nuclio-jupyter"})
# The serving image's extra: Nuclio's Python wrapper speaks msgpack to the processor.
SERVING_EXTRAS = ("msgpack==1.0.8",)
# Serving only reads and writes the registry: MLflow's client (mlflow-skinny) without
# the server's 280 MB (pyarrow, scikit-learn, matplotlib, SQLAlchemy, Flask). The
# tracking server runs from an image of its own (role `mlflow`).
SERVING_SWAPS = {"mlflow": "mlflow-skinny"}
# What the context holds, relative to the checkout (and nothing else: no venv, no data).
CONTEXT_PATHS = (
    "pyproject.toml",
    "README.md",
    "requirements/constraints.txt",
    "project.yaml",
    "src/triptych",
    "dash_app",
    "functions",
)
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "tests")


def _overlay_works() -> bool:
    # overlay stores each layer once; vfs copies every layer into every container and
    # image (a 9 GB dependency layer became 30 GB), so it is only the fallback.
    return os.geteuid() == 0 and "overlay" in Path("/proc/filesystems").read_text()


def _answers(tool: str) -> bool:
    """The tool is installed and can build: `info` reaches its engine (podman needs none)."""
    if not shutil.which(tool):
        return False
    try:
        return subprocess.run([tool, "info"], capture_output=True, timeout=30).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def builder(settings: Settings | None = None) -> list[str]:
    """The build tool's argv prefix: buildah on a store of our own under the cache
    (overlay as root, else vfs), else podman, else docker."""
    if not shutil.which("buildah") and not any(_answers(tool) for tool in ("podman", "docker")):
        # A docker client without an engine (these machines have one) cannot build.
        apt_install(["buildah"], "buildah (it builds the image without a daemon)", "install podman or docker")
    if shutil.which("buildah"):
        settings = settings or Settings()
        driver = "overlay" if _overlay_works() else "vfs"
        return [
            "buildah",
            "--root",
            str(settings.cache_dir / "containers" / driver),
            "--runroot",
            str(Path(tempfile.gettempdir()) / f"triptych-containers-{os.geteuid()}"),
            "--storage-driver",
            driver,
        ]
    for tool in ("podman", "docker"):
        if _answers(tool):
            return [tool]
    raise ToolMissingError("No image builder found: install buildah (`apt-get install buildah`), podman or docker.")


def _requirement_name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].strip().lower()


def serving_requirements() -> list[str]:
    """pyproject.toml's dependencies less TRAINING_ONLY, plus the processor's extra."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    kept = [
        SERVING_SWAPS.get(_requirement_name(r), r)
        for r in project["dependencies"]
        if _requirement_name(r) not in TRAINING_ONLY
    ]
    return kept + list(SERVING_EXTRAS)


def role_tag(role: str, tag: str = "dev") -> str:
    if role not in ROLES:
        raise ValueError(f"an image role is one of {ROLES}, not {role!r}")
    return f"localhost/triptych/{role}:{tag}"


def stage_context(settings: Settings, dest: Path) -> Path:
    """The build context under `dest`: the listed files, and the processor with its wrapper."""
    for relative in CONTEXT_PATHS:
        source = REPO_ROOT / relative
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=_IGNORED)
        else:
            shutil.copy2(source, target)
    (dest / "requirements" / "serving.txt").write_text("\n".join(serving_requirements()) + "\n")
    processor, wrapper_dir = install_processor(settings)
    (dest / "nuclio").mkdir()
    shutil.copy2(processor, dest / "nuclio" / "processor")
    shutil.copytree(wrapper_dir, dest / "nuclio" / "python", ignore=shutil.ignore_patterns("test_*", "requirements"))
    shutil.copy2(CONTAINERFILE, dest / "Containerfile")
    return dest


def _run(argv: list[str], what: str, **kwargs) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
        raise InstallError(f"{what} failed (exit {proc.returncode}): {' '.join(argv[:6])} ...\n{tail}")
    return proc.stdout


def pip_ca_bundle() -> str:
    """The CA bundle pip on this host trusts (a TLS-intercepting proxy's CA included)."""
    for candidate in (
        os.environ.get("PIP_CERT"),
        os.environ.get("SSL_CERT_FILE"),
        "/etc/ssl/certs/ca-certificates.crt",
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    raise ToolMissingError("No CA bundle found for pip inside the build: set PIP_CERT to one.")


def image_exists(settings: Settings, tag: str) -> bool:
    tool = builder(settings)
    argv = [*tool, "inspect", "--type", "image", tag] if tool[0] == "buildah" else [*tool, "image", "inspect", tag]
    return subprocess.run(argv, capture_output=True).returncode == 0


def debootstrap_base(settings: Settings, tag: str = DEBOOTSTRAP_BASE, mirror: str = DEBIAN_MIRROR) -> str:
    """A Debian bookworm base with Python 3.11 and venv, from Debian's packages (cached as `tag`)."""
    if image_exists(settings, tag):
        return tag
    if not shutil.which("debootstrap"):
        apt_install(["debootstrap"], "debootstrap", "build on the official python:3.11-slim-bookworm base instead")
    buildah = builder(settings)
    if buildah[0] != "buildah":
        raise ToolMissingError("Importing a debootstrap base needs buildah (`apt-get install buildah`).")
    with tempfile.TemporaryDirectory(prefix="triptych-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3,python3-venv,ca-certificates",
                "bookworm",
                str(rootfs),
                mirror,
            ],
            "debootstrap of Debian bookworm",
        )
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (rootfs / cache).glob("*"):
                if entry.is_file():
                    entry.unlink()
        container = _run([*buildah, "from", "scratch"], "buildah from scratch").strip()
        try:
            _run([*buildah, "copy", container, f"{rootfs}/", "/"], "copying the root filesystem")
            _run(
                [*buildah, "config", "--env", "PATH=/usr/local/bin:/usr/bin:/bin", "--cmd", "/bin/bash", container],
                "buildah config",
            )
            _run([*buildah, "commit", "--rm", container, tag], "buildah commit")
        except InstallError:
            subprocess.run([*buildah, "rm", container], capture_output=True)
            raise
    return tag


def build_image(
    settings: Settings,
    tag: str = DEFAULT_TAG,
    base: str | None = None,
    debootstrap: bool = False,
    role: str = "training",
) -> str:
    """Build the image of `role` as `tag` and return the tag. `base` overrides the
    Containerfile's BASE; `debootstrap` makes (once) and uses a base from Debian's packages."""
    if role not in ROLES:
        raise ValueError(f"an image role is one of {ROLES}, not {role!r}")
    with tempfile.TemporaryDirectory(prefix="triptych-image-") as tmp:
        if role == "mlflow":  # the server needs nothing of the checkout but the pins
            context = Path(tmp) / "context"
            (context / "requirements").mkdir(parents=True)
            shutil.copy2(REPO_ROOT / "requirements" / "constraints.txt", context / "requirements")
            shutil.copy2(MLFLOW_CONTAINERFILE, context / "Containerfile")
        else:
            context = stage_context(settings, Path(tmp) / "context")
        return build_context(settings, context, tag, base=base, debootstrap=debootstrap, build_args={"ROLE": role})


def build_context(
    settings: Settings,
    context: Path,
    tag: str,
    base: str | None = None,
    debootstrap: bool = False,
    build_args: dict[str, str] | None = None,
) -> str:
    """Build `context`/Containerfile as `tag`, layers cached by the builder."""
    if debootstrap:
        base = debootstrap_base(settings)
    tool = builder(settings)
    previous = _image_id(settings, tag)
    argv = [
        *tool,
        "build" if tool[0] != "buildah" else "bud",
        "--layers",
        "-f",
        str(context / "Containerfile"),
        "-t",
        tag,
    ]
    if tool[0] == "buildah":
        argv += ["--isolation", "chroot", "--pull-never" if base and base.startswith("localhost/") else "--pull"]
    if base:
        argv += ["--build-arg", f"BASE={base}"]
    for key, value in (build_args or {}).items():
        argv += ["--build-arg", f"{key}={value}"]
    argv += ["--secret", f"id=pip-ca,src={pip_ca_bundle()}"]
    _run([*argv, str(context)], f"building {tag}", env={**os.environ, "BUILDAH_LAYERS": "true"})
    if previous and previous != _image_id(settings, tag):
        # The tag moved: drop the image it left (its code layer); the cached dependency layer stays.
        subprocess.run([*tool, "rmi", previous], capture_output=True)
    return tag


def _image_id(settings: Settings, tag: str) -> str | None:
    tool = builder(settings)
    argv = (
        [*tool, "inspect", "--type", "image", "--format", "{{.FromImageID}}", tag]
        if tool[0] == "buildah"
        else [*tool, "image", "inspect", "--format", "{{.Id}}", tag]
    )
    proc = subprocess.run(argv, capture_output=True, text=True)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def image_env(settings: Settings, tag: str) -> list[str]:
    """The image's ENV (`NAME=value` each), which a container runtime starts its processes with."""
    tool = builder(settings)
    if tool[0] != "buildah":
        raise ToolMissingError("Reading the image's config here needs buildah.")
    config = json.loads(_run([*tool, "inspect", "--type", "image", tag], f"inspecting {tag}"))
    return config["OCIv1"]["config"].get("Env", [])


@contextmanager
def mounted_rootfs(settings: Settings, tag: str) -> Iterator[Path]:
    """The image's root filesystem, mounted read-write in a throwaway buildah container."""
    buildah = builder(settings)
    if buildah[0] != "buildah":
        raise ToolMissingError("Mounting an image's root filesystem needs buildah.")
    container = _run([*buildah, "from", "--pull-never", tag], f"buildah from {tag}").strip()
    try:
        yield Path(_run([*buildah, "mount", container], f"buildah mount {container}").strip())
    finally:
        subprocess.run([*buildah, "umount", container], capture_output=True)
        subprocess.run([*buildah, "rm", container], capture_output=True)
