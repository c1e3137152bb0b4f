"""The pieces of least privilege in PostgreSQL that need no server: role names, the
password files, the component a replica takes, and the chart's list of components
(the real refusals are tests/integration/test_component_roles.py)."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from triptych.config import COMPONENTS, Settings, component_password_path, component_role
from triptych.kube.chart import CHART_DIR
from triptych.security.bucket_policies import S3_COMPONENTS, policy_for
from triptych.security.db_roles import COMPONENT_ENV, ensure_password_files, take_declared_component


def test_each_component_has_its_role_and_an_unknown_one_is_refused(tmp_path):
    assert component_role("ingest") == "triptych_ingest"
    with pytest.raises(ValueError, match="no such component 'ingest; DROP'"):
        component_role("ingest; DROP")
    with pytest.raises(ValueError):
        component_password_path(tmp_path, "../etc")


def test_a_component_logs_in_as_its_role_with_its_own_password(tmp_path):
    passwords = ensure_password_files(tmp_path)
    assert set(passwords) == set(COMPONENTS) and len(set(passwords.values())) == len(COMPONENTS)
    assert ensure_password_files(tmp_path) == passwords, "made once, kept after"
    assert oct((tmp_path / "postgres" / "api").stat().st_mode)[-3:] == "600"
    url = Settings(component="api", credentials_dir=tmp_path, postgres_port=5999).postgres_url
    assert url == f"postgresql://triptych_api:{passwords['api']}@127.0.0.1:5999/triptych"
    # A given URL names its own role (the chart's): the component does not change it.
    given = "postgresql://someone:pw@db:5432/triptych"
    assert Settings(component="api", credentials_dir=tmp_path, database_url=given).postgres_url == given
    assert Settings(credentials_dir=tmp_path).postgres_url.startswith("postgresql://triptych:")


def test_a_missing_password_file_says_what_makes_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="`triptych up` makes them"):
        _ = Settings(component="jobs", credentials_dir=tmp_path).postgres_url


def test_a_replica_takes_its_declared_component_never_its_supervisors():
    environ = {COMPONENT_ENV: "supervisor", "OTHER": "1"}
    take_declared_component(environ, {COMPONENT_ENV: "ingest"})
    assert environ == {COMPONENT_ENV: "ingest", "OTHER": "1"}
    take_declared_component(environ, {})  # a function of a test project names none: the owner
    assert environ == {"OTHER": "1"}


def test_the_chart_knows_the_same_components():
    helpers = (CHART_DIR / "templates" / "_helpers.tpl").read_text()
    listed = re.search(r'define "triptych.components" -}}\n(\[.*\])', helpers)
    assert listed and tuple(json.loads(listed.group(1))) == COMPONENTS
    declared = yaml.safe_load((CHART_DIR / "files" / "functions.yaml").read_text())["functions"]
    assert {fn["component"] for fn in declared.values()} <= set(COMPONENTS)
    assert declared["infer-shadow"]["component"] == "infer"
    s3_listed = re.search(r'define "triptych.s3Components" -}}\n(\[.*\])', helpers)
    assert s3_listed and tuple(json.loads(s3_listed.group(1))) == S3_COMPONENTS


def test_each_bucket_policy_allows_only_its_components_work():
    settings = Settings.model_construct()
    upload = policy_for("upload", settings)["Statement"]
    assert {a for st in upload for a in st["Action"]} == {"s3:PutObject", "s3:GetBucketLocation"}
    assert [st["Resource"] for st in upload if "s3:PutObject" in st["Action"]] == [["arn:aws:s3:::images/*"]]
    dashboard = {a for st in policy_for("dashboard", settings)["Statement"] for a in st["Action"]}
    assert not dashboard & {"s3:DeleteObject", "s3:DeleteObjectVersion", "s3:ListBucket"}
    with pytest.raises(ValueError, match="no rights"):
        policy_for("aggregate", settings)
