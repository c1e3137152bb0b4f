"""`triptych chaos`: a labelled stream through bucket drops and HTTP uploads while
the seeded schedule's faults come and go on the cluster; then everything healed, a
drain, and the checker's verdict. The schedule, the history and the verdict are
written as `chaos-<stamp>.json` (replayable with `--replay`), with an HTML report."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cluster.manager import Cluster
from ..config import Settings
from ..datasets.sources import Item, synthetic_items
from ..db.connection import Database
from ..ingress.producers import BucketWriter
from ..ingress.upload_client import UploadUnavailable, upload_batch
from ..security.keys import create_key
from .checker import ImageRecord, Verdict, check
from .nemesis import inject
from .report import html_report
from .schedule import Fault, from_dicts, overlapping, plan

PUT_RETRY_S = 120.0  # a put that fails (MinIO nodes down, a worker dead) is tried again this long
HTTP_SHARE = 0.25  # of the images, sent as HTTP uploads rather than bucket drops
HEAL_TRIES = 3
SAMPLE_EVERY_S = 5.0


@dataclass
class History:
    """What the run did, in seconds after its start."""

    started: float
    put: dict[str, float] = field(default_factory=dict)  # "key:<object key>" or "id:<image id>" -> acknowledged
    refused: list[str] = field(default_factory=list)  # puts that never succeeded (not the pipeline's to lose)
    faults: list[dict[str, Any]] = field(default_factory=list)  # what was injected and healed, when
    samples: list[dict[str, Any]] = field(default_factory=list)  # throughput and p95 over time


def _retrying(what: Callable[[], str | None], stop: threading.Event) -> str | None:
    deadline = time.monotonic() + PUT_RETRY_S
    delay = 0.5
    while time.monotonic() < deadline and not stop.is_set():
        try:
            return what()
        except (OSError, UploadUnavailable, RuntimeError, ValueError):
            time.sleep(delay)
            delay = min(delay * 2, 8.0)
    return None


class Workload:
    """A labelled stream at `rate` images/s: bucket drops, and a share as HTTP uploads
    to whichever worker's upload function answers."""

    def __init__(self, client: Settings, upload_urls: list[str], key: str, rate: float, history: History, seed: int):
        self.writer, self.urls, self.key, self.rate = BucketWriter(client, "synthetic"), upload_urls, key, rate
        self.history, self.rng = history, random.Random(seed)
        self.stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def _send(self, index: int, item: Item) -> None:
        name = f"chaos-{index:06d}.png"
        if self.urls and self.rng.random() < HTTP_SHARE:

            def http() -> str | None:
                url = self.urls[index % len(self.urls)] if self.rng.random() < 0.8 else self.rng.choice(self.urls)
                reply = upload_batch(url, [(name, item.data)], [item.label], api_key=self.key, timeout=30)
                result = reply["results"][0]
                if result["status"] == "rejected":
                    raise ValueError(result["error"])
                return f"id:{result['image_id']}"

            ref = _retrying(http, self.stop)
        else:
            ref = _retrying(lambda: "key:" + self.writer.put(Item(name, item.data, item.label, item.client)), self.stop)
        with self._lock:
            if ref is None:
                self.history.refused.append(name)
            else:
                self.history.put[ref] = time.time() - self.history.started

    def _run(self) -> None:
        interval = 1 / self.rate
        next_at = time.monotonic()
        for index, item in enumerate(synthetic_items("test", 50_000 + self.rng.randrange(10**6))):
            if self.stop.is_set():
                return
            # Each put in its own thread: a put stuck behind a fault does not hold the stream back.
            thread = threading.Thread(target=self._send, args=(index, item), daemon=True)
            thread.start()
            self._threads.append(thread)
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))

    def start(self) -> None:
        self._runner = threading.Thread(target=self._run, name="chaos-stream", daemon=True)
        self._runner.start()

    def finish(self) -> None:
        self.stop.set()
        self._runner.join()
        for thread in self._threads:
            thread.join(PUT_RETRY_S + 30)


def _records(db: Database, refs: list[str], models: list[str], started: float) -> dict[str, ImageRecord]:
    """What PostgreSQL holds for each reference put: its image rows, comparisons and champions' predictions."""
    keys = [r[4:] for r in refs if r.startswith("key:")]
    ids = [r[3:] for r in refs if r.startswith("id:")]

    def read(cur) -> tuple[list[Any], list[Any], list[Any]]:
        cur.execute(
            "SELECT 'key:' || object_key AS ref, image_id::text AS image_id FROM images WHERE object_key = ANY(%s) "
            "UNION ALL SELECT 'id:' || image_id::text, image_id::text FROM images WHERE image_id = ANY(%s::uuid[])",
            (keys, ids),
        )
        images = list(cur.fetchall())
        found = sorted({row["image_id"] for row in images})
        cur.execute(
            "SELECT image_id::text AS image_id, count(*) AS n, extract(epoch FROM max(created_at)) AS at "
            "FROM model_comparisons WHERE image_id = ANY(%s::uuid[]) GROUP BY image_id",
            (found,),
        )
        comparisons = list(cur.fetchall())
        cur.execute(
            "SELECT image_id::text AS image_id, model_name, count(*) AS n, count(DISTINCT model_version) AS versions "
            "FROM predictions WHERE image_id = ANY(%s::uuid[]) AND role = 'champion' GROUP BY image_id, model_name",
            (found,),
        )
        return images, comparisons, list(cur.fetchall())

    images, comparisons, predictions = db.transaction(read)
    by_ref: dict[str, list[str]] = {}
    for row in images:
        by_ref.setdefault(row["ref"], []).append(row["image_id"])
    compared = {row["image_id"]: row for row in comparisons}
    answers: dict[str, dict[str, tuple[int, int]]] = {}
    for row in predictions:
        answers.setdefault(row["image_id"], {})[row["model_name"]] = (int(row["n"]), int(row["versions"]))
    records = {}
    for ref, image_ids in by_ref.items():
        image_id = image_ids[0]
        comparison = compared.get(image_id)
        per_model = answers.get(image_id, {})
        records[ref] = ImageRecord(
            ref,
            len(image_ids),
            int(comparison["n"]) if comparison else 0,
            {m: n for m, (n, _) in per_model.items() if m in models},
            {m: v for m, (_, v) in per_model.items()},
            float(comparison["at"]) - started if comparison else None,
        )
    return records


def _answers(url: str) -> bool:
    """Whether anything answers HTTP there (the upload function, whatever the path says)."""
    import httpx2 as httpx

    try:
        httpx.get(url, timeout=3)
        return True
    except httpx.HTTPError:
        return False


def _dead_letters(db: Database, started: float) -> int:
    return db.transaction(
        lambda cur: (
            cur.execute(
                "SELECT count(*) AS n FROM system_events WHERE event_type = 'dead_letter' "
                "AND created_at >= to_timestamp(%s)",
                (started,),
            ),
            cur.fetchone()["n"],
        )[1]
    )


def _sample(db: Database, started: float) -> dict[str, float]:
    """Comparisons in the last 5 s and their p95 latency from upload, now."""

    def read(cur) -> dict[str, Any]:
        cur.execute(
            """SELECT count(*) AS n,
                      percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM c.created_at - i.uploaded_at))
                          AS p95
               FROM model_comparisons c JOIN images i USING (image_id)
               WHERE c.created_at >= now() - interval '5 seconds' AND c.created_at >= to_timestamp(%s)""",
            (started,),
        )
        return dict(cur.fetchone())

    row = db.transaction(read)
    return {"t_s": round(time.time() - started, 1), "per_s": row["n"] / 5, "p95_s": float(row["p95"] or 0.0)}


