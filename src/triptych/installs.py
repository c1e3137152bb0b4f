"""Where Triptych caches what it installs, shared by every stack on the machine, and
the pinned version of what it builds from source. Standard library only:
`triptych.stack.prebuild` runs it before the Python packages are installed."""

from __future__ import annotations

import os
from pathlib import Path

# The pinned MinIO: a commit of its Go module (MinIO publishes no tagged module versions).
MINIO_VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"


def default_cache_dir() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) / "triptych" if xdg else Path.home() / ".cache" / "triptych"
