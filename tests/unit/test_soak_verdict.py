"""The soak's verdict from its samples: slopes, growth, drift, losses."""

import pytest
import typer

from triptych.benchmark.soak import _verdict, du_mb, markdown, slope_per_hour
from triptych.cli.bench_command import parse_soak


def sample(t_s, rss, disk, p95, fds=50):
    return {
        "t_s": t_s,
        "sent": 0,
        "compared": 0,
        "lag": 0,
        "latency_p50_ms": p95 / 2,
        "latency_p95_ms": p95,
        "latency_n": 10,
        "processes": {"ingest[0]": {"rss_mb": rss + 100, "uss_mb": rss, "fds": fds, "threads": 9}},
        "disk_mb": {"kafka": disk},
    }


def test_a_process_that_leaks_2_mb_a_minute_shows_120_mb_an_hour_and_a_flat_one_zero():
    leaking = [sample(60 * k, 300 + 2 * k, 10, 100) for k in range(1, 31)]
    assert slope_per_hour(
        [s["t_s"] for s in leaking], [s["processes"]["ingest[0]"]["uss_mb"] for s in leaking]
    ) == pytest.approx(120)
    assert slope_per_hour([0, 60, 120], [5, 5, 5]) == pytest.approx(0)
    assert slope_per_hour([0, 60], [5, 6]) is None  # two points are not a trend


def test_the_verdict_fits_memory_after_warm_up_and_counts_losses_and_doubles():
    # The first 20 % (warm-up) climbs fast, then it is flat: the fit must ignore the climb.
    samples = [
        sample(60 * k, 200 + (20 * k if k < 6 else 120), 100 + 5 * k, 100 if k <= 5 else 150, fds=40 + k)
        for k in range(1, 31)
    ]
    v = _verdict(samples, 0, sent=1000, tally={"compared": 998, "comparisons": 1001}, registered=1000, duration_s=1800)
    assert v["memory_slope_mb_per_hour"]["ingest[0]"] == pytest.approx(0, abs=1e-9)
    assert v["disk_growth_mb_per_hour"]["kafka"] == pytest.approx(300)  # 5 MB a minute
    assert v["lost"] == 2 and v["duplicated"] == 3
    assert v["latency_p95_drift"] == pytest.approx(1.5)
    assert v["fds_growth"]["ingest[0]"] == 30 - 6
    assert "ingest[0]" in markdown(
        {"tag": "t", "duration_s": 1800, "offered_per_s": 4, "load": 0.8, "sustainable_per_s": 5, "verdict": v}
    )


def test_du_counts_the_bytes_of_files_below_a_folder(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x").write_bytes(b"0" * 2**20)
    (tmp_path / "y").write_bytes(b"0" * 2**19)
    assert du_mb(tmp_path) == pytest.approx(1.5)
    assert du_mb(tmp_path / "missing") == 0


@pytest.mark.parametrize("text, seconds", [("30m", 1800), ("2h", 7200), ("90s", 90), ("1.5h", 5400)])
def test_soak_durations_parse(text, seconds):
    assert parse_soak(text) == seconds


@pytest.mark.parametrize("text", ["30", "m", "-5m", "0h", "2d", ""])
def test_bad_soak_durations_are_refused_with_a_clear_error(text):
    with pytest.raises(typer.BadParameter):
        parse_soak(text)


def test_du_skips_what_a_server_deletes_while_it_walks(tmp_path, monkeypatch):
    import os

    (tmp_path / "kept").write_bytes(b"0" * 2**20)
    (tmp_path / "gone").write_bytes(b"0" * 2**20)
    real = os.lstat

    def vanishing(path, *args, **kwargs):  # MinIO removed it between the listing and the stat
        if str(path).endswith("gone"):
            raise FileNotFoundError(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "lstat", vanishing)
    assert du_mb(tmp_path) == pytest.approx(1.0)