def run_chaos(
    manager: Cluster,
    minutes: float,
    seed: int,
    rate: float,
    out: Path,
    replay: list[Fault] | None = None,
    drain_s: float = 300.0,
    report: Callable[[str], None] = print,
) -> dict[str, Any]:
    topology = manager.topology()
    if topology is None:
        raise RuntimeError("no cluster is up: `triptych cluster up` first (or let `triptych chaos` start one)")
    client = manager.client_settings()
    models = list(client.active_models)
    roles: dict[str, list[str]] = {}
    for host in topology.hosts:
        for role in host.roles:
            roles.setdefault(role, []).append(host.name)
    faults = replay if replay is not None else plan(seed, minutes, roles)
    report(f"chaos: {len(faults)} faults over {minutes:g} min (seed {seed}), {len(overlapping(faults))} overlapping")
    db = Database(client)
    key = db.transaction(lambda cur: create_key(cur, f"chaos-{seed}-{int(time.time())}", ["upload"], 100_000))[1]
    workers = topology.with_role("worker")
    urls = [u for w in workers if _answers(u := f"http://{w.address}:{client.upload_port}")]
    if not urls:
        report("chaos: no worker runs the upload function: every image goes in as a bucket drop")
    history = History(started=time.time())
    rng = random.Random(seed)
    workload = Workload(client, urls, key, rate, history, seed)
    healers: list[tuple[float, int, Fault, Callable[[], None]]] = []  # (when, its history entry, fault, heal)
    healing_threads: list[threading.Thread] = []

    def healing(entry: int, fault: Fault, heal: Callable[[], None]) -> None:
        """Heal, tried three times (a host's `up` can fail while its neighbours are down); a heal
        that never worked is recorded, and the fault counts as lasting to the run's end."""
        for attempt in range(1, HEAL_TRIES + 1):
            try:
                heal()
            except Exception as exc:  # noqa: BLE001 - whatever failed, it is recorded and tried again
                history.faults[entry]["heal_errors"] = [*history.faults[entry].get("heal_errors", []), str(exc)[-500:]]
                report(f"  heal of {fault.kind} on {fault.host} failed (try {attempt}): {str(exc)[-200:]}")
                time.sleep(5)
                continue
            history.faults[entry]["healed_at_s"] = round(time.time() - history.started, 1)
            report(f"  {history.faults[entry]['healed_at_s']:6.1f} s  healed {fault.kind} on {fault.host}")
            return

    sampling = threading.Event()

    def sample_every() -> None:
        # Its own thread: a query waits up to a minute while PostgreSQL is the fault, and the
        # schedule must keep time meanwhile (in the main loop it once held faults back 40 s).
        while not sampling.wait(SAMPLE_EVERY_S):
            now = round(time.time() - history.started, 1)
            try:
                history.samples.append({**_sample(db_samples, history.started), "t_s": now})
            except Exception as exc:  # noqa: BLE001 - PostgreSQL may be the fault just now
                history.samples.append({"t_s": now, "per_s": 0.0, "p95_s": 0.0, "error": str(exc)[:200]})

    db_samples = Database(client)
    sampler = threading.Thread(target=sample_every, name="chaos-samples", daemon=True)
    sampler.start()
    workload.start()
    try:
        pending = sorted(faults, key=lambda f: f.at_s)
        end = minutes * 60
        while (now := time.time() - history.started) < end or healers:
            for due in [h for h in healers if h[0] <= now]:
                healers.remove(due)
                # A heal may take a while (`up` on a host): in its own thread, so the schedule keeps time.
                thread = threading.Thread(target=healing, args=due[1:], name=f"heal-{due[2].host}", daemon=True)
                thread.start()
                healing_threads.append(thread)
            while pending and pending[0].at_s <= now:
                fault = pending.pop(0)
                heal = inject(manager, fault, rng)
                history.faults.append({**fault.as_dict(), "injected_at_s": round(now, 1)})
                healers.append((now + fault.duration_s, len(history.faults) - 1, fault, heal))
                report(f"  {now:6.1f} s  {fault.kind} on {fault.host} for {fault.duration_s:g} s")
            if now >= end and not healers:
                break
            time.sleep(0.2)
    finally:
        for _, entry, fault, heal in healers:  # nothing left broken, whatever happened
            healing(entry, fault, heal)
        for thread in healing_threads:
            thread.join()
        workload.finish()
        sampling.set()
        sampler.join()
    report(f"chaos: every fault healed; {len(history.put)} images put, draining")
    deadline = time.monotonic() + drain_s
    while time.monotonic() < deadline:
        records = _records(db, list(history.put), models, history.started)
        if len(records) == len(history.put) and all(r.comparisons >= 1 for r in records.values()):
            break
        time.sleep(3)
    records = _records(db, list(history.put), models, history.started)
    dead = _dead_letters(db, history.started)
    # As they really ran: from injection to heal (a heal that restarts a host takes its time).
    end_s = time.time() - history.started
    executed = [  # a heal that never worked: the fault lasted to the end
        Fault(
            f["injected_at_s"],
            f.get("healed_at_s", end_s) - f["injected_at_s"],
            f["kind"],
            f["host"],
        )
        for f in history.faults
    ]
    provisional = check(history.put, records, models, executed, dead, 0, time.time() - history.started)
    # A dead letter is explained when every image put was still compared exactly once (a retry path's letter).
    explained = dead if not provisional.lost and not provisional.doubled else 0
    verdict: Verdict = check(history.put, records, models, executed, dead, explained, time.time() - history.started)
    unhealed = [f for f in history.faults if "healed_at_s" not in f]  # the run must end with all healed
    result = {
        "kind": "chaos",
        "seed": seed,
        "minutes": minutes,
        "rate": rate,
        "started_at": history.started,
        "schedule": [f.as_dict() for f in faults],
        "history": {
            "faults": history.faults,
            "samples": history.samples,
            "refused": history.refused,
            "put": history.put,
        },
        "recovery_s": {f"{f.kind}@{f.host}@{f.at_s}": r for f, r in zip(executed, verdict.recovery_s)},
        "verdict": {**verdict.as_dict(), "unhealed": len(unhealed), "passed": verdict.passed and not unhealed},
    }
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(history.started))
    (out / f"chaos-{stamp}.json").write_text(json.dumps(result, indent=2, default=str))
    (out / f"chaos-{stamp}.html").write_text(html_report(result))
    result["files"] = [str(out / f"chaos-{stamp}.json"), str(out / f"chaos-{stamp}.html")]
    return result


def load_replay(path: Path) -> tuple[int, float, list[Fault]]:
    data = json.loads(Path(path).read_text())
    return int(data["seed"]), float(data["minutes"]), from_dicts(data["schedule"])
