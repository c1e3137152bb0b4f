"""A training runs at the lowest CPU priority, on every thread it has or makes, so
the stream, the API and the dashboard keep their cores while models train; when
it trains beside a main thread that serves (`triptych demo`, the retrain
function), that main thread keeps its priority."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap


def test_a_training_lowers_every_thread_of_its_process_to_nice_19():
    # In a process of its own: a process cannot raise its priority back.
    script = textwrap.dedent("""
        import json, threading
        import numpy as np, torch
        from triptych.models.priority import thread_nice_values
        from triptych.models.training import TrainConfig, train

        torch.set_num_threads(2)
        torch.ones(256, 256) @ torch.ones(256, 256)   # torch's pool exists before the training starts
        before = list(thread_nice_values().values())
        seen = []
        rng = np.random.default_rng(0)
        images = rng.integers(0, 255, (16, 48, 48, 3), dtype=np.uint8)
        labels = rng.integers(0, 2, 16)
        train("mobilenet_v2", images, labels, images[:4], labels[:4], ["a", "b"], "test",
              TrainConfig(epochs=1, batch_size=8), log=lambda row: seen.append(list(thread_nice_values().values())))
        worker = []
        t = threading.Thread(target=lambda: worker.extend(thread_nice_values().values()))
        t.start(); t.join()
        print(json.dumps({"before": before, "during": seen, "new_thread": worker}))
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "2"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(result["before"]) == {os.getpriority(os.PRIO_PROCESS, 0)} and len(result["before"]) >= 2
    assert result["during"] and all(set(values) == {19} for values in result["during"])
    assert set(result["new_thread"]) == {19}, "a thread made after the training starts inherits it"


def test_a_training_in_another_thread_leaves_the_serving_main_thread_alone():
    script = textwrap.dedent("""
        import json, threading
        import torch
        from triptych.models.priority import lower_for_training, thread_nice_values

        torch.ones(256, 256) @ torch.ones(256, 256)   # torch's pool, made by the main thread
        main = threading.get_native_id()
        trainer = {}

        def train():
            lower_for_training()
            trainer["self"] = thread_nice_values()[threading.get_native_id()]

        t = threading.Thread(target=train); t.start(); t.join()
        after = thread_nice_values()
        served = []
        s = threading.Thread(target=lambda: served.append(thread_nice_values()[threading.get_native_id()]))
        s.start(); s.join()
        others = [v for tid, v in after.items() if tid != main]
        print(json.dumps({"main": after[main], "trainer": trainer["self"], "others": others, "served": served}))
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "2"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    base = os.getpriority(os.PRIO_PROCESS, 0)
    assert result["main"] == base and result["trainer"] == 19
    assert result["others"] and set(result["others"]) == {19}, "torch's pool threads yield too"
    assert result["served"] == [base], "a thread the main thread makes later (the demo's stream) is not lowered"
