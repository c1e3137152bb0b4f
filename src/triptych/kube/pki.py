"""The node's certificates and kubeconfigs, made once by `triptych kube up`, as kubeadm makes them.

One CA signs every certificate. Each component authenticates to the API server with
a client certificate whose subject is the identity Kubernetes' default RBAC already
knows (system:kube-controller-manager, system:kube-scheduler, system:node:<name>,
system:kube-proxy), so no binding of ours is needed for the control plane; the admin
kubeconfig is in system:masters. The API server's serving certificate names every
address a client dials: the node's, the Service's ClusterIP and its DNS names.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

FRONT_PROXY_CLIENT = "front-proxy-client"
# Long enough for a development cluster, short enough not to be a forever-credential.
VALIDITY = datetime.timedelta(days=365)


@dataclass(frozen=True)
class Identity:
    """A client certificate's file stem, user (CN) and groups (O)."""

    stem: str
    user: str
    groups: tuple[str, ...] = ()


def control_plane_identities(node_name: str) -> list[Identity]:
    return [
        Identity("admin", "triptych-admin", ("system:masters",)),
        Identity("controller-manager", "system:kube-controller-manager"),
        Identity("scheduler", "system:kube-scheduler"),
        Identity("kubelet", f"system:node:{node_name}", ("system:nodes",)),
        Identity("kube-proxy", "system:kube-proxy"),
        # The API server's own identity when it calls the kubelet (logs, exec, port-forward).
        Identity("apiserver-kubelet-client", "kube-apiserver-kubelet-client", ("system:masters",)),
        # The API server's identity when it proxies to an aggregated API (KEDA's
        # external metrics): the extension server trusts the user it names in headers.
        Identity(FRONT_PROXY_CLIENT, FRONT_PROXY_CLIENT),
    ]


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)


def _name(common: str, groups: tuple[str, ...] = ()) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
        + [x509.NameAttribute(NameOID.COMMON_NAME, common)]
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)  # clock skew


class Pki:
    """The files under `folder`: ca.{crt,key}, <stem>.{crt,key}, sa.{key,pub}."""

    def __init__(self, folder: Path):
        self.folder = folder

    def path(self, stem: str, suffix: str) -> Path:
        return self.folder / f"{stem}.{suffix}"

    @property
    def ca_cert(self) -> Path:
        return self.path("ca", "crt")

    def exists(self) -> bool:
        return self.ca_cert.exists() and self.path("sa", "pub").exists()

    def create(self, node_name: str, node_ip: str, service_ip: str) -> None:
        """Every certificate the node needs (a second call keeps what is there)."""
        if self.exists():
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        ca_key = _key()
        ca = (
            x509.CertificateBuilder()
            .subject_name(_name("triptych-kube-ca"))
            .issuer_name(_name("triptych-kube-ca"))
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now())
            .not_valid_after(_now() + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(ca_key, hashes.SHA256())
        )
        for identity in control_plane_identities(node_name):
            self._issue(
                ca, ca_key, identity.stem, _name(identity.user, identity.groups), [ExtendedKeyUsageOID.CLIENT_AUTH]
            )
        names = [
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            "localhost",
            node_name,
        ]
        addresses = [node_ip, service_ip, "127.0.0.1"]
        self._issue(
            ca, ca_key, "apiserver", _name("kube-apiserver"), [ExtendedKeyUsageOID.SERVER_AUTH], names, addresses
        )
        self._issue(
            ca,
            ca_key,
            "kubelet-serving",
            _name(node_name),
            [ExtendedKeyUsageOID.SERVER_AUTH],
            [node_name, "localhost"],
            [node_ip, "127.0.0.1"],
        )
        sa_key = _key()
        _write_key(self.path("sa", "key"), sa_key)
        self.path("sa", "pub").write_bytes(
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        _write_key(self.path("ca", "key"), ca_key)
        # The CA last: its presence is what `exists()` reads as "complete".
        self.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    def _issue(
        self,
        ca: x509.Certificate,
        ca_key: rsa.RSAPrivateKey,
        stem: str,
        subject: x509.Name,
        usages: list,
        dns: Sequence[str] = (),
        ips: Sequence[str] = (),
    ) -> None:
        key = _key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now())
            .not_valid_after(_now() + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        )
        if dns or ips:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
                ),
                critical=False,
            )
        cert = builder.sign(ca_key, hashes.SHA256())
        _write_key(self.path(stem, "key"), key)
        self.path(stem, "crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def kubeconfig(self, stem: str, server: str, dest: Path) -> Path:
        """A kubeconfig for `stem`'s client certificate, by file path (nothing copied)."""
        text = yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "triptych",
                "clusters": [
                    {"name": "triptych", "cluster": {"server": server, "certificate-authority": str(self.ca_cert)}}
                ],
                "users": [
                    {
                        "name": stem,
                        "user": {
                            "client-certificate": str(self.path(stem, "crt")),
                            "client-key": str(self.path(stem, "key")),
                        },
                    }
                ],
                "contexts": [{"name": "triptych", "context": {"cluster": "triptych", "user": stem}}],
            }
        )
        if not dest.exists() or dest.read_text() != text:  # its readers may watch it
            dest.write_text(text)
        dest.chmod(0o600)
        return dest
