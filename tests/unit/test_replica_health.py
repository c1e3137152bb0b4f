"""Replica health from the supervisors' series as Prometheus returns them."""

from triptych.observe.replicas import from_series


def test_two_hosts_supervisors_are_summed_and_alive_but_not_ready_counts_as_starting():
    series = {
        "desired": [({"function": "ingest"}, 4), ({"function": "infer-resnet50"}, 2)],
        "alive": [({"function": "ingest"}, 4), ({"function": "infer-resnet50"}, 2)],
        "running": [({"function": "ingest"}, 4)],  # no champion loaded yet
        "restarts": [({"function": "ingest"}, 1)],
    }
    health = from_series(series, [({"instance": "10.251.0.15:9400"}, 1), ({"instance": "10.251.0.16:9400"}, 1)])
    assert health.functions == {
        "infer-resnet50": {"desired": 2, "running": 0, "starting": 2, "restarts": 0},
        "ingest": {"desired": 4, "running": 4, "starting": 0, "restarts": 1},
    }
    assert health.supervisors_up == ["10.251.0.15:9400", "10.251.0.16:9400"]
    assert health.problems() == [
        "function infer-resnet50 has no running replica (2 wanted, 2 starting: an inference replica waits for a champion)"
    ]


def test_a_supervisor_that_stopped_answering_is_a_problem_and_its_replicas_are_not_counted():
    series = {"desired": [({"function": "aggregate"}, 1)], "alive": [], "running": [], "restarts": []}
    health = from_series(series, [({"instance": "10.251.0.16:9400"}, 0)])
    assert health.supervisor_problems() == ["the function supervisor at 10.251.0.16:9400 does not answer Prometheus"]
    assert health.function_problems() == ["function aggregate has no running replica (1 wanted)"]
