"""Capacity on paper, from two `triptych bench` reports measured on this machine:
one of the one-host stack (CPU per image of each function and server) and one of
`triptych bench --cluster` (CPU per image of each host, replication and erasure
coding included). Prints the cost of distribution (the same cores as one host
and as the namespace cluster), the model checked against both runs, and the
model's table for 1, 4, 16 and 64 workers (triptych/benchmark/capacity.py).

    .venv/bin/python bench/capacity.py --single ONE.json --cluster CLUSTER.json [--cores 8]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from triptych.benchmark.capacity import (
    Costs,
    Servers,
    cluster_tiers,
    estimate,
    one_host_rate,
    per_image,
    single_host_costs,
)

WIDER = {"images-input-stream": 64, "minio-events": 64, "predictions-output-stream": 64}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single", type=Path, required=True, help="a one-host `triptych bench` JSON report")
    parser.add_argument("--cluster", type=Path, required=True, help="a `triptych bench --cluster` JSON report")
    parser.add_argument("--cores", type=int, default=8, help="cores per worker and per server host in the table")
    args = parser.parse_args()
    single, cluster = (json.loads(p.read_text()) for p in (args.single, args.cluster))
    one, many = single["pipeline"][0], cluster["pipeline"][0]
    costs = single_host_costs(one)
    tiers = cluster_tiers(many, cluster["cluster_roles"])
    print(f"one host ({single['commit']}) and the cluster ({cluster['commit']}), {single['cores']} cores each\n")
    print("| CPU ms per image (idle CPU taken off) | one host | cluster | ratio |\n|---|---|---|---|")
    # Every replica, the shadow challenger's too, as the cluster's worker hosts count them.
    one_tiers = {"workers": sum(ms for name, ms in per_image(one).items() if "[" in name), **costs.servers}
    for tier in ("workers", "kafka", "minio", "postgres"):
        print(f"| {tier} | {one_tiers[tier]:.1f} | {tiers[tier]:.1f} | {tiers[tier] / one_tiers[tier]:.2f} |")
    total_one, total_many = sum(per_image(one).values()), sum(per_image(many).values())
    print(f"| everything (bench included) | {total_one:.1f} | {total_many:.1f} | {total_many / total_one:.2f} |")
    gross_one, gross_many = one["cpu_ms_per_image_total"], many["cpu_ms_per_image_total"]
    print(f"| everything, idle CPU included | {gross_one:.1f} | {gross_many:.1f} | {gross_many / gross_one:.2f} |")
    print(f"\nsustained images/s: one host {one['images_per_s']:.1f}, cluster {many['images_per_s']:.1f}, "
          f"ratio {many['images_per_s'] / one['images_per_s']:.2f} (the cost of distribution on the same cores)")
    cores = single["cores"]
    for name, run in (("one host", one), ("cluster", many)):
        # All of it shares the cores here, idle CPU included: the gross figure.
        predicted = one_host_rate(Costs({"all": run["cpu_ms_per_image_total"]}, {}), cores)
        print(f"model check, {name}: {cores} shared cores / CPU per image = {predicted:.1f} images/s predicted, "
              f"{run['images_per_s']:.1f} measured ({run['images_per_s'] / predicted:.2f}; cores busy "
              f"{run['cores_busy']:.2f} of {cores})")
    model = Costs(costs.functions, {k: tiers[k] for k in ("kafka", "minio", "postgres")})
    print(f"\nthe model: functions' CPU from the one-host run, servers' from the cluster run; "
          f"{args.cores} cores per worker and per server host; 3 brokers, 4 MinIO nodes, 1 PostgreSQL\n")
    print("| workers | declared partitions (3/6/6) | bottleneck | 64 partitions | bottleneck "
          "| 64 partitions, a broker and a MinIO node per worker (at least 3 and 4) | bottleneck |")
    print("|---|---|---|---|---|---|---|")
    for workers in (1, 4, 16, 64):
        declared = estimate(model, workers, args.cores, servers=Servers(cores=args.cores))
        wider = estimate(model, workers, args.cores, WIDER, Servers(cores=args.cores))
        grown = estimate(model, workers, args.cores, WIDER,
                         Servers(brokers=max(3, workers), minio_nodes=max(4, workers), cores=args.cores))
        print(f"| {workers} | {declared.images_per_s:,.0f}/s | {declared.bottleneck} | "
              f"{wider.images_per_s:,.0f}/s | {wider.bottleneck} | {grown.images_per_s:,.0f}/s | {grown.bottleneck} |")


if __name__ == "__main__":
    main()
