"""The dashboard's sign-in and roles against the real dashboard (`triptych dashboard`)
and the real PostgreSQL: every refusal the security issue lists, each checked for
its status and for nothing written.

The callbacks are called as the browser's Dash renderer calls them (a POST to
`/_dash-update-component` with the session cookie and the `X-CSRFToken` header), so
the role gate and the CSRF check are exercised exactly as a page would.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import uuid

import httpx2 as httpx
import pytest

from triptych.db.connection import Database
from triptych.db.images import NewImage, register_image
from triptych.models.classes import KnownClasses
from triptych.security.sessions import make_login_link
from triptych.security.users import add_user

from .conftest import CLI, make_key
from .pipeline_helpers import CliServer
from .runtime_helpers import query

pytestmark = pytest.mark.integration
PASSWORD = "a long enough password"
PROXY_GROUPS = {"ml-admins": "admin", "ml-labellers": "labeller"}


@pytest.fixture(scope="module")
def board(stack, tmp_path_factory):
    server = CliServer("dashboard", {}, tmp_path_factory.mktemp("login") / "dashboard.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxied_board(stack, tmp_path_factory):
    """A dashboard that believes an authenticating proxy on loopback."""
    server = CliServer(
        "dashboard",
        {
            "TRIPTYCH_DASHBOARD_TRUSTED_PROXIES": json.dumps(["127.0.0.1/32"]),
            "TRIPTYCH_DASHBOARD_PROXY_GROUPS": json.dumps(PROXY_GROUPS),
        },
        tmp_path_factory.mktemp("login-proxy") / "dashboard.log",
    )
    yield server
    server.stop()


def _user(stack, role: str) -> str:
    name = f"{role}-{uuid.uuid4().hex[:6]}"
    Database(stack).transaction(lambda cur: add_user(cur, name, role, PASSWORD))
    return name


def _form_token(client: httpx.Client) -> str:
    page = client.get("/login")
    assert page.status_code == 200 and 'name="username"' in page.text and 'name="password"' in page.text
    return page.text.split('name="form_token" value="')[1].split('"')[0]


def sign_in(board, stack, role: str, **fields) -> httpx.Client:
    """A client signed in through the login form as a new user of `role` (or with `fields`)."""
    client = httpx.Client(base_url=board.url, timeout=30)
    fields = fields or {"username": _user(stack, role), "password": PASSWORD}
    reply = client.post("/login", data={"form_token": _form_token(client), "next": "/", **fields})
    assert reply.status_code == 303, reply.text
    client.headers["X-CSRFToken"] = client.cookies["_csrf_token"]
    return client


def _image(stack) -> str:
    image_id = str(uuid.uuid4())
    Database(stack).transaction(
        lambda cur: register_image(
            cur,
            NewImage(
                image_id=image_id,
                bucket=stack.images_bucket,
                object_key=f"tests/login/{image_id}.png",
                object_version="",
                sha256=uuid.uuid4().hex * 2,
                filename="x.png",
                size_bytes=10,
                source="upload",
            ),
        )
    )
    return image_id


def _label_callback(image_id: str, label: str) -> dict:
    """The Review page's Save, as Dash's renderer posts it."""

    def key(kind):
        return {"id": image_id, "type": kind}

    def name(kind, prop):
        return json.dumps(key(kind), separators=(",", ":"), sort_keys=True) + "." + prop

    # `output` names the callback by its pattern (MATCH); `outputs` names the component it answers for.
    pattern = json.dumps({"id": ["MATCH"], "type": "review-status"}, separators=(",", ":"), sort_keys=True)
    return {
        "output": f"{pattern}.children",
        "outputs": {"id": key("review-status"), "property": "children"},
        "inputs": [
            {"id": key("review-save"), "property": "n_clicks", "value": 1},
            {"id": key("review-label"), "property": "n_submit"},
        ],
        "state": [
            {"id": key("review-label"), "property": "value", "value": label},
            {"id": key("review-save"), "property": "id", "value": key("review-save")},
        ],
        "changedPropIds": [name("review-save", "n_clicks")],
    }


def _label_of(stack, image_id: str):
    return query(stack, "SELECT ground_truth_label FROM images WHERE image_id = %s", (image_id,))[0][0]


@pytest.fixture(scope="module")
def a_class(stack) -> str:
    """A class the models know (from the champions' cards: trained quickly here when the registry has none)."""
    from triptych.models.bootstrap import QUICK, missing_champions, train_as_mlrun_job

    for name in missing_champions(stack):
        train_as_mlrun_job(name, QUICK, policy="always")
    known = sorted(KnownClasses(stack, Database(stack))())
    assert known, "the test stack's champions name their classes"
    return known[0]


def test_without_a_session_a_page_redirects_to_login_and_anything_else_is_401(board):
    page = httpx.get(f"{board.url}/review", headers={"Accept": "text/html"})
    assert page.status_code == 302 and page.headers["location"] == "/login?next=/review"
    for path in ("/_dash-layout", "/media/x/thumb", "/webcam/answers?ids="):
        assert httpx.get(board.url + path).status_code == 401, path
    assert httpx.post(f"{board.url}/webcam/frame", content=b"x").status_code == 401
    assert httpx.get(f"{board.url}/health").status_code == 200  # probes carry no session


def test_a_forged_or_expired_cookie_is_401(board, stack):
    forged = httpx.get(f"{board.url}/_dash-layout", cookies={"triptych_session": "forged-" + uuid.uuid4().hex})
    assert forged.status_code == 401
    client = sign_in(board, stack, "viewer")
    assert client.get("/_dash-layout").status_code == 200
    Database(stack).transaction(
        lambda cur: cur.execute(
            "UPDATE dashboard_sessions SET expires_at = now() - interval '1 second' WHERE session_hash = "
            "encode(sha256(%s::bytea), 'hex')",
            (client.cookies["triptych_session"],),
        )
    )
    assert client.get("/_dash-layout").status_code == 401


def test_sign_in_gives_a_new_session_id_with_safe_cookies(board, stack):
    client = httpx.Client(base_url=board.url, timeout=30)
    client.cookies.set("triptych_session", "chosen-by-an-attacker")
    token = _form_token(client)
    reply = client.post(
        "/login",
        data={"form_token": token, "username": _user(stack, "viewer"), "password": PASSWORD, "next": "/compare"},
    )
    assert reply.status_code == 303 and reply.headers["location"] == "/compare"
    session_cookie = next(h for h in reply.headers.get_list("set-cookie") if h.startswith("triptych_session="))
    issued = session_cookie.split(";")[0].split("=", 1)[1]
    assert issued and issued != "chosen-by-an-attacker"  # a new id, whatever the browser held
    assert "HttpOnly" in session_cookie and "SameSite=Lax" in session_cookie
    max_age = int(session_cookie.split("Max-Age=")[1].split(";")[0])
    assert 0 < max_age <= 12 * 3600
    count = query(
        stack,
        "SELECT count(*) FROM dashboard_sessions WHERE session_hash = encode(sha256(%s::bytea), 'hex')",
        (issued,),
    )[0][0]
    assert count == 1


def test_next_is_never_an_open_redirect(board, stack):
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"):
        client = httpx.Client(base_url=board.url, timeout=30)
        reply = client.post(
            "/login",
            data={
                "form_token": _form_token(client),
                "username": _user(stack, "viewer"),
                "password": PASSWORD,
                "next": target,
            },
        )
        assert reply.status_code == 303 and reply.headers["location"] == "/", target


def test_a_viewer_cannot_label_and_nothing_is_written(board, stack, a_class):
    image_id = _image(stack)
    viewer = sign_in(board, stack, "viewer")
    reply = viewer.post("/_dash-update-component", json=_label_callback(image_id, a_class))
    assert reply.status_code == 403 and reply.json()["code"] == "forbidden"
    assert _label_of(stack, image_id) is None


def test_a_labeller_labels_and_the_write_names_them(board, stack, a_class):
    image_id = _image(stack)
    name = _user(stack, "labeller")
    labeller = sign_in(board, stack, "labeller", username=name, password=PASSWORD)
    reply = labeller.post("/_dash-update-component", json=_label_callback(image_id, a_class))
    assert reply.status_code == 200, reply.text
    assert _label_of(stack, image_id) == a_class
    events = query(
        stack,
        "SELECT event_type, component, details->>'user' FROM system_events WHERE image_id = %s "
        "AND event_type = 'dashboard_label'",
        (image_id,),
    )
    assert events == [("dashboard_label", "dashboard", name)]


def test_a_write_without_or_with_a_replayed_csrf_token_is_403(board, stack, a_class):
    image_id = _image(stack)
    labeller = sign_in(board, stack, "labeller")
    old_token = labeller.headers.pop("X-CSRFToken")
    assert labeller.post("/_dash-update-component", json=_label_callback(image_id, a_class)).status_code == 403
    # The token of an earlier session, replayed in a new one: refused.
    again = sign_in(board, stack, "labeller")
    again.headers["X-CSRFToken"] = old_token
    assert again.post("/_dash-update-component", json=_label_callback(image_id, a_class)).status_code == 403
    assert _label_of(stack, image_id) is None


def test_the_webcam_frame_needs_the_labeller_role(board, stack):
    viewer = sign_in(board, stack, "viewer")
    reply = viewer.post(
        "/webcam/frame?session=t&seq=1", content=b"\xff\xd8 not really a jpeg", headers={"Content-Type": "image/jpeg"}
    )
    assert reply.status_code == 403 and "labeller" in reply.json()["error"]
    labeller = sign_in(board, stack, "labeller")
    reply = labeller.post("/webcam/frame?session=t&seq=1", content=b"", headers={"Content-Type": "image/jpeg"})
    assert reply.status_code == 400  # past the gate: the frame itself is what it refuses


def test_sign_in_attempts_are_limited_per_user_and_one_user_locked_leaves_others(board, stack):
    victim, other = _user(stack, "viewer"), _user(stack, "viewer")
    client = httpx.Client(base_url=board.url, timeout=30)
    statuses = []
    for _ in range(12):
        statuses.append(
            client.post(
                "/login", data={"form_token": _form_token(client), "username": victim, "password": "wrong password!!"}
            ).status_code
        )
    assert statuses[:10] == [401] * 10 and statuses[10:] == [429, 429]
    # The right password does not get the locked user in either, this minute.
    locked = client.post("/login", data={"form_token": _form_token(client), "username": victim, "password": PASSWORD})
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) >= 1
    assert sign_in(board, stack, "viewer", username=other, password=PASSWORD).get("/_dash-layout").status_code == 200


