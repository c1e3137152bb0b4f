"""The few Kubernetes API calls Triptych makes itself (CRDs in, server-side dry
runs, what a namespace still holds), over plain HTTPS with a bearer token. Helm
does everything else."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import requests
import urllib3


class KubeApiError(RuntimeError):
    def __init__(self, status: int, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status


@dataclass
class KubeClient:
    url: str
    token: str = ""
    verify: bool | str = False  # the test API server's certificate is self-signed
    cert: tuple[str, str] | None = None  # a client certificate and key (the node's admin)

    def __post_init__(self) -> None:
        if self.verify is False:
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self.session = requests.Session()
        if self.token:
            self.session.headers["Authorization"] = f"Bearer {self.token}"
        self.session.cert = self.cert

    def request(self, method: str, path: str, **kwargs) -> dict:
        deadline = time.monotonic() + 30
        while True:
            # Per request: a session's `verify` loses to REQUESTS_CA_BUNDLE in the environment.
            reply = self.session.request(method, f"{self.url}{path}", timeout=30, verify=self.verify, **kwargs)
            # 429 "storage is (re)initializing": a CRD just established; the server says when to come back.
            if reply.status_code != 429 or time.monotonic() > deadline:
                break
            time.sleep(min(2.0, float(reply.headers.get("Retry-After", 1))))
        if reply.status_code >= 400:
            try:
                message = reply.json().get("message", reply.text)
            except ValueError:
                message = reply.text
            raise KubeApiError(reply.status_code, message)
        return reply.json() if reply.content else {}

    # --- where an object lives in the API ---------------------------------------
    def _resources(self, group_version: str) -> list[dict]:
        prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
        return self.request("GET", prefix)["resources"]

    def resource_path(self, obj: dict, namespace: str | None) -> str:
        """The collection URL of `obj`'s kind (namespaced or not, from discovery)."""
        group_version, kind = obj["apiVersion"], obj["kind"]
        for resource in self._resources(group_version):
            if resource["kind"] == kind and "/" not in resource["name"]:
                prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
                if resource["namespaced"]:
                    return f"{prefix}/namespaces/{obj['metadata'].get('namespace') or namespace}/{resource['name']}"
                return f"{prefix}/{resource['name']}"
        raise KubeApiError(404, f"the API server does not serve {kind} in {group_version}")

    # --- calls ---------------------------------------------------------------------
    def create(self, obj: dict, namespace: str | None = None, dry_run: bool = False) -> dict:
        """Create `obj`; unknown or duplicate fields are refused (fieldValidation=Strict)."""
        params = {"fieldValidation": "Strict"}
        if dry_run:
            params["dryRun"] = "All"
        return self.request("POST", self.resource_path(obj, namespace), json=obj, params=params)

    def apply(self, obj: dict, namespace: str | None = None) -> dict:
        """Server-side apply of `obj` as the field manager `triptych` (create or update)."""
        path = f"{self.resource_path(obj, namespace)}/{obj['metadata']['name']}"
        return self.request(
            "PATCH",
            path,
            data=json.dumps(obj),
            params={"fieldManager": "triptych", "force": "true"},
            headers={"Content-Type": "application/apply-patch+yaml"},
        )

    def get(self, obj: dict, namespace: str | None = None) -> dict:
        return self.request("GET", f"{self.resource_path(obj, namespace)}/{obj['metadata']['name']}")

    def ensure_namespace(self, name: str) -> None:
        try:
            self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        except KubeApiError as exc:
            if exc.status != 409:
                raise

    def install_crds(self, crds: list[dict], timeout_s: float = 60) -> None:
        """Create each CRD (or leave it if there) and wait until the API serves it."""
        for crd in crds:
            try:
                # A generated CRD may carry an empty `status` (KEDA's): the server owns it.
                self.create({k: v for k, v in crd.items() if k != "status"})
            except KubeApiError as exc:
                if exc.status != 409:
                    raise
        deadline = time.monotonic() + timeout_s
        for crd in crds:
            while True:
                stored = self.get(crd)
                if any(
                    c["type"] == "Established" and c["status"] == "True"
                    for c in (stored.get("status") or {}).get("conditions") or []
                ):
                    break
                if time.monotonic() > deadline:
                    raise KubeApiError(504, f"CRD {crd['metadata']['name']} not established in {timeout_s} s")
                time.sleep(0.2)

    def namespaced_objects(self, namespace: str) -> list[str]:
        """`kind/name` of every object in `namespace`, over every listable kind the server serves."""
        found = []
        group_versions = ["v1"] + [
            g["preferredVersion"]["groupVersion"] for g in self.request("GET", "/apis")["groups"]
        ]
        for group_version in group_versions:
            prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
            for resource in self._resources(group_version):
                if not resource["namespaced"] or "/" in resource["name"] or "list" not in resource["verbs"]:
                    continue
                if resource["kind"] == "Event":  # the server's own record, not an object anyone made
                    continue
                items = self.request("GET", f"{prefix}/namespaces/{namespace}/{resource['name']}")["items"]
                found += [f"{resource['kind']}/{item['metadata']['name']}" for item in items]
        return sorted(found)
