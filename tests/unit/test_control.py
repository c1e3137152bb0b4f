"""The supervisor's control file has one writer, `control.update_desired`, a locked
read-modify-write: concurrent writers (threads and processes) lose no change.

Each writer is slowed between its read and its write, so that the writers overlap
for certain; the same writers without the lock (how the benchmark and the cluster
manager wrote the file before) lose changes under exactly these conditions."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

import pytest

from triptych import control
from triptych.config import Settings

WRITERS = 8
SLOW_S = 0.05


def _settings(folder: Path) -> Settings:
    return Settings(_env_file=None, data_dir=folder)


def _slowly_pin(function: str, replicas: int):
    def change(pins):
        time.sleep(SLOW_S)  # read ... a while ... write: every writer overlaps the others
        pins[function] = replicas
        return pins

    return change


def _locked_writer(folder: str, index: int, start: float) -> None:
    time.sleep(max(0.0, start - time.time()))
    control.update_desired(_settings(Path(folder)), _slowly_pin(f"fn{index}", index))


def _unlocked_writer(folder: str, index: int, start: float) -> None:
    settings = _settings(Path(folder))
    time.sleep(max(0.0, start - time.time()))
    pins = control.read_desired(settings)
    pins = _slowly_pin(f"fn{index}", index)(pins)
    control.write_json_atomically(control.desired_path(settings), pins)


def _run_threads(writer, folder: Path) -> dict:
    start = time.time() + 0.2
    threads = [threading.Thread(target=writer, args=(str(folder), i, start)) for i in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return control.read_desired(_settings(folder))


def _run_processes(writer, folder: Path) -> dict:
    context = multiprocessing.get_context("spawn")
    start = time.time() + 3.0  # spawned interpreters take a moment to import
    procs = [context.Process(target=writer, args=(str(folder), i, start)) for i in range(WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    return control.read_desired(_settings(folder))


@pytest.mark.parametrize("run", [_run_threads, _run_processes], ids=["threads", "processes"])
def test_concurrent_writers_lose_no_change_through_the_lock(run, tmp_path):
    assert run(_locked_writer, tmp_path) == {f"fn{i}": i for i in range(WRITERS)}


@pytest.mark.parametrize("run", [_run_threads, _run_processes], ids=["threads", "processes"])
def test_the_same_writers_without_the_lock_lose_changes(run, tmp_path):
    """What the test above guards against really happens here: it is no check that cannot fail."""
    assert len(run(_unlocked_writer, tmp_path)) < WRITERS


def test_pins_are_checked_and_replace_removes_the_file(tmp_path):
    settings = _settings(tmp_path)
    control.set_desired_replicas(settings, "ingest", 2)
    control.set_desired_replicas(settings, "aggregate", control.AUTO)
    assert control.read_desired(settings) == {"ingest": 2, "aggregate": "auto"}
    control.set_desired_replicas(settings, "ingest", None)
    assert control.read_desired(settings) == {"aggregate": "auto"}
    for bad in (-1, "many", 1.5, True):
        with pytest.raises(ValueError):
            control.set_desired_replicas(settings, "ingest", bad)
        with pytest.raises(ValueError):
            control.replace_desired(settings, {"ingest": bad})
    control.replace_desired(settings, None)
    assert not control.desired_path(settings).exists() and control.read_desired(settings) == {}
