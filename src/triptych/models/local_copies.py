"""Model versions kept on local disk, once per version, for the replicas that serve them.

Every replica start, restart and hot swap needs a version's files (up to 180 MB).
They used to go to a fresh temporary folder each time that nobody removed; a
day of restarts filled the disk. Now they live under
`cache_dir/models/<model>/<key>`, where the key names the version and the
artifact it came from (two stacks on one machine each have a "version 1").

- A download goes to a hidden staging folder and is renamed into place, so a
  replica killed mid-download leaves no half copy that another would trust,
  and two replicas fetching one version at once end with one complete copy.
- Each use touches the copy; only the `keep` most recently used per model stay.
  A version being loaded was just touched, so it is never the one removed.
- Staging folders older than an hour are from replicas that died; they go too.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from .card import CARD_FILE

KEEP_PER_MODEL = 4
STALE_STAGING_S = 3600.0


def key_for(version: str, source: str) -> str:
    """A folder name for one version of one registry's artifact."""
    return f"v{version}-{hashlib.sha1(source.encode()).hexdigest()[:12]}"


def _model_folder(copy: Path) -> Path:
    """The folder holding the card inside a copy (the artifact may nest it)."""
    return next(copy.rglob(CARD_FILE)).parent


def local_copy(
    root: Path, key: str, fetch: Callable[[Path], object], keep: int = KEEP_PER_MODEL, require: tuple[str, ...] = ()
) -> Path:
    """The model folder for `key` under `root`, fetching it with `fetch(staging)` if absent,
    or if it lacks a `require`d file (added to the version after this copy was made)."""
    final = root / key
    if final.is_dir() and any(not (_model_folder(final) / name).exists() for name in require):
        stale = root / f".{key}-stale-{time.time_ns()}"
        try:
            os.rename(final, stale)  # out of the way at once; a replica loading from it keeps its open files
        except OSError:
            pass  # another replica moved it first
        shutil.rmtree(stale, ignore_errors=True)
    if not final.is_dir():
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
        try:
            fetch(staging)
            os.rename(staging, final)
        except OSError:
            if not final.is_dir():  # not "another replica got there first": a real failure
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    used_ns = time.time_ns()  # explicit: the kernel's own stamp is too coarse to order quick swaps
    os.utime(final, ns=(used_ns, used_ns))
    folder = _model_folder(final)
    reap(root, keep, in_use=final)
    return folder


def reap(root: Path, keep: int = KEEP_PER_MODEL, now: float | None = None, in_use: Path | None = None) -> list[Path]:
    """Remove all but the `keep` most recently used copies (never `in_use`), and dead staging folders."""
    now = time.time() if now is None else now
    removed: list[Path] = []
    copies: list[tuple[float, Path]] = []
    for entry in root.iterdir():
        try:
            mtime = entry.stat().st_mtime_ns / 1e9
        except FileNotFoundError:  # another replica reaped it a moment ago
            continue
        if entry.name.startswith("."):
            if now - mtime > STALE_STAGING_S:
                removed.append(entry)
        elif entry.is_dir() and entry != in_use:
            copies.append((mtime, entry))
    copies.sort(reverse=True)
    removed += [path for _, path in copies[max(keep - (in_use is not None), 0) :]]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed
