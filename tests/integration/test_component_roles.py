"""Least privilege in the real PostgreSQL of the test stack: each component logs in
as its own role (`triptych up` made the logins, migration 0011 the grants), and a
component's credentials attempting another component's write, or a read of
another's secrets, are refused by the server, with nothing changed.

Every other integration test that starts a real function, the API or the dashboard
runs it under its own role, so a grant that is missing fails there: these tests
are the refusals."""

from __future__ import annotations

import io
import uuid

import psycopg2
import pytest
from psycopg2 import errors

from triptych.config import COMPONENTS, Settings

from .conftest import triptych
from .runtime_helpers import query

IMAGE = str(uuid.UUID(int=0xC0FFEE))
SHA = "c" * 64

# (component, what it tries, the statement): each is another component's write, an edit
# of the audit trail, or a read of secrets it has no use for.
# The statements more than one component tries.
WRITE_PREDICTION = (
    "INSERT INTO predictions (image_id, model_name, model_version, "
    "predicted_class, confidence, top_k) VALUES (%(image)s, 'resnet50', '1', 'cat', 0.9, '[]')"
)
DELETE_IMAGE = "DELETE FROM images WHERE image_id = %(image)s"
RELABEL_IMAGE = "UPDATE images SET ground_truth_label = 'dog' WHERE image_id = %(image)s"
READ_KEY_HASHES = "SELECT key_hash FROM api_keys"
MAKE_KEY = "INSERT INTO api_keys (key_id, name, key_hash, scopes) VALUES ('0123456789ab', 'stolen', %(sha)s, '{admin}')"
REFUSED = (
    [
        ("ingest", "write a prediction (aggregate's)", WRITE_PREDICTION),
        ("ingest", "delete an image (retention is the jobs')", DELETE_IMAGE),
        ("infer", "relabel an image", RELABEL_IMAGE),
        ("infer", "read the API keys' hashes", READ_KEY_HASHES),
        ("aggregate", "read the API keys' hashes", READ_KEY_HASHES),
        ("aggregate", "delete an image", DELETE_IMAGE),
        ("upload", "delete an image", DELETE_IMAGE),
        (
            "upload",
            "write a comparison",
            "INSERT INTO model_comparisons (image_id, model_set, model_versions, "
            "consensus_class, consensus_confidence) VALUES (%(image)s, '{}', '{}', 'cat', 1)",
        ),
        ("api", "read the dashboard's password hashes", "SELECT password_hash FROM dashboard_users"),
        ("api", "make itself an API key", MAKE_KEY),
        ("api", "delete an image", DELETE_IMAGE),
        ("dashboard", "make itself an API key", MAKE_KEY),
        ("dashboard", "clear predictions", "DELETE FROM predictions WHERE image_id = %(image)s"),
        ("jobs", "revoke an API key", "UPDATE api_keys SET revoked_at = now()"),
        ("jobs", "read the dashboard's sessions", "SELECT session_hash FROM dashboard_sessions"),
        ("retrain", "write a prediction", WRITE_PREDICTION),
        ("retrain", "relabel an image", RELABEL_IMAGE),
        ("supervisor", "read the images", "SELECT filename FROM images"),
    ]
    + [
        (component, "edit the audit trail", "UPDATE system_events SET message = 'nothing happened'")
        for component in COMPONENTS
    ]
    + [
        (component, "delete from the audit trail", "DELETE FROM system_events WHERE event_type = 'label_set'")
        for component in COMPONENTS
    ]
)


def _connect(stack: Settings, component: str):
    return psycopg2.connect(stack.model_copy(update={"component": component}).postgres_url)


@pytest.fixture(scope="module")
def planted(stack):
    """One image, owned by nobody's test, for the writes to aim at; removed after."""
    query(
        stack,
        "INSERT INTO images (image_id, bucket, object_key, sha256, filename, size_bytes, source, ground_truth_label) "
        "VALUES (%s, 'images', 'roles/planted.png', %s, 'planted.png', 1, 'unknown', 'cat') "
        "ON CONFLICT DO NOTHING RETURNING image_id",
        (IMAGE, SHA),
    )
    yield IMAGE
    query(stack, "DELETE FROM images WHERE image_id = %s RETURNING image_id", (IMAGE,))


