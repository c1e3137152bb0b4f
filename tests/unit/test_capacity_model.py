"""The capacity model's arithmetic (benchmark/capacity.py)."""

import pytest

from triptych.benchmark.capacity import (
    Costs,
    Servers,
    cluster_tiers,
    estimate,
    one_host_rate,
    single_host_costs,
)

COSTS = Costs(
    functions={"ingest": 4.0, "infer-resnet50": 10.0, "infer-mobilenet-v2": 3.0, "aggregate": 3.0},
    servers={"kafka": 20.0, "minio": 8.0, "postgres": 2.0},
)


def test_few_workers_are_bound_by_their_cores():
    one = estimate(COSTS, workers=1, cores_per_worker=4)
    assert one.bottleneck == "workers' cores" and one.images_per_s == pytest.approx(4 * 1000 / 20)


def test_more_workers_meet_the_partitions_of_the_slowest_model_then_more_partitions_meet_the_brokers():
    capped = estimate(COSTS, workers=8, cores_per_worker=8)
    # 6 partitions of images-input, 10 ms a resnet50 image: 600 a second, below 8 * 8 cores' 3,200.
    assert capped.bottleneck.startswith("infer-resnet50: 6 partitions")
    assert capped.images_per_s == pytest.approx(600)
    wider = estimate(
        COSTS,
        workers=8,
        cores_per_worker=8,
        partitions={"images-input-stream": 64, "minio-events": 64, "predictions-output-stream": 64},
    )
    # Three brokers of 8 cores at 20 ms an image: 1,200 a second.
    assert wider.bottleneck.startswith("kafka") and wider.images_per_s == pytest.approx(1200)
    # Nine brokers (3,600 a second): the workers' 64 cores (3,200) bind again.
    more_brokers = estimate(
        COSTS,
        8,
        8,
        {"images-input-stream": 64, "minio-events": 64, "predictions-output-stream": 64},
        Servers(brokers=9),
    )
    assert more_brokers.bottleneck == "workers' cores" and more_brokers.images_per_s == pytest.approx(3200)


def test_no_workers_is_refused():
    with pytest.raises(ValueError):
        estimate(COSTS, workers=0, cores_per_worker=4)


def test_one_host_shares_its_cores_among_everything():
    assert one_host_rate(COSTS, cores=2) == pytest.approx(2000 / 50)


def test_costs_come_from_named_processes_on_one_host_and_from_hosts_on_a_cluster():
    single = single_host_costs(
        {
            "cpu_ms_per_image": {
                "ingest[0]": 4.0,
                "infer-resnet50[0]": 5.0,
                "infer-resnet50[1]": 5.5,
                "infer-shadow[0]": 1.0,
                "aggregate[0]": 2.0,
                "kafka": 9.0,
                "minio": 4.0,
                "postgres": 2.0,
                "api": 0.1,
                "bench (this process)": 1.6,
            }
        }
    )
    assert single.functions == {"ingest": 4.0, "infer-resnet50": 10.5, "aggregate": 2.0}
    assert single.servers == {"kafka": 9.0, "minio": 4.0, "postgres": 2.0}
    # Brokers sharing hosts with MinIO nodes (real machines may): a MinIO-only host's cost is taken off.
    roles = {
        "node-1": ["kafka", "minio"],
        "node-2": ["kafka", "minio"],
        "node-3": ["kafka", "minio"],
        "node-4": ["minio"],
        "db": ["postgres", "mlflow", "monitoring"],
        "worker-1": ["worker"],
        "worker-2": ["worker"],
    }
    tiers = cluster_tiers(
        {
            "cpu_ms_per_image": {
                "node-1": 10.0,
                "node-2": 8.0,
                "node-3": 9.0,
                "node-4": 2.0,
                "db": 3.0,
                "worker-1": 12.0,
                "worker-2": 11.0,
            }
        },
        roles,
    )
    assert tiers == {"workers": 23.0, "kafka": 27.0 - 6.0, "minio": 8.0, "postgres": 3.0}
    # Hosts of their own, as `triptych cluster up` makes them.
    apart = {
        **{f"kafka-{i}": ["kafka"] for i in (1, 2, 3)},
        **{f"minio-{i}": ["minio"] for i in (1, 2, 3, 4)},
        "db": ["postgres", "mlflow", "monitoring"],
        "worker-1": ["worker"],
    }
    tiers = cluster_tiers(
        {
            "cpu_ms_per_image": {
                "kafka-1": 5.0,
                "kafka-2": 4.0,
                "kafka-3": 3.0,
                "minio-1": 3.0,
                "minio-2": 1.0,
                "minio-3": 1.0,
                "minio-4": 1.0,
                "db": 2.0,
                "worker-1": 20.0,
            }
        },
        apart,
    )
    assert tiers == {"workers": 20.0, "kafka": 12.0, "minio": 6.0, "postgres": 2.0}