def test_logout_ends_the_session_on_the_server(board, stack):
    client = sign_in(board, stack, "viewer")
    cookie = client.cookies["triptych_session"]
    assert client.post("/logout").status_code == 303
    replay = httpx.get(f"{board.url}/_dash-layout", cookies={"triptych_session": cookie})
    assert replay.status_code == 401


def test_an_api_key_signs_in_with_the_role_its_scopes_give(board, stack, a_class):
    image_id = _image(stack)
    reader = sign_in(board, stack, "viewer", key=make_key(stack, ["read"]))
    assert reader.post("/_dash-update-component", json=_label_callback(image_id, a_class)).status_code == 403
    labeller = sign_in(board, stack, "labeller", key=make_key(stack, ["label"]))
    assert labeller.post("/_dash-update-component", json=_label_callback(image_id, a_class)).status_code == 200
    assert _label_of(stack, image_id) == a_class


def test_a_one_time_link_works_once(board, stack):
    secret = Database(stack).transaction(
        lambda cur: make_login_link(cur, _user(stack, "admin"), datetime.timedelta(minutes=5))
    )
    first = httpx.get(f"{board.url}/login?token={secret}")
    assert first.status_code == 303 and "triptych_session" in first.cookies
    second = httpx.get(f"{board.url}/login?token={secret}")
    assert second.status_code == 401 and "triptych_session" not in second.cookies