def _snapshot(stack: Settings) -> tuple:
    return (
        query(stack, "SELECT count(*), max(ground_truth_label) FROM images WHERE image_id = %s", (IMAGE,))[0],
        query(stack, "SELECT count(*) FROM predictions WHERE image_id = %s", (IMAGE,))[0],
        query(stack, "SELECT count(*) FROM model_comparisons WHERE image_id = %s", (IMAGE,))[0],
        query(stack, "SELECT count(*), count(revoked_at) FROM api_keys")[0],
        query(stack, "SELECT count(*), md5(string_agg(message, '' ORDER BY event_id)) FROM system_events")[0],
    )


def test_every_component_logs_in_as_its_own_role(stack):
    for component in COMPONENTS:
        conn = _connect(stack, component)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT current_user, rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user")
                assert cur.fetchone() == (f"triptych_{component}", False, False)
        finally:
            conn.close()


def test_a_wrong_password_is_refused(stack):
    url = stack.model_copy(update={"component": "api"}).postgres_url
    user, _, rest = url.partition("@")
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(f"{user.rpartition(':')[0]}:not-the-password@{rest}")


@pytest.mark.parametrize(("component", "attempt", "statement"), REFUSED, ids=[f"{c}: {a}" for c, a, _ in REFUSED])
def test_a_component_cannot_touch_what_is_not_its_own(stack, planted, component, attempt, statement):
    before = _snapshot(stack)
    conn = _connect(stack, component)
    try:
        with pytest.raises(errors.InsufficientPrivilege), conn, conn.cursor() as cur:
            cur.execute(statement, {"image": IMAGE, "sha": SHA})
    finally:
        conn.close()
    assert _snapshot(stack) == before, f"{component} could {attempt}"


def test_the_api_dashboard_and_their_children_run_as_their_components(stack):
    """The servers `triptych up` started are their components (and so log in as their
    roles: Settings.postgres_url, tests/unit/test_component_roles.py); they hold no
    connection between requests for pg_stat_activity to show, so their environment is
    read instead."""
    import psutil

    found = {}
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if cmdline[-1:] in (["api"], ["dashboard"]) and "triptych.cli" in cmdline:
            try:
                environ = proc.environ()
            except psutil.Error:
                continue
            if environ.get("TRIPTYCH_DATA_DIR") == str(stack.data_dir):
                found[cmdline[-1]] = environ.get("TRIPTYCH_COMPONENT")
    assert found == {"api": "api", "dashboard": "dashboard"}


def test_an_upload_through_the_running_api_is_stored_under_the_api_role(stack):
    """POST /upload runs the upload function's code inside the API: the API's role and
    MinIO user must store and register the image (its own grants, not the owner's)."""
    import httpx2 as httpx

    from ..images import image_bytes
    from .conftest import make_key

    name = f"roles-api-{uuid.uuid4().hex[:8]}.png"
    reply = httpx.post(
        f"{stack.api_url}/upload",
        files={"file": (name, image_bytes("PNG"))},
        headers={"X-API-Key": make_key(stack, ["upload"])},
        timeout=60,
    )
    assert reply.status_code == 201, reply.text
    rows = query(stack, "SELECT object_key FROM images WHERE image_id = %s", (reply.json()["image_id"],))
    assert rows and rows[0][0] == reply.json()["object_key"]


def test_up_again_keeps_every_password(stack):
    """A second `up` changes no component's password (a replica running meanwhile keeps
    logging in)."""
    before = {c: (stack.credentials_path / "postgres" / c).read_text() for c in COMPONENTS}
    proc = triptych("up")
    assert proc.returncode == 0, proc.stderr
    after = {c: (stack.credentials_path / "postgres" / c).read_text() for c in COMPONENTS}
    assert after == before
    assert all(oct((stack.credentials_path / "postgres" / c).stat().st_mode)[-3:] == "600" for c in COMPONENTS)
    conn = _connect(stack, "ingest")
    conn.close()


