"""`triptych cluster up | status | down`: several hosts on one machine.

Each host is a network namespace (`cluster.netns`) in which `triptych up --role
...` runs with the settings `cluster.topology` writes for it: exactly what an
operator runs on a real machine, so a test of the cluster tests that path.

`up` starts every server host at once (three KRaft brokers need each other for a
quorum, four MinIO nodes for their erasure set), carries the champions of the
stack the CLI is configured for into the cluster's MLflow (`models export` /
`models import`), then starts the worker hosts. The state lives in
`<data dir>/cluster/cluster.json`; each host keeps its data under
`<data dir>/cluster/<host>/`.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..config import Settings
from ..control import read_status, replica_counts
from ..errors import StackError
from ..models.carry import CLI, carry_champions, environ_without_this_stack
from ..stack.process import tail
from . import netns
from .topology import HOST_DATA_DIR, Host, Topology

Report = Callable[[str], None]
# Functions only one worker runs: a second copy of these would do the same work twice
# (a cron) or answer nothing new (the shadow challenger, the int8 twin), and retrain holds GBs idle.
SINGLETONS = ("retrain", "jobs", "infer-shadow", "infer-int8")


class Cluster:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.root = settings.data_dir / "cluster"
        self.state_file = self.root / "cluster.json"

    # -- state --------------------------------------------------------------------
    def topology(self) -> Topology | None:
        if not self.state_file.exists():
            return None
        return Topology.from_dict(json.loads(self.state_file.read_text())["topology"])

    def client_settings(self, topology: Topology | None = None) -> Settings:
        """Settings of a client in the root namespace (the CLI, tests, the bench)."""
        topology = topology or self.topology()
        if topology is None:
            raise StackError("no cluster is up: `triptych cluster up` first")
        # Validated as the same variables in the environment would be (ints parsed...).
        client = {k.removeprefix("TRIPTYCH_").lower(): v for k, v in topology.client_env(self.settings).items()}
        return type(self.settings)(**{**self.settings.model_dump(), **client})

    def host_dir(self, host: Host) -> Path:
        return self.root / host.name

    def log_path(self, host: Host) -> Path:
        return self.root / "logs" / f"{host.name}-up.log"

    # -- up -----------------------------------------------------------------------
    def up(
        self,
        workers: int = 2,
        replicas: dict[str, int] | None = None,
        functions_runtime: str = "local",
        report: Report = lambda _msg: None,
    ) -> Topology:
        """Hosts, servers, champions, workers; `replicas`: what each worker runs
        (default: the scaler's, with SINGLETONS on the first worker only)."""
        netns.require_root()
        topology = self.topology()
        if topology is None:
            topology = Topology.default(workers, functions_runtime)
            netns.destroy(topology)  # hosts left by a cluster whose state is gone (a killed run): start clean
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)  # the postgres user must reach its data dir
        report(f"creating {len(topology.hosts)} hosts")
        netns.create(topology)
        self.state_file.write_text(json.dumps({"topology": topology.as_dict()}, indent=2))
        servers = [h for h in topology.hosts if "worker" not in h.roles]
        report("starting " + ", ".join(f"{h.name} ({'+'.join(h.roles)})" for h in servers))
        self._up_on(topology, servers)
        report("carrying the champions into the cluster's MLflow")
        self._ensure_champions(topology, report)
        workers_ = topology.with_role("worker")
        for i, host in enumerate(workers_):
            self._write_desired(host, replicas, first=i == 0)
        report("starting " + ", ".join(h.name for h in workers_))
        self._up_on(topology, workers_)
        return topology

    def _env(self, topology: Topology, host: Host) -> dict[str, str]:
        return {**environ_without_this_stack(), **topology.host_env(host, self.settings)}

    def _in(self, host: Host, argv: list[str]) -> list[str]:
        """`argv` on `host`: in its namespace, its own folder at HOST_DATA_DIR."""
        folder = self.host_dir(host)
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o755)
        return netns.exec_argv(host, argv, own_dir=(folder, HOST_DATA_DIR))

    def _up_on(self, topology: Topology, hosts: list[Host]) -> None:
        """`triptych up` on each host at once; raise with the failures' logs."""
        if topology.functions_runtime == "nuclio" and any("worker" in h.roles for h in hosts):
            # Built here, into the shared cache: a host's namespace reaches only the other
            # hosts, never the Go module proxy (on a fresh machine `up` there failed).
            from ..runtime.nuclio_processor import install_processor

            install_processor(self.settings)

        def up(host: Host) -> tuple[Host, int]:
            log = self.log_path(host)
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "ab") as out:
                proc = subprocess.run(
                    self._in(host, [*CLI, "up"]),
                    env=self._env(topology, host),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    timeout=900,
                )
            return host, proc.returncode

        with ThreadPoolExecutor(len(hosts)) as pool:
            failed = [host for host, code in pool.map(up, hosts) if code != 0]
        if failed:
            raise StackError("; ".join(f"`triptych up` failed on {h.name}:\n{tail(self.log_path(h))}" for h in failed))

    def _write_desired(self, host: Host, replicas: dict[str, int] | None, first: bool) -> None:
        from ..control import replace_desired
        from ..runtime.spec import load_functions

        declared = {name: spec.replicas for name, spec in load_functions(self.settings.project_file).items()}
        if replicas is not None:
            wanted = {name: replicas.get(name, 0) for name in declared}
        else:
            # The rest follow each worker's scaler, which shares every function with the live workers.
            wanted = {name: 0 for name in SINGLETONS if name in declared and not first}
        replace_desired(self.settings.model_copy(update={"data_dir": self.host_dir(host)}), wanted)

    def _ensure_champions(self, topology: Topology, report: Report = lambda _msg: None) -> None:
        """The cluster's MLflow gets the champions of the stack the CLI points at."""
        carry_champions(
            self.settings, self.client_settings(topology), topology.client_env(self.settings), "cluster", report
        )

    # -- status ---------------------------------------------------------------------
    def status(self) -> dict:
        topology = self.topology()
        if topology is None:
            return {"up": False, "hosts": []}
        hosts = []
        for host in topology.hosts:
            pids = netns.pids(host.namespace)
            entry = {
                "name": host.name,
                "namespace": host.namespace,
                "address": host.address,
                "roles": list(host.roles),
                "pids": pids,
                "alive": bool(pids),
            }
            if "worker" in host.roles:
                own = self.settings.model_copy(update={"data_dir": self.host_dir(host)})
                entry["functions"] = replica_counts(own)
                entry["runtime"] = read_status(own).get("runtime")
            hosts.append(entry)
        env = topology.client_env(self.settings)
        return {
            "up": True,
            "hosts": hosts,
            "kafka_bootstrap": env["TRIPTYCH_KAFKA_BOOTSTRAP"],
            "s3_endpoint": env["TRIPTYCH_S3_ENDPOINT"],
            "mlflow": env["TRIPTYCH_MLFLOW_TRACKING_URI"],
            "env": env,
        }

    def host_pids(self) -> dict[str, list[int]]:
        """{host: every process in its namespace now} (what `bench --cluster` measures)."""
        topology = self.topology()
        return {h.name: netns.pids(h.namespace) for h in topology.hosts} if topology else {}

    # -- faults and down ------------------------------------------------------------
    def kill_host(self, name: str) -> list[int]:
        """Every process of a host gets -9, as if the machine died."""
        topology = self.topology()
        return netns.kill_all(topology.host(name).namespace)

    def restart_host(self, name: str) -> None:
        topology = self.topology()
        self._up_on(topology, [topology.host(name)])

    def switch_runtime(self, name: str, functions_runtime: str) -> None:
        """Run a worker's replicas under another runtime (`local` or `nuclio`): its
        functions stop, draining, and start again under the other; the other workers
        go on (a rolling move from one runtime to the other)."""
        topology = self.topology()
        host = topology.host(name)
        if "worker" not in host.roles:
            raise StackError(f"{name} is not a worker host")
        subprocess.run(
            self._in(host, [*CLI, "down"]), env=self._env(topology, host), capture_output=True, timeout=300, check=True
        )
        self._up_on(dataclasses.replace(topology, functions_runtime=functions_runtime), [host])

    def down(self, purge: bool = False, report: Report = lambda _msg: None) -> None:
        topology = self.topology()
        if topology is None:
            return
        # `triptych down` on each host, workers first (they drain), as an operator would;
        # whatever is still running after that dies with its host.
        for group in (topology.with_role("worker"), [h for h in topology.hosts if "worker" not in h.roles]):
            alive = [h for h in group if netns.exists(h.namespace) and netns.pids(h.namespace)]
            if alive:
                report("stopping " + ", ".join(h.name for h in alive))
                with ThreadPoolExecutor(len(alive)) as pool:
                    list(
                        pool.map(
                            lambda h: subprocess.run(
                                self._in(h, [*CLI, "down"]),
                                env=self._env(topology, h),
                                capture_output=True,
                                timeout=300,
                            ),
                            alive,
                        )
                    )
        report("removing the hosts")
        netns.destroy(topology)
        self.state_file.unlink(missing_ok=True)
        if purge:
            shutil.rmtree(self.root, ignore_errors=True)
