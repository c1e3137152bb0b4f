"""MinIO, compiled from its Go module while pip installs the Python packages.

On a fresh 2-core machine `go install` of MinIO takes several minutes, and pip as
many. `make install` starts this module in the background with the system Python
before pip begins (`python3 -m triptych.stack.prebuild`), so both run at once.
It uses the standard library only: the virtual environment is still empty then.

`triptych up` (`MinIO.install`) calls the same `build_minio`. A lock makes it wait
for a build already under way instead of starting a second one. Whoever waits
reports progress from the build's log ("412 packages compiled, 3m10s"), so the
first `triptych up` is never minutes of silence.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import InstallError, ToolMissingError
from ..installs import MINIO_VERSION, default_cache_dir

REPORT_EVERY_S = 5.0

Report = Callable[[str], None]


def quiet(_message: str) -> None:
    pass


def minio_binary(cache_dir: Path, version: str = MINIO_VERSION) -> Path:
    return cache_dir / f"minio-{version}" / "minio"


def _progress(log: Path, started: float) -> str:
    """What the build's log says so far: `go install -v` names each package it compiles."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        lines = []
    compiled = sum(1 for line in lines if line and not line.startswith("go: "))
    elapsed = int(time.time() - started)
    step = f"{compiled} packages compiled" if compiled else "downloading its Go modules"
    return f"building MinIO from source, once: {step}, {elapsed // 60}m{elapsed % 60:02d}s (5-10 min on 2 cores)"


def build_minio(cache_dir: Path, version: str = MINIO_VERSION, report: Report = quiet) -> Path:
    """The MinIO binary of `version`, built with `go install` unless it is there;
    waits for a build another process has under way. Raises InstallError with the
    build's last lines when it fails."""
    binary = minio_binary(cache_dir, version)
    if binary.exists():
        return binary
    binary.parent.mkdir(parents=True, exist_ok=True)
    log = binary.parent / "build.log"
    with open(cache_dir / f"minio-{version}.lock", "w") as lock:
        if not _try_lock(lock):
            started = log.stat().st_mtime if log.exists() else time.time()
            while not _try_lock(lock):
                report("waiting for the MinIO build `make install` started: " + _progress(log, started))
                time.sleep(REPORT_EVERY_S)
        if binary.exists():  # the build we waited for made it
            return binary
        go = shutil.which("go")
        if go is None:
            raise ToolMissingError(
                "Go 1.24 or newer is needed to build MinIO with `go install`: install it "
                "(https://go.dev/dl or `apt-get install golang`), or point TRIPTYCH_S3_URL "
                "at an S3 server you run."
            )
        started = time.time()
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [go, "install", "-v", f"github.com/minio/minio@{version}"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "GOBIN": str(binary.parent), "CGO_ENABLED": "0"},
            )
            while True:  # said at least once, however fast the build ends (a failure can take milliseconds)
                report(_progress(log, started))
                try:
                    proc.wait(REPORT_EVERY_S)
                    break
                except subprocess.TimeoutExpired:
                    pass
        if proc.returncode != 0 or not binary.exists():
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
            raise InstallError(
                f"Building MinIO {version} with go install failed (exit {proc.returncode}); "
                f"the whole log is {log}:\n{tail}"
            )
        return binary


def _try_lock(lock) -> bool:
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def main() -> int:
    """Build MinIO into the cache, quietly; `triptych up` reports what went wrong, if anything."""
    cache_dir = Path(os.environ.get("TRIPTYCH_CACHE_DIR", default_cache_dir()))
    version = os.environ.get("TRIPTYCH_MINIO_VERSION", MINIO_VERSION)
    if minio_binary(cache_dir, version).exists() or shutil.which("go") is None:
        return 0
    try:
        build_minio(cache_dir, version)
    except InstallError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
