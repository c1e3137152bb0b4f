"""A real kube-apiserver on etcd, started the way controller-runtime's envtest
starts one: no kubelet, no controllers, no nodes. It validates and stores every
object exactly as a cluster's API server does (schemas, CRDs' OpenAPI, defaulting,
server-side dry runs), which is what the chart's test needs; nothing runs its pods.

Access is one static bearer token in system:masters over the API server's
self-signed TLS (the kubeconfig written beside it skips verification: the server
lives for one test session on 127.0.0.1).
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..config import Settings
from ..errors import UnhealthyError
from ..runtime.nuclio_replica import free_port
from . import go_tools


@dataclass
class ApiServer:
    """etcd and kube-apiserver on 127.0.0.1 under `workdir`; `stop()` ends both and deletes it."""

    workdir: Path
    url: str
    token: str
    kubeconfig: Path
    processes: list[subprocess.Popen] = field(default_factory=list)

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.terminate()
        for proc in reversed(self.processes):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        out = []
        for name in ("etcd.log", "kube-apiserver.log"):
            path = self.workdir / name
            if path.exists():
                out.append(f"--- {name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(out)


def _service_account_keys(folder: Path) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private, public = folder / "sa.key", folder / "sa.pub"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private, public


def _wait_ready(server: ApiServer, proc: subprocess.Popen, timeout_s: float) -> None:
    import requests
    import urllib3

    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise UnhealthyError(f"kube-apiserver exited with {proc.returncode}:\n{server.log_tail()}")
        try:
            reply = requests.get(
                f"{server.url}/readyz", headers={"Authorization": f"Bearer {server.token}"}, verify=False, timeout=2
            )
            if reply.status_code == 200:
                return
            last = f"{reply.status_code} {reply.text[-300:]}"
        except requests.RequestException as exc:
            last = str(exc)
        time.sleep(0.5)
    raise UnhealthyError(f"kube-apiserver was not ready in {timeout_s:.0f} s ({last}):\n{server.log_tail()}")


def start(settings: Settings, timeout_s: float = 120) -> ApiServer:
    """Build (first time) and start etcd and kube-apiserver; return when /readyz answers 200."""
    etcd_bin, apiserver_bin = (
        go_tools.install(settings, go_tools.ETCD),
        go_tools.install(settings, go_tools.KUBE_APISERVER),
    )
    workdir = Path(tempfile.mkdtemp(prefix="triptych-apiserver-"))
    etcd_port, peer_port, api_port = (free_port("127.0.0.1") for _ in range(3))
    token = secrets.token_urlsafe(24)
    (workdir / "tokens.csv").write_text(f"{token},admin,admin-uid,system:masters\n")
    sa_key, sa_pub = _service_account_keys(workdir)
    server = ApiServer(workdir, f"https://127.0.0.1:{api_port}", token, workdir / "kubeconfig")
    etcd = subprocess.Popen(
        [
            str(etcd_bin),
            "--data-dir",
            str(workdir / "etcd"),
            "--name",
            "triptych-test",
            "--listen-client-urls",
            f"http://127.0.0.1:{etcd_port}",
            "--advertise-client-urls",
            f"http://127.0.0.1:{etcd_port}",
            "--listen-peer-urls",
            f"http://127.0.0.1:{peer_port}",
            "--initial-advertise-peer-urls",
            f"http://127.0.0.1:{peer_port}",
            "--initial-cluster",
            f"triptych-test=http://127.0.0.1:{peer_port}",
            "--unsafe-no-fsync",
        ],  # a throwaway store: envtest's setting too
        stdout=open(workdir / "etcd.log", "w"),
        stderr=subprocess.STDOUT,
    )
    server.processes.append(etcd)
    apiserver = subprocess.Popen(
        [
            str(apiserver_bin),
            "--etcd-servers",
            f"http://127.0.0.1:{etcd_port}",
            "--bind-address",
            "127.0.0.1",
            "--advertise-address",
            "127.0.0.1",
            "--secure-port",
            str(api_port),
            "--cert-dir",
            str(workdir / "certs"),  # a self-signed serving certificate, made at start
            "--token-auth-file",
            str(workdir / "tokens.csv"),
            "--authorization-mode",
            "RBAC",
            "--service-account-issuer",
            f"https://127.0.0.1:{api_port}",
            "--service-account-key-file",
            str(sa_pub),
            "--service-account-signing-key-file",
            str(sa_key),
            "--service-cluster-ip-range",
            "10.96.0.0/16",
            "--allow-privileged=true",
            "--disable-admission-plugins",
            "ServiceAccount",
        ],  # no token controller runs to mint their secrets
        stdout=open(workdir / "kube-apiserver.log", "w"),
        stderr=subprocess.STDOUT,
    )
    server.processes.append(apiserver)
    server.kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "triptych-test",
                "clusters": [
                    {"name": "triptych-test", "cluster": {"server": server.url, "insecure-skip-tls-verify": True}}
                ],
                "users": [{"name": "admin", "user": {"token": token}}],
                "contexts": [{"name": "triptych-test", "context": {"cluster": "triptych-test", "user": "admin"}}],
            }
        )
    )
    try:
        _wait_ready(server, apiserver, timeout_s)
    except BaseException:
        server.stop()
        raise
    return server