# --- MinIO: each component signs as its own user, whose policy allows only its work --------

BUCKET_REFUSALS = [
    ("upload", "read an image", lambda s3, b: s3.get_object(b, PROBE).read()),
    ("upload", "list the bucket", lambda s3, b: list(s3.list_objects(b))),
    ("upload", "delete an image", lambda s3, b: s3.remove_object(b, PROBE)),
    ("upload", "write a report", lambda s3, b: _put(s3, "reports", "roles/forged.json")),
    ("infer", "write an image", lambda s3, b: _put(s3, b, "roles/forged.png")),
    ("infer", "delete an image", lambda s3, b: s3.remove_object(b, PROBE)),
    ("ingest", "write outside quarantine/", lambda s3, b: _put(s3, b, "roles/forged.png")),
    ("dashboard", "write an image", lambda s3, b: _put(s3, b, "roles/forged.png")),
    ("dashboard", "delete an image", lambda s3, b: s3.remove_object(b, PROBE)),
    ("api", "delete an image", lambda s3, b: s3.remove_object(b, PROBE)),
    ("retrain", "delete an image", lambda s3, b: s3.remove_object(b, PROBE)),
    ("jobs", "write a data set", lambda s3, b: _put(s3, "datasets", "roles/forged/manifest.json")),
]
PROBE = "roles/probe.png"


def _put(s3, bucket: str, key: str):
    return s3.put_object(bucket, key, io.BytesIO(b"forged"), 6)


@pytest.fixture(scope="module")
def probe(stack):
    """One object every component's test aims at, put there as MinIO's root user."""
    from triptych.storage import minio_client

    root = minio_client(stack)
    _put(root, stack.images_bucket, PROBE)
    yield root
    for bucket, key in ((stack.images_bucket, PROBE), (stack.images_bucket, "roles/forged.png")):
        root.remove_object(bucket, key)


@pytest.mark.parametrize(
    ("component", "attempt", "act"), BUCKET_REFUSALS, ids=[f"{c}: {a}" for c, a, _ in BUCKET_REFUSALS]
)
def test_a_component_cannot_touch_buckets_beyond_its_work(stack, probe, component, attempt, act):
    from minio.error import S3Error

    from triptych.storage import minio_client

    with pytest.raises(S3Error) as refused:
        act(minio_client(stack.model_copy(update={"component": component})), stack.images_bucket)
    assert refused.value.code == "AccessDenied", f"{component} could {attempt}"
    assert probe.stat_object(stack.images_bucket, PROBE).size == 6, "the probe is still there"
    forged = [o.object_name for o in probe.list_objects(stack.images_bucket, prefix="roles/forged")]
    assert forged == []


def test_each_component_can_do_its_own_work_in_the_buckets(stack, probe):
    from triptych.storage import minio_client

    def as_(component):
        return minio_client(stack.model_copy(update={"component": component}))

    images = stack.images_bucket
    _put(as_("upload"), images, "roles/forged.png")  # upload puts images
    assert as_("infer").get_object(images, PROBE).read() == b"forged"  # infer reads them
    _put(as_("ingest"), images, "quarantine/roles/forged.png")  # ingest quarantines
    as_("ingest").remove_object(images, "quarantine/roles/forged.png")
    assert any(as_("ingest").list_objects(images, prefix="roles/"))  # its sweep lists
    assert as_("dashboard").get_object(images, PROBE).read() == b"forged"


def test_components_that_never_touch_the_buckets_have_no_keys(stack):
    for component in ("aggregate", "supervisor"):
        with pytest.raises(FileNotFoundError, match=f"no credentials for component '{component}'"):
            _ = stack.model_copy(update={"component": component}).s3_credentials