def test_proxy_headers_count_only_from_a_trusted_address(board, proxied_board, stack, a_class):
    headers = {"X-Forwarded-User": "mallory", "X-Forwarded-Groups": "ml-admins"}
    assert httpx.get(f"{board.url}/_dash-layout", headers=headers).status_code == 401  # not trusted there
    assert httpx.get(f"{proxied_board.url}/_dash-layout", headers=headers).status_code == 200
    unknown_group = {"X-Forwarded-User": "eve", "X-Forwarded-Groups": "somebody-else"}
    assert httpx.get(f"{proxied_board.url}/_dash-layout", headers=unknown_group).status_code == 401
    # A proxied labeller still needs the CSRF double submit to write.
    image_id = _image(stack)
    labeller = {"X-Forwarded-User": "lab", "X-Forwarded-Groups": "ml-labellers"}
    plain = httpx.post(
        f"{proxied_board.url}/_dash-update-component", headers=labeller, json=_label_callback(image_id, a_class)
    )
    assert plain.status_code == 403 and _label_of(stack, image_id) is None
    paired = httpx.post(
        f"{proxied_board.url}/_dash-update-component",
        json=_label_callback(image_id, a_class),
        headers={**labeller, "X-CSRFToken": "t0ken"},
        cookies={"_csrf_token": "t0ken"},
    )
    assert paired.status_code == 200 and _label_of(stack, image_id) == a_class


def test_users_are_managed_from_the_command_line(stack):
    name = f"cli-{uuid.uuid4().hex[:6]}"

    def users(*args, stdin=None):
        return subprocess.run([*CLI, "users", *args], input=stdin, capture_output=True, text=True, timeout=120)

    added = users("add", name, "--role", "labeller", stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    listed = json.loads(users("list", "--json").stdout)
    assert {"name": name, "role": "labeller", "password": True}.items() <= next(
        u for u in listed if u["name"] == name
    ).items()
    assert users("add", name, "--role", "labeller", stdin=PASSWORD + "\n").returncode == 1  # exists
    assert users("add", f"{name}-x", "--role", "root", stdin=PASSWORD + "\n").returncode == 1  # no such role
    assert users("add", f"{name}-y", stdin="short\n").returncode == 1  # too short a password
    assert users("passwd", name, stdin="another long password\n").returncode == 0
    assert users("remove", name).returncode == 0
    assert not any(u["name"] == name for u in json.loads(users("list", "--json").stdout))
