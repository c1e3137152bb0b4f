"""The Kubernetes node's binaries, compiled ahead of `triptych kube up`, at the lowest
CPU priority: `python -m triptych.kube.prebuild [--images TAG]`; with `--images`, then
the images `kube deploy --tag TAG` builds (their layers, into the builder's cache).

On a fresh machine they take about twenty minutes of two cores (the kubelet and the
control plane eight, KEDA six). The test session starts this in the background
(tests/integration/conftest.py), so the compiles fill the time the earlier tests
spend waiting on their servers instead of adding to the run. Every build holds a
lock, so a `kube up` that comes while one is under way waits for it rather than
building the same binary twice; a binary already cached is not built again.
The images come last: on a fresh machine the debootstrap base and the Python
packages are another quarter of an hour that a deploy would otherwise wait for.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from functools import partial

from ..config import Settings
from ..runtime.nuclio_processor import install_controller
from . import go_tools


def build_all(settings: Settings, report: Callable[[str], None] = print) -> None:
    steps: list[tuple[str, Callable[[], object]]] = [
        (tool.name, partial(go_tools.install, settings, tool))
        for tool in (
            go_tools.ETCD,
            go_tools.KUBE_APISERVER,
            go_tools.KUBE_CONTROLLER_MANAGER,
            go_tools.KUBE_SCHEDULER,
            go_tools.KUBELET,
            go_tools.KUBE_PROXY,
            go_tools.COREDNS,
            go_tools.HELM,
        )
    ]
    steps += [
        ("prometheus", partial(go_tools.prometheus, settings)),
        ("keda-operator", partial(go_tools.keda, settings, "operator")),
        ("keda-adapter", partial(go_tools.keda, settings, "adapter")),
        ("nuclio-controller", partial(install_controller, settings)),
    ]
    for name, build in steps:
        started = time.monotonic()
        build()
        report(f"{name}: {time.monotonic() - started:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m triptych.kube.prebuild")
    parser.add_argument("--images", metavar="TAG", help="also build the images `kube deploy --tag TAG` needs")
    args = parser.parse_args(argv)
    settings = Settings()

    def report(line: str) -> None:
        print(line, flush=True)

    build_all(settings, report=report)
    if args.images:
        from .deployment import SERVING_ROLES
        from .node_images import prebuild

        prebuild(settings, args.images, SERVING_ROLES, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
