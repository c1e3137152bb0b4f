"""The pure parts of the dashboard's sign-in: roles, redirects, addresses, the
callback gate's role lookup, and password rules."""

from __future__ import annotations

import pytest
from dash import Input, Output

from dash_app import auth
from triptych.security.network import address_in, is_loopback, reads_need_key
from triptych.security.roles import Forbidden, allows, role_for_groups, role_for_scopes
from triptych.security.users import UserRefused, check_name, hash_password


def test_roles_are_ordered_viewer_labeller_admin():
    assert allows("admin", "labeller") and allows("labeller", "labeller") and allows("labeller", "viewer")
    assert not allows("viewer", "labeller") and not allows("labeller", "admin")
    with pytest.raises(ValueError):
        allows("root", "viewer")
    assert "needs the admin role" in str(Forbidden("viewer", "admin", "cancelling a run"))


def test_a_key_and_a_proxy_group_map_to_roles():
    assert role_for_scopes(("read",)) == "viewer"
    assert role_for_scopes(("upload",)) == role_for_scopes(("label",)) == "labeller"
    assert role_for_scopes(("read", "admin")) == "admin"
    mapping = {"ml-admins": "admin", "ml-viewers": "viewer"}
    assert role_for_groups(["ml-viewers", "ml-admins"], mapping) == "admin"
    assert role_for_groups(["strangers"], mapping) is None


@pytest.mark.parametrize(
    "target,expected",
    [
        ("/compare?range=1h", "/compare?range=1h"),
        ("/", "/"),
        (None, "/"),
        ("", "/"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("evil.example", "/"),
    ],
)
def test_next_stays_on_this_site(target, expected):
    assert auth.safe_next(target) == expected


def test_addresses_loopback_and_trusted_networks():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3") and not is_loopback("example.org")
    assert address_in("10.244.0.7", ["10.244.0.0/16"]) and address_in("127.0.0.1", ["127.0.0.1"])
    assert not address_in("10.245.0.7", ["10.244.0.0/16"]) and not address_in("10.244.0.7", [])
    assert not address_in("not-an-ip", ["0.0.0.0/0"]) and not address_in("10.0.0.1", ["garbage"])


def test_a_callback_request_needs_the_highest_role_of_its_outputs():
    auth.write_callback(
        "labeller", Output({"type": "unit-label-status", "id": "x"}, "children"), Input("unit-label-button", "n_clicks")
    )(lambda n: n)
    auth.write_callback("admin", Output("unit-cancel-said", "children"), Input("unit-cancel", "n_clicks"))(lambda n: n)
    one = {"outputs": {"id": {"type": "unit-label-status", "id": "abc"}, "property": "children"}}
    both = {"outputs": [one["outputs"], {"id": "unit-cancel-said", "property": "children"}]}
    read = {"outputs": {"id": "live-cards", "property": "children"}}
    assert auth.callback_role(one) == "labeller"
    assert auth.callback_role(both) == "admin"
    assert auth.callback_role(read) == auth.callback_role({}) == "viewer"


def test_names_and_passwords_are_checked_before_anything_is_stored():
    assert check_name("ana.lopez@lab") == "ana.lopez@lab"
    for bad in ("", "a b", "../x", "x" * 65):
        with pytest.raises(UserRefused):
            check_name(bad)
    with pytest.raises(UserRefused):
        hash_password("short")
    assert hash_password("a long enough password").startswith("$argon2id$")


def test_api_reads_need_a_key_once_it_binds_beyond_loopback():
    assert not reads_need_key(None, "127.0.0.1") and reads_need_key(None, "0.0.0.0")
    assert reads_need_key(None, "10.252.0.2") and reads_need_key(True, "127.0.0.1")
    assert not reads_need_key(False, "0.0.0.0")  # said so explicitly
