"""MinIO's build beside pip (triptych.stack.prebuild): `triptych up` waits for a
build `make install` has under way instead of starting a second one, and says how
far it is; a failed build names its log and shows its last lines."""

from __future__ import annotations

import fcntl
import os
import stat

import pytest

from triptych.errors import InstallError
from triptych.stack import prebuild


def test_a_second_build_waits_for_the_first_and_reports_its_progress(tmp_path, monkeypatch):
    monkeypatch.setattr(prebuild, "REPORT_EVERY_S", 0.01)
    binary = prebuild.minio_binary(tmp_path, "v1")
    binary.parent.mkdir(parents=True)
    (binary.parent / "build.log").write_text(
        "go: downloading github.com/minio/minio v1\ngithub.com/a/b\ngithub.com/c/d\n"
    )
    first = open(tmp_path / "minio-v1.lock", "w")  # the build `make install` started
    fcntl.flock(first, fcntl.LOCK_EX)
    reports = []

    def report(message: str) -> None:
        reports.append(message)
        if len(reports) == 3:  # the first build finishes
            binary.write_text("built")
            first.close()

    monkeypatch.setenv("PATH", "")  # no Go: the waiter must not build
    assert prebuild.build_minio(tmp_path, "v1", report) == binary
    assert len(reports) == 3
    assert "waiting for the MinIO build" in reports[0] and "2 packages compiled" in reports[0]


def test_a_failed_build_names_its_log_and_shows_the_end_of_it(tmp_path, monkeypatch):
    tools = tmp_path / "bin"
    tools.mkdir()
    go = tools / "go"
    go.write_text("#!/bin/sh\necho github.com/minio/minio/cmd\necho 'cmd/x.go:1: undefined: y' >&2\nexit 2\n")
    go.chmod(go.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")
    reports = []
    with pytest.raises(InstallError, match=r"(?s)exit 2.*build\.log.*undefined: y"):
        prebuild.build_minio(tmp_path / "cache", "v2", reports.append)
    assert reports and reports[0].startswith("building MinIO from source")
    assert not prebuild.minio_binary(tmp_path / "cache", "v2").exists()
