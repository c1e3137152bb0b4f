"""Structured logs: every line JSON with the caller's fields, merged across
replicas in time order, filtered by function and image."""

import json
import logging
import threading

import nuclio_sdk

from triptych import logs


def record(name="triptych.infer", msg="classified", **fields):
    rec = logging.LogRecord(name, logging.INFO, __file__, 1, msg, (), None)
    for key, value in fields.items():
        setattr(rec, key, value)
    return rec


def test_a_line_carries_the_process_and_the_callers_fields():
    line = json.loads(
        logs.JsonFormatter({"function": "infer-resnet50", "replica": 1, "unset": None}).format(
            record(image_id="abc", model="resnet50", duration_ms=12.5)
        )
    )
    assert (line["function"], line["replica"], line["msg"], line["level"]) == (
        "infer-resnet50",
        1,
        "classified",
        "info",
    )
    assert (line["image_id"], line["model"], line["duration_ms"]) == ("abc", "resnet50", 12.5)
    assert "unset" not in line and line["ts"].endswith("+00:00")


def test_nuclio_logger_fields_become_line_fields(tmp_path):
    log_file = tmp_path / "f-0.jsonl"
    logs.configure("f", 0, log_file)
    try:
        nuclio_sdk.Logger(logging.INFO, "function.f").error_with("dead-lettered", offset=7, image_ids=["x"])
        logging.getLogger("triptych.ingest").info("ingested", extra={"image_id": "y", "stage": "ingest"})
    finally:
        logging.getLogger().handlers[:] = []
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [(e["msg"], e.get("offset"), e.get("image_id")) for e in lines] == [
        ("dead-lettered", 7, None),
        ("ingested", None, "y"),
    ]
    assert all(e["function"] == "f" and e["replica"] == 0 for e in lines)


def entry(ts, function, msg, **fields):
    return json.dumps(
        {
            "ts": f"2026-11-27T01:00:{ts:06.3f}+00:00",
            "level": "info",
            "logger": "l",
            "msg": msg,
            "function": function,
            "replica": 0,
            **fields,
        }
    )


def test_one_images_way_is_merged_in_time_order_across_replicas(tmp_path):
    (tmp_path / "ingest-0.jsonl").write_text(
        "\n".join([entry(1, "ingest", "ingested", image_id="img-1"), entry(2, "ingest", "ingested", image_id="img-2")])
        + "\n"
    )
    (tmp_path / "infer-resnet50-0.jsonl").write_text(
        "\n".join(
            [
                entry(4, "infer-resnet50", "classified", image_id="img-1"),
                "Traceback (most recent call last): not a JSON line",
                entry(3, "infer-resnet50", "retrying", image_ids=["img-1", "img-2"]),
            ]
        )
        + "\n"
    )
    (tmp_path / "aggregate-0.jsonl.1").write_text(entry(5, "aggregate", "compared", image_id="img-1") + "\n")
    way = logs.read_entries(logs.log_files(tmp_path), image_id="img-1")
    assert [(e["function"], e["msg"]) for e in way] == [
        ("ingest", "ingested"),
        ("infer-resnet50", "retrying"),
        ("infer-resnet50", "classified"),
        ("aggregate", "compared"),
    ]
    assert [e["msg"] for e in logs.read_entries(logs.log_files(tmp_path), function="ingest")] == ["ingested"] * 2
    assert "infer-resnet50[0]" in logs.render(way[2]) and "image_id=img-1" in logs.render(way[2])


def test_follow_yields_lines_written_after_it_started(tmp_path):
    path = tmp_path / "ingest-0.jsonl"
    path.write_text(entry(1, "ingest", "old", image_id="a") + "\n")
    stream = logs.follow_entries(tmp_path, poll_s=0.05)
    got = []
    reader = threading.Thread(target=lambda: got.append(next(stream)), daemon=True)
    reader.start()
    with open(path, "a") as handle:
        handle.write(entry(2, "ingest", "new", image_id="b") + "\n" + '{"ts": "half a line')
    reader.join(timeout=10)
    assert [e["msg"] for e in got] == ["new"]
