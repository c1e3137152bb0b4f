"""The pure parts of `triptych kube up`: the node's configuration files, its
certificates, and the single-layer OCI archives of its small images."""

from __future__ import annotations

import gzip
import hashlib
import io
import ipaddress
import json
import tarfile

import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from triptych.kube import node_config, oci
from triptych.kube.node_config import NodeLayout
from triptych.kube.pki import Pki, control_plane_identities


def test_kubelet_runs_on_cgroupfs_v1_and_points_pods_at_the_cluster_dns(tmp_path):
    config = yaml.safe_load(node_config.kubelet_config(NodeLayout(tmp_path)))
    assert config["cgroupDriver"] == "cgroupfs"
    assert config["failCgroupV1"] is False
    assert config["cgroupRoot"] == node_config.CGROUP_ROOT
    assert config["clusterDNS"] == [node_config.DNS_SERVICE_IP]
    assert config["containerRuntimeEndpoint"] == f"unix://{tmp_path / 'run' / 'containerd.sock'}"
    assert config["authentication"]["anonymous"]["enabled"] is False


def test_every_path_of_the_node_lies_under_its_root(tmp_path):
    lay = NodeLayout(tmp_path / "kube")
    rendered = (
        node_config.containerd_config(lay)
        + node_config.cni_config(lay)
        + node_config.kubelet_config(lay)
        + node_config.kube_proxy_config(lay)
    )
    paths = [word.strip('",') for word in rendered.split() if word.strip('",').startswith("/")]
    outside = [
        p for p in paths if not p.startswith(str(lay.root)) and p not in ("/usr/lib/cni", node_config.CGROUP_ROOT)
    ]
    assert outside == []


def test_addresses_do_not_overlap_the_multi_host_cluster_or_each_other():
    from triptych.cluster.topology import SUBNET

    networks = [
        node_config.LINK,
        ipaddress.ip_network(node_config.POD_CIDR),
        ipaddress.ip_network(node_config.SERVICE_CIDR),
        SUBNET,
    ]
    for i, a in enumerate(networks):
        for b in networks[i + 1 :]:
            assert not a.overlaps(b), (a, b)
    assert ipaddress.ip_address(node_config.DNS_SERVICE_IP) in ipaddress.ip_network(node_config.SERVICE_CIDR)
    assert ipaddress.ip_address(node_config.NODE_IP) in node_config.LINK


def test_containerd_uses_runc_with_cgroupfs_and_the_node_s_own_pause_image(tmp_path):
    import tomllib

    config = tomllib.loads(node_config.containerd_config(NodeLayout(tmp_path)))
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["sandbox_image"] == node_config.PAUSE_IMAGE
    runc = cri["containerd"]["runtimes"]["runc"]
    assert runc["runtime_type"] == "io.containerd.runc.v2"
    assert runc["options"]["SystemdCgroup"] is False


def test_certificates_chain_to_the_ca_with_the_identities_rbac_knows(tmp_path):
    pki = Pki(tmp_path)
    pki.create("node-a", "10.252.0.2", "10.96.0.1")
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    for identity in control_plane_identities("node-a"):
        cert = x509.load_pem_x509_certificate(pki.path(identity.stem, "crt").read_bytes())
        cert.verify_directly_issued_by(ca)
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == identity.user
        assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == list(
            identity.groups
        )
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    serving = x509.load_pem_x509_certificate(pki.path("apiserver", "crt").read_bytes())
    names = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(a) for a in names.get_values_for_type(x509.IPAddress)} >= {"10.252.0.2", "10.96.0.1"}
    assert "kubernetes.default.svc" in names.get_values_for_type(x509.DNSName)
    assert (tmp_path / "ca.key").stat().st_mode & 0o077 == 0


def test_a_second_create_keeps_the_certificates(tmp_path):
    pki = Pki(tmp_path)
    pki.create("node-a", "10.252.0.2", "10.96.0.1")
    before = pki.ca_cert.read_bytes()
    pki.create("node-a", "10.252.0.2", "10.96.0.1")
    assert pki.ca_cert.read_bytes() == before


