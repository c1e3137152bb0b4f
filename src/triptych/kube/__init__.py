"""Triptych on Kubernetes: the function image, the Helm chart, and the real
kube-apiserver (with etcd) that CI installs the chart into."""
