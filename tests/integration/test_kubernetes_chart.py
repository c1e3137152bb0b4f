"""The Helm chart against a real kube-apiserver on etcd (both built from the Go
module proxy and cached; started as envtest starts them), with the CRDs of the
operators it targets (KEDA, CloudNativePG, Nuclio) from their own modules.

Proven here: every object the chart renders is accepted by the server under strict
field validation; the release installs, upgrades to other values (its generated
secrets kept), and uninstalls leaving nothing. Not proven: that the pods run. No
kubelet or operator runs here (see infra/image and test_function_image.py for
the image, and docs/operations/kubernetes.md for what a real cluster adds)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections import Counter
from dataclasses import replace

import pytest
import yaml

from triptych.config import REPO_ROOT, Settings
from triptych.kube import apiserver, chart, crds
from triptych.kube.client import KubeClient
from triptych.runtime.spec import load_functions

NAMESPACE = "triptych-test"
PROJECT = REPO_ROOT / "project.yaml"


@pytest.fixture(scope="module")
def cluster():
    settings = Settings()
    server = apiserver.start(settings)
    try:
        kube = KubeClient(server.url, server.token)
        kube.install_crds(crds.operator_crds(settings))
        kube.ensure_namespace(NAMESPACE)
        yield settings, server, kube
    finally:
        server.stop()


def _by_kind(docs: list[dict]) -> dict[str, dict[str, dict]]:
    out: dict[str, dict[str, dict]] = {}
    for doc in docs:
        out.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    return out


def _contains(stored, rendered) -> bool:
    """Every field of `rendered` is in `stored` with the same value (the server may add defaults)."""
    if isinstance(rendered, dict):
        return isinstance(stored, dict) and all(k in stored and _contains(stored[k], v) for k, v in rendered.items())
    if isinstance(rendered, list):
        return isinstance(stored, list) and len(stored) == len(rendered) and all(map(_contains, stored, rendered))
    return stored == rendered


def _secret(kube: KubeClient, name: str) -> dict[str, str]:
    stored = kube.get({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}}, NAMESPACE)
    return {key: base64.b64decode(value).decode() for key, value in stored["data"].items()}


def test_the_chart_installs_upgrades_and_uninstalls_on_a_real_api_server(cluster):
    settings, server, kube = cluster
    release = chart.Release(
        name="triptych",
        namespace=NAMESPACE,
        kubeconfig=server.kubeconfig,
        sets=["image.repository=registry.test/triptych", "image.tag=one"],
    )
    chart.lint(settings, release)
    docs = chart.documents(chart.template(settings, release))
    objects = _by_kind(docs)
    declared = load_functions(PROJECT)

    # One NuclioFunction per declared function, from the image, its triggers those of the declaration.
    assert set(objects["NuclioFunction"]) == set(declared)
    for name, fn in objects["NuclioFunction"].items():
        assert fn["apiVersion"] == "nuclio.io/v1beta1" and fn["status"]["state"] == "waitingForResourceConfiguration"
        assert fn["spec"]["image"] == "registry.test/triptych:one" and fn["spec"]["build"] == {"codeEntryType": "image"}
        assert "functionSourceCode" not in json.dumps(fn), "never the bare handler: it imports what only the image has"
        groups = {
            t["attributes"]["consumerGroup"]
            for t in fn["spec"]["triggers"].values()
            if "consumerGroup" in t["attributes"]
        }
        assert groups == {t.consumer_group for t in declared[name].kafka_triggers}
    # KEDA scales each Kafka function that scales, through the one HPA Nuclio makes, within the same bounds.
    scaled = {n for n, s in declared.items() if s.kafka_triggers and s.replicas != (s.max_replicas or s.replicas)}
    assert set(objects["ScaledObject"]) == scaled
    for name in scaled:
        spec, keda = objects["NuclioFunction"][name]["spec"], objects["ScaledObject"][name]["spec"]
        assert (spec["minReplicas"], spec["maxReplicas"]) == (keda["minReplicaCount"], keda["maxReplicaCount"])
        assert (
            keda["scaleTargetRef"]["name"]
            == keda["advanced"]["horizontalPodAutoscalerConfig"]["name"]
            == f"nuclio-{name}"
        )
    assert objects["ScaledObject"]["infer-shadow"]["spec"]["triggers"][0]["type"] == "prometheus"
    assert {"Cluster", "StatefulSet", "Deployment", "Service", "Secret"} <= set(objects)
    assert set(objects["StatefulSet"]) == {"triptych-kafka", "triptych-minio"}

    # Server-side validation of every object, strict: an unknown or misplaced field is refused.
    for doc in docs:
        kube.create(doc, NAMESPACE, dry_run=True)

    chart.upgrade_install(settings, release)
    for doc in docs:
        stored = kube.get(doc, NAMESPACE)
        if doc["kind"] in ("ScaledObject", "Cluster", "NuclioFunction"):
            # Nothing pruned by the CRDs' schemas (defaults may be added): what we rendered is what the operators read.
            assert _contains(stored["spec"], doc["spec"]), (doc["metadata"]["name"], stored["spec"], doc["spec"])
    password = _secret(kube, "triptych-postgres")["password"]
    assert len(password) == 32 and password.isalnum()
    assert len(_secret(kube, "triptych-s3")["secret-key"]) == 40

    # Upgrade: the user's own Kafka, Nuclio's HPA instead of KEDA, one function's bounds, a new image.
    upgraded = replace(
        release,
        sets=[
            "image.repository=registry.test/triptych",
            "image.tag=two",
            "kafka.bootstrap=kafka-a.example:9092\\,kafka-b.example:9092",  # Helm splits --set on commas
            "functions.scaling=nuclio",
            "functions.overrides.infer-resnet50.maxReplicas=3",
        ],
    )
    chart.upgrade_install(settings, upgraded)
    live = _by_kind(chart.manifest(settings, upgraded))
    assert "ScaledObject" not in live and set(live["StatefulSet"]) == {"triptych-minio"}
    kube_objects = kube.namespaced_objects(NAMESPACE)
    assert not [o for o in kube_objects if o.startswith("ScaledObject/") or o == "StatefulSet/triptych-kafka"]
    resnet = kube.get(live["NuclioFunction"]["infer-resnet50"], NAMESPACE)["spec"]
    assert (resnet["minReplicas"], resnet["maxReplicas"], resnet["targetCPU"]) == (2, 3, 70)
    assert resnet["image"] == "registry.test/triptych:two"
    assert resnet["triggers"]["images"]["attributes"]["brokers"] == ["kafka-a.example:9092", "kafka-b.example:9092"]
    assert _secret(kube, "triptych-postgres")["password"] == password, "a generated secret survives an upgrade"

    chart.uninstall(settings, upgraded)
    assert kube.namespaced_objects(NAMESPACE) == [], "uninstall leaves nothing behind"


def test_the_values_schema_refuses_bad_values_with_the_key_named(cluster):
    settings = cluster[0]
    for bad, key in (
        ("functions.scaling=sometimes", "/functions/scaling"),
        ("kafka.bootstrap=not a broker", "/kafka/bootstrap"),
        ("functions.overrides.no-such-function.maxReplicas=2", "no-such-function"),
        ("postgres.port=70000", "/postgres/port"),
        ("settings.PATH=/tmp", "PATH"),
    ):
        with pytest.raises(chart.HelmError) as refused:
            chart.template(settings, chart.Release(sets=[bad]))
        assert key in str(refused.value), (bad, str(refused.value)[-500:])


def test_deploy_dry_run_prints_the_release_as_yaml_documents(cluster):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "triptych.cli",
            "deploy",
            "--dry-run",
            "--image",
            "registry.test:5000/team/triptych:abc123",
            "--set",
            "functions.scaling=fixed",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    kinds = Counter(d["kind"] for d in docs)
    assert kinds["NuclioFunction"] == len(load_functions(PROJECT)) and "ScaledObject" not in kinds
    images = {
        c["image"] for d in docs if d["kind"] == "Deployment" for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {"registry.test:5000/team/triptych:abc123"}
    shadow = next(d for d in docs if d["metadata"]["name"] == "infer-shadow")["spec"]
    assert shadow["minReplicas"] == shadow["maxReplicas"] == 1, "fixed: each function at its minimum, at least 1"


def test_dashboard_sign_in_cannot_be_turned_off_behind_the_ingress(cluster):
    settings = cluster[0]

    def dashboard_env(*sets):
        docs = chart.documents(chart.template(settings, chart.Release(sets=list(sets))))
        board = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-dashboard"))
        container = board["spec"]["template"]["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/health"  # a probe carries no session
        return {e["name"]: e.get("value") for e in container["env"]}

    assert dashboard_env()["TRIPTYCH_DASHBOARD_LOGIN"] == "true"
    assert dashboard_env("dashboard.login=false")["TRIPTYCH_DASHBOARD_LOGIN"] == "false"
    behind = dashboard_env(
        "dashboard.login=false",
        "ingress.enabled=true",
        "dashboard.trustedProxies[0]=10.0.0.0/8",
        "dashboard.proxyGroups.ml-admins=admin",
    )
    assert behind["TRIPTYCH_DASHBOARD_LOGIN"] == "true"
    assert json.loads(behind["TRIPTYCH_DASHBOARD_TRUSTED_PROXIES"]) == ["10.0.0.0/8"]
    assert json.loads(behind["TRIPTYCH_DASHBOARD_PROXY_GROUPS"]) == {"ml-admins": "admin"}


def test_each_component_gets_its_own_credentials_and_policies_fence_the_servers(cluster):
    """One Secret per component (its PostgreSQL role, its MinIO user) reaches only that
    component's pods; with networkPolicies.enabled each server takes connections only
    from its clients, and the real API server accepts every policy."""
    settings, _, kube = cluster
    docs = chart.documents(
        chart.template(settings, chart.Release(sets=["networkPolicies.enabled=true", "prometheus.enabled=true"]))
    )
    functions = {d["metadata"]["name"]: d for d in docs if d["kind"] == "NuclioFunction"}

    def secrets_of(env: list[dict]) -> set[str]:
        return {e["valueFrom"]["secretKeyRef"]["name"] for e in env if "valueFrom" in e}

    ingest = secrets_of(functions["ingest"]["spec"]["env"])
    assert {"triptych-pg-ingest", "triptych-s3-ingest"} <= ingest
    assert not ingest & {"triptych-postgres", "triptych-s3", "triptych-pg-api", "triptych-s3-upload"}
    # A component that never touches the buckets has no MinIO keys at all.
    assert not any(s.startswith("triptych-s3") for s in secrets_of(functions["aggregate"]["spec"]["env"]))
    assert functions["infer-shadow"]["metadata"]["annotations"]["prometheus.io/scrape"] == "true"

    policies = {d["metadata"]["name"].removeprefix("triptych-"): d for d in docs if d["kind"] == "NetworkPolicy"}
    assert set(policies) == {"kafka", "minio", "postgres", "mlflow", "prometheus", "apps", "functions"}

    def allowed(name: str) -> set[str]:
        rules = policies[name]["spec"]["ingress"][0]["from"]
        return {v for r in rules for e in r.get("podSelector", {}).get("matchExpressions", []) for v in e["values"]} | {
            r["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            for r in rules
            if "namespaceSelector" in r
        }

    assert allowed("minio") == {"function", "api", "dashboard", "mlflow"}
    assert allowed("apps") == {"prometheus", "ingress-nginx"}, "the API and the dashboard only through the ingress"
    assert "keda" in allowed("kafka")
    for policy in policies.values():
        kube.create(policy, NAMESPACE, dry_run=True)  # the real API server validates each


def test_kafka_sasl_gives_every_part_its_own_login_and_the_server_accepts_it(cluster):
    """kafka.sasl.enabled: a Secret per Kafka user; each function's trigger and process,
    MinIO's targets and KEDA's scaler log in as their own user; provisioning gets every
    password and logs in as the admin. The ACLs themselves are test_kafka_acls.py's."""
    from triptych.security.kafka_acls import KAFKA_USERS

    settings, _, kube = cluster
    docs = chart.documents(chart.template(settings, chart.Release(sets=["kafka.sasl.enabled=true"])))
    kinds = _by_kind(docs)
    assert {f"triptych-kafka-{part}" for part in (*KAFKA_USERS, "admin")} <= set(kinds["Secret"])
    assert _secret_data(kinds["Secret"]["triptych-kafka-ingest"])["username"] == "triptych-ingest"

    def env_secret(env: list[dict], name: str) -> str:
        return next(e["valueFrom"]["secretKeyRef"]["name"] for e in env if e["name"] == name)

    kafka = kinds["StatefulSet"]["triptych-kafka"]["spec"]["template"]["spec"]["containers"][0]["env"]
    protocols = next(e["value"] for e in kafka if e["name"] == "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP")
    assert set(p.split(":")[1] for p in protocols.split(",")) == {"SASL_PLAINTEXT"}
    assert env_secret(kafka, "TRIPTYCH_KAFKA_ADMIN_PASSWORD") == "triptych-kafka-admin"

    for name, fn in kinds["NuclioFunction"].items():
        component = next(e["value"] for e in fn["spec"]["env"] if e["name"] == "TRIPTYCH_COMPONENT")
        assert env_secret(fn["spec"]["env"], "TRIPTYCH_KAFKA_PASSWORD") == f"triptych-kafka-{component}", name
        for trigger in fn["spec"]["triggers"].values():
            if trigger["kind"] == "kafka-cluster":
                sasl = trigger["attributes"]["sasl"]
                assert sasl["user"] == f"triptych-{component}" and sasl["password"] == "/etc/triptych/kafka/password"
        mounted = [v["volume"]["secret"]["secretName"] for v in fn["spec"]["volumes"] if "secret" in v["volume"]]
        assert mounted == [f"triptych-kafka-{component}"], name

    api = kinds["Deployment"]["triptych-api"]["spec"]["template"]["spec"]
    provision = api["initContainers"][0]
    assert env_secret(provision["env"], "TRIPTYCH_KAFKA_PASSWORD") == "triptych-kafka-admin"
    sources = api["volumes"][0]["projected"]["sources"]
    assert {s["secret"]["items"][0]["path"] for s in sources if "kafka" in s["secret"]["name"]} == {
        f"kafka/{part}" for part in KAFKA_USERS
    }
    minio = kinds["StatefulSet"]["triptych-minio"]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {e["valueFrom"]["secretKeyRef"]["name"] for e in minio if "SASL_PASSWORD" in e["name"]} == {
        "triptych-kafka-minio"
    }
    for scaled in kinds["ScaledObject"].values():
        for trigger in scaled["spec"]["triggers"]:
            if trigger["type"] == "kafka":
                assert trigger["authenticationRef"]["name"] == "triptych-kafka-keda"
    assert "triptych-kafka-keda" in kinds["TriggerAuthentication"]
    for doc in docs:  # the real API server validates each, the operators' kinds by their CRDs
        kube.create(doc, NAMESPACE, dry_run=True)


def _secret_data(doc: dict) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in doc.get("data", {}).items()}
