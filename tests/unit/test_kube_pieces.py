"""The pure parts of the Kubernetes path: the chart's files against the declaration,
the image name a deploy is given, the MLRun function pointed at the image."""

from __future__ import annotations

import json

import yaml

from triptych.cli.deploy_command import _split_image
from triptych.config import REPO_ROOT
from triptych.kube.chart_functions import BROKERS_PLACEHOLDER
from triptych.kube.go_tools import ETCD, HELM, KUBE_APISERVER
from triptych.runtime.deploy import from_image
from triptych.runtime.spec import load_functions

CHART = REPO_ROOT / "infra" / "helm" / "triptych"


def test_the_values_schema_knows_every_declared_function_and_no_other():
    schema = json.loads((CHART / "values.schema.json").read_text())
    names = schema["properties"]["functions"]["properties"]["overrides"]["propertyNames"]["enum"]
    assert sorted(names) == sorted(load_functions(REPO_ROOT / "project.yaml"))


def test_every_default_value_is_described_by_the_schema():
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def keys(tree: dict, props: dict, path: str = "") -> list[str]:
        missing = []
        for key, value in tree.items():
            if key not in props:
                missing.append(path + key)
            elif isinstance(value, dict) and "properties" in props[key]:
                missing += keys(value, props[key]["properties"], f"{path}{key}.")
        return missing

    assert keys(values, schema["properties"]) == []


def test_the_chart_functions_carry_no_address_of_this_machine():
    text = (CHART / "files" / "functions.yaml").read_text()
    assert "127.0.0.1" not in text and "localhost" not in text
    assert BROKERS_PLACEHOLDER in text


def test_an_image_name_splits_at_its_tag_not_at_a_registry_port():
    assert _split_image("registry.example.com/triptych:0.1.0") == ("registry.example.com/triptych", "0.1.0")
    assert _split_image("host:5000/team/triptych:abc") == ("host:5000/team/triptych", "abc")
    assert _split_image("host:5000/team/triptych") == ("host:5000/team/triptych", "")
    assert _split_image("triptych") == ("triptych", "")


def test_the_kubernetes_wrapper_module_replaces_every_staging_module_with_its_release():
    mod = KUBE_APISERVER.go_mod()
    assert "require k8s.io/kubernetes v1.34.4" in mod
    assert mod.count("=> k8s.io/") == 31 and "k8s.io/client-go => k8s.io/client-go v0.34.4" in mod
    assert "go.etcd.io/etcd/client/v3 => go.etcd.io/etcd/client/v3 v3.6.16" in ETCD.go_mod()
    assert HELM.package == "helm.sh/helm/v4/cmd/helm" and 'import _ "helm.sh/helm/v4/cmd/helm"' in HELM.tools_go()


def test_an_mlrun_function_is_pointed_at_the_image_never_its_source():
    import mlrun

    fn = mlrun.new_function("upload", kind="nuclio")
    fn.spec.function_handler = "handler-nuclio:handler"
    from_image(fn, "registry.test/triptych:1", "functions/upload/handler.py")
    spec = fn.spec.base_spec["spec"]
    assert spec["image"] == "registry.test/triptych:1" and spec["build"]["codeEntryType"] == "image"
    assert spec["handler"] == "handler:handler"
    assert fn.get_env("NUCLIO_PYTHON_PATH") == "/opt/triptych/functions/upload"
