"""What the single node is made of, as data: its addresses, its folders, and the
configuration files of containerd, the CNI bridge, the kubelet and kube-proxy.

Pure functions of a `NodeLayout`, so the unit tests read them without a node.
Every path lies under one root (the stack's data folder), so that `kube down`
removes one folder and nothing of the node is left elsewhere.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path

import yaml

NODE_NAME = "triptych-node"
NAMESPACE = "triptych-kube"  # the node's network namespace (`ip netns`)
HOST_VETH = "tk-kube"  # the root namespace's end of the node's veth pair
# A /30 of our own, apart from the multi-host cluster's 10.251.0.0/24: the root
# namespace holds .1 (the node's default route), the node .2.
LINK = ipaddress.ip_network("10.252.0.0/30")
HOST_IP = str(LINK.network_address + 1)
NODE_IP = str(LINK.network_address + 2)
POD_CIDR = "10.244.0.0/16"
NODE_POD_CIDR = "10.244.0.0/24"  # the bridge's host-local range on the one node
SERVICE_CIDR = "10.96.0.0/16"
API_SERVICE_IP = "10.96.0.1"  # the first address of SERVICE_CIDR: the `kubernetes` Service
DNS_SERVICE_IP = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
API_PORT = 6443
CGROUP_ROOT = "/triptych-kube"  # the kubelet's cgroupRoot, one per v1 hierarchy
PAUSE_IMAGE = "localhost/triptych/pause:3.10"

# kubelet sets these when it starts (setupKernelTunables). Inside the node's mount
# namespace a file holding the value is bind-mounted over each, so the host's own
# settings are never changed.
KUBELET_SYSCTLS = {
    "vm/overcommit_memory": "1",
    "vm/panic_on_oom": "0",
    "kernel/panic": "10",
    "kernel/panic_on_oops": "1",
    "kernel/keys/root_maxkeys": "1000000",
    "kernel/keys/root_maxbytes": "25000000",
}


@dataclass(frozen=True)
class NodeLayout:
    """Every file and folder of the node, under `root`."""

    root: Path

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def run(self) -> Path:
        return self.root / "run"  # pid files, sockets

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd"

    @property
    def containerd_root(self) -> Path:
        return self.root / "containerd"

    @property
    def containerd_state(self) -> Path:
        return self.run / "containerd"

    @property
    def containerd_socket(self) -> Path:
        return self.run / "containerd.sock"

    @property
    def kubelet_root(self) -> Path:
        return self.root / "kubelet"

    @property
    def pod_logs(self) -> Path:
        return self.root / "pod-logs"

    @property
    def volumes(self) -> Path:
        return self.root / "volumes"  # the PersistentVolumes' folders

    @property
    def cni_conf(self) -> Path:
        return self.etc / "cni"

    @property
    def cni_state(self) -> Path:
        return self.root / "cni-state"

    @property
    def sysctls(self) -> Path:
        return self.etc / "sysctl"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    def kubeconfig(self, component: str) -> Path:
        return self.etc / f"{component}.kubeconfig"

    def pid_file(self, process: str) -> Path:
        return self.run / f"{process}.pid"

    def log(self, process: str) -> Path:
        return self.logs / f"{process}.log"

    @property
    def api_url(self) -> str:
        return f"https://{NODE_IP}:{API_PORT}"


def containerd_config(layout: NodeLayout) -> str:
    """containerd 1.6's CRI on a socket of our own, runc with cgroupfs (crun fails on
    this hybrid cgroup v1 machine), the pause image we build, and no registry mirror:
    every image is imported, none pulled."""
    return f"""version = 2
root = "{layout.containerd_root}"
state = "{layout.containerd_state}"

[grpc]
  address = "{layout.containerd_socket}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  enable_unprivileged_ports = true
  # The kubelet asks for -998 (sandboxes) down to -997 (Guaranteed pods); lowering
  # oom_score_adj needs CAP_SYS_RESOURCE, which no process here has. Clamp each to
  # containerd's own value instead, as rootless containerd does.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{layout.cni_conf}"
"""


def cni_config(layout: NodeLayout) -> str:
    """One bridge for the node's pods, with portmap for hostPort. hairpinMode lets a
    pod reach itself through its own Service."""
    return json.dumps(
        {
            "cniVersion": "1.0.0",
            "name": "triptych-pods",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": "cni0",
                    "isGateway": True,
                    "ipMasq": True,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": NODE_POD_CIDR}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(layout.cni_state),
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        },
        indent=2,
    )


def kubelet_config(layout: NodeLayout) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "cgroupDriver": "cgroupfs",  # PID 1 is no systemd here
            "cgroupRoot": CGROUP_ROOT,
            "failSwapOn": False,
            "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
            "address": NODE_IP,
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(layout.pki / "ca.crt")},
            },
            "authorization": {"mode": "Webhook"},
            "tlsCertFile": str(layout.pki / "kubelet-serving.crt"),
            "tlsPrivateKeyFile": str(layout.pki / "kubelet-serving.key"),
            "clusterDNS": [DNS_SERVICE_IP],
            "clusterDomain": CLUSTER_DOMAIN,
            "resolvConf": str(layout.etc / "resolv.conf"),
            "podLogsDir": str(layout.pod_logs),
            "staticPodPath": "",
            # The machine's disk is shared with everything else: evict on what is really
            # short, never because the images filled a quarter of a big disk.
            "evictionHard": {"memory.available": "200Mi", "nodefs.available": "3%", "imagefs.available": "3%"},
            "imageGCHighThresholdPercent": 98,
            "imageGCLowThresholdPercent": 95,
            "maxPods": 60,
            "serializeImagePulls": False,
            "failCgroupV1": False,  # this machine has cgroup v1 only (hybrid)
            "protectKernelDefaults": False,  # it sets the sysctls we bind-mounted above
        },
        sort_keys=False,
    )


def kube_proxy_config(layout: NodeLayout) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "mode": "iptables",
            "clusterCIDR": POD_CIDR,
            "bindAddress": NODE_IP,
            "hostnameOverride": NODE_NAME,
            "clientConnection": {"kubeconfig": str(layout.kubeconfig("kube-proxy"))},
            # NodePorts answer on the node's address, which is what the host dials.
            "nodePortAddresses": [f"{NODE_IP}/32"],
            # conntrack's table size is the host's (one per kernel): leave it alone.
            "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        },
        sort_keys=False,
    )


def resolv_conf() -> str:
    # What the kubelet gives pods with dnsPolicy Default (CoreDNS among them):
    # nothing beyond the node is reachable, so no upstream resolver.
    return "nameserver 127.0.0.1\noptions ndots:1\n"
