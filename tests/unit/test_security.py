"""Who may write, as pure logic: key shapes, scopes, credentials in headers, JWTs."""

from __future__ import annotations

import pytest

from triptych.config import Settings
from triptych.security import AuthError, Guard, Principal
from triptych.security.guard import credential_from
from triptych.security.keys import KeyRefused, check_scopes, hash_key, looks_like_key
from triptych.security.tokens import InvalidToken, issue_token, verify_token

SECRET = "s" * 40


def test_a_made_key_has_the_documented_shape_and_a_stable_hash():
    import secrets

    key = f"tpk_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
    assert looks_like_key(key)
    assert hash_key(key) == hash_key(key) and len(hash_key(key)) == 64 and hash_key(key) != hash_key(key + "x")
    for not_a_key in ("", "tpk_", "tpk_xyz_abc", key + "!", key.replace("tpk", "tpx"), "Bearer " + key):
        assert not looks_like_key(not_a_key)


def test_scopes_are_checked_and_kept_in_a_canonical_order():
    assert check_scopes(["admin", "upload"]) == ("upload", "admin")
    with pytest.raises(KeyRefused, match="scopes must be"):
        check_scopes(["root"])
    with pytest.raises(KeyRefused):
        check_scopes([])


def test_admin_implies_every_scope_and_any_credential_may_read():
    uploader = Principal("key:1", ("upload",), "key:1")
    admin = Principal("key:2", ("admin",), "key:2")
    assert uploader.allows("upload") and uploader.allows("read") and not uploader.allows("label")
    assert all(admin.allows(s) for s in ("read", "upload", "label", "admin"))


@pytest.mark.parametrize(
    "headers,expected",
    [
        ({"X-API-Key": " k1 "}, "k1"),
        ({"x-api-key": "k2", "authorization": "Bearer other"}, "k2"),  # the explicit header wins
        ({"Authorization": "Bearer k3"}, "k3"),
        ({"authorization": "bearer   k4"}, "k4"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, None),
        ({"Authorization": "Bearer "}, None),
        ({}, None),
    ],
)
def test_the_credential_is_read_from_either_header_in_any_case(headers, expected):
    assert credential_from(headers) == expected


def test_a_token_round_trips_and_a_bad_one_says_why():
    subject, scopes = verify_token(SECRET, issue_token(SECRET, "bot", ["upload", "label"]))
    assert (subject, scopes) == ("bot", ("upload", "label"))
    with pytest.raises(InvalidToken, match="expired"):
        verify_token(SECRET, issue_token(SECRET, "bot", ["upload"], ttl_s=-5))
    with pytest.raises(InvalidToken, match="not valid"):
        verify_token(SECRET, issue_token("t" * 40, "bot", ["upload"]))


def test_an_oauth_style_scope_claim_is_understood():
    import jwt

    token = jwt.encode({"sub": "svc", "scope": "upload label", "exp": 2**40}, SECRET, algorithm="HS256")
    assert verify_token(SECRET, token) == ("svc", ("upload", "label"))
    bad = jwt.encode({"sub": "svc", "scopes": "upload", "exp": 2**40}, SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken, match="list of strings"):
        verify_token(SECRET, bad)


class _NoDatabase:
    def transaction(self, work):  # the guard must not need one for tokens
        raise AssertionError("a JWT is checked without the database")


def test_the_guard_answers_401_403_and_the_principal_for_tokens():
    guard = Guard(Settings(jwt_secret=SECRET), _NoDatabase())
    token = issue_token(SECRET, "bot", ["upload"])
    principal = guard.require({"Authorization": f"Bearer {token}"}, "upload")
    assert principal.subject == "jwt:bot" and principal.caller == "jwt:bot"
    with pytest.raises(AuthError) as missing:
        guard.require({}, "upload")
    assert (missing.value.status, missing.value.code) == (401, "missing_credential")
    assert missing.value.headers["WWW-Authenticate"].startswith("Bearer")
    with pytest.raises(AuthError) as lacking:
        guard.require({"Authorization": f"Bearer {token}"}, "admin")
    assert (lacking.value.status, lacking.value.code) == (403, "missing_scope")
    with pytest.raises(AuthError) as garbage:
        guard.require({"X-API-Key": "hunter2"}, "upload")
    assert garbage.value.code == "malformed_credential"
    assert guard.check_read({}) is None  # reads are open by default


def test_without_a_secret_tokens_are_refused_and_closed_reads_need_a_credential():
    guard = Guard(Settings(jwt_secret=None, read_requires_key=True), _NoDatabase())
    token = issue_token(SECRET, "bot", ["upload"])
    with pytest.raises(AuthError, match="not accepted"):
        guard.require({"Authorization": f"Bearer {token}"}, "upload")
    with pytest.raises(AuthError) as closed:
        guard.check_read({})
    assert closed.value.status == 401