def _layout_of(archive) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_a_scratch_image_archive_is_a_valid_oci_layout_and_the_same_every_time(tmp_path):
    binary = tmp_path / "tool"
    binary.write_bytes(b"\x7fELF pretend")
    image = oci.ScratchImage(
        "localhost/triptych/tool:1.0", {"/usr/local/bin/tool": binary}, entrypoint=["/usr/local/bin/tool"]
    )
    first = oci.write_archive(image, tmp_path / "a.tar")
    second = oci.write_archive(image, tmp_path / "b.tar")
    assert first.read_bytes() == second.read_bytes()
    files = _layout_of(first)
    for name, data in files.items():  # every blob is named by its content's digest
        if name.startswith("blobs/sha256/"):
            assert hashlib.sha256(data).hexdigest() == name.rsplit("/", 1)[1]
    index = json.loads(files["index.json"])
    entry = index["manifests"][0]
    assert entry["annotations"]["io.containerd.image.name"] == image.name
    manifest = json.loads(files[f"blobs/sha256/{entry['digest'].split(':')[1]}"])
    config = json.loads(files[f"blobs/sha256/{manifest['config']['digest'].split(':')[1]}"])
    assert config["config"]["Entrypoint"] == ["/usr/local/bin/tool"]
    layer = gzip.decompress(files[f"blobs/sha256/{manifest['layers'][0]['digest'].split(':')[1]}"])
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(layer).hexdigest()]
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        member = tar.getmember("usr/local/bin/tool")
        assert member.mode == 0o755 and tar.extractfile(member).read() == b"\x7fELF pretend"


def test_the_serving_image_installs_no_torch_and_only_mlflow_s_client():
    from triptych.kube.image import TRAINING_ONLY, _requirement_name, serving_requirements

    names = {_requirement_name(r) for r in serving_requirements()}
    assert not names & TRAINING_ONLY
    assert {"torch", "torchvision", "mlrun"} <= TRAINING_ONLY
    assert "mlflow-skinny" in names and "mlflow" not in names
    assert {"onnxruntime", "confluent-kafka", "minio", "psycopg2-binary", "msgpack"} <= names


def test_only_retrain_runs_from_the_training_image():
    from triptych.config import REPO_ROOT

    declared = yaml.safe_load((REPO_ROOT / "infra/helm/triptych/files/functions.yaml").read_text())["functions"]
    assert {name for name, fn in declared.items() if fn["imageRole"] == "training"} == {"retrain"}
    assert {fn["imageRole"] for fn in declared.values()} == {"serving", "training"}


def test_node_values_use_the_local_images_and_requests_that_fit_two_cores():
    from triptych.kube.deployment import SMALL_REQUESTS, node_values

    images = {
        role: f"localhost/triptych/{role}:t1"
        for role in ("serving", "mlflow", "kafka", "postgres", "prometheus", "minio", "nuclio-controller")
    }
    declared = {"ingest": {"resources": {"limits": {"cpu": "500m", "memory": "512Mi"}}}}
    values = node_values(images, declared)
    assert values["image"] == {
        "repository": "localhost/triptych/serving",
        "tag": "t1",
        "pullPolicy": "IfNotPresent",
        "training": {"repository": "localhost/triptych/serving", "tag": "t1"},
    }
    assert values["postgres"]["mode"] == "statefulset"
    assert values["nodePorts"] == {"enabled": True, "host": node_config.NODE_IP}
    override = values["functions"]["overrides"]["ingest"]["resources"]
    assert override == {"requests": SMALL_REQUESTS, "limits": {"cpu": "500m", "memory": "512Mi"}}
    with_training = node_values({**images, "training": "localhost/triptych/training:t1"}, declared)
    assert with_training["image"]["training"]["repository"] == "localhost/triptych/training"
    assert values["kafka"]["sasl"] == {"enabled": False}, "Kafka logins only when asked (--kafka-sasl)"
    assert node_values(images, declared, kafka_sasl=True)["kafka"]["sasl"] == {"enabled": True}


def test_a_scratch_image_carries_its_environment(tmp_path):
    binary = tmp_path / "minio"
    binary.write_bytes(b"bin")
    image = oci.ScratchImage(
        "localhost/triptych/minio:1",
        {"/usr/local/bin/minio": binary},
        entrypoint=["/usr/local/bin/minio"],
        env={"HOME": "/tmp"},
    )
    files = _layout_of(oci.write_archive(image, tmp_path / "m.tar"))
    index = json.loads(files["index.json"])
    manifest = json.loads(files[f"blobs/sha256/{index['manifests'][0]['digest'].split(':')[1]}"])
    config = json.loads(files[f"blobs/sha256/{manifest['config']['digest'].split(':')[1]}"])
    assert "HOME=/tmp" in config["config"]["Env"]
