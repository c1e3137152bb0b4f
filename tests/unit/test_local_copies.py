"""The machine's model cache: one copy per version, complete or absent, bounded."""

import os
import threading

import pytest

from triptych.models import local_copies
from triptych.models.card import CARD_FILE


def fetcher(calls: list, fail: bool = False):
    def fetch(staging):
        calls.append(staging)
        folder = staging / "model"
        folder.mkdir()
        (folder / "weights.pt").write_bytes(b"w" * 1000)
        if fail:
            raise RuntimeError("registry went away mid-download")
        (folder / CARD_FILE).write_text("{}")

    return fetch


def test_a_version_is_fetched_once_and_served_from_disk_after(tmp_path):
    calls = []
    first = local_copies.local_copy(tmp_path, "v1-abc", fetcher(calls))
    again = local_copies.local_copy(tmp_path, "v1-abc", fetcher(calls))
    assert first == again == tmp_path / "v1-abc" / "model"
    assert len(calls) == 1
    assert (first / "weights.pt").stat().st_size == 1000


def test_restarts_and_swaps_leave_a_bounded_number_of_copies(tmp_path):
    calls = []
    for version in range(1, 9):  # eight hot swaps
        local_copies.local_copy(tmp_path, f"v{version}-abc", fetcher(calls), keep=3)
    for _restart in range(5):  # each replica restart asks again for what it serves
        local_copies.local_copy(tmp_path, "v8-abc", fetcher(calls), keep=3)
    local_copies.local_copy(tmp_path, "v6-abc", fetcher(calls), keep=3)  # a rollback to a kept version
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v6-abc", "v7-abc", "v8-abc"]
    assert len(calls) == 8


def test_a_failed_download_leaves_nothing_that_looks_complete(tmp_path):
    with pytest.raises(RuntimeError):
        local_copies.local_copy(tmp_path, "v1-abc", fetcher([], fail=True))
    assert list(tmp_path.iterdir()) == []
    calls = []
    assert (local_copies.local_copy(tmp_path, "v1-abc", fetcher(calls)) / CARD_FILE).exists()
    assert len(calls) == 1


def test_two_replicas_fetching_one_version_at_once_end_with_one_copy(tmp_path):
    gate = threading.Barrier(2)
    calls, results = [], []

    def slow(staging):
        gate.wait(timeout=10)  # both are mid-download before either renames
        fetcher(calls)(staging)

    threads = [
        threading.Thread(target=lambda: results.append(local_copies.local_copy(tmp_path, "v2-abc", slow)))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(calls) == 2 and results == [tmp_path / "v2-abc" / "model"] * 2
    assert [p.name for p in tmp_path.iterdir()] == ["v2-abc"]


def test_staging_left_by_a_killed_replica_is_removed_after_an_hour(tmp_path):
    dead = tmp_path / ".v3-abc-x1"
    dead.mkdir()
    fresh = tmp_path / ".v4-abc-x2"  # maybe a live download by another replica
    fresh.mkdir()
    old = dead.stat().st_mtime - 2 * local_copies.STALE_STAGING_S
    os.utime(dead, (old, old))
    assert local_copies.reap(tmp_path) == [dead]
    assert fresh.exists()


def test_keys_differ_for_the_same_version_number_from_two_registries():
    assert local_copies.key_for("1", "mlflow-artifacts:/1/aaa/artifacts/model") != local_copies.key_for(
        "1", "mlflow-artifacts:/7/bbb/artifacts/model"
    )


def test_a_copy_that_lacks_a_file_added_to_the_version_since_is_fetched_again(tmp_path):
    calls = []
    local_copies.local_copy(tmp_path, "v1-abc", fetcher(calls))

    def with_int8(staging):
        fetcher(calls)(staging)
        (staging / "model" / "model.int8.onnx").write_bytes(b"q")

    folder = local_copies.local_copy(tmp_path, "v1-abc", with_int8, require=("model.int8.onnx",))
    assert (folder / "model.int8.onnx").exists() and len(calls) == 2
    again = local_copies.local_copy(tmp_path, "v1-abc", with_int8, require=("model.int8.onnx",))
    assert again == folder and len(calls) == 2  # now complete: not fetched a third time
    assert [p.name for p in tmp_path.iterdir()] == ["v1-abc"]  # the stale copy is gone
