import os
import socket
import subprocess

import psutil
import pytest

from triptych.errors import PortInUseError
from triptych.stack.process import ensure_port_free, port_is_free, wait_until
from triptych.stack.services import redact_url


def test_taken_port_names_port_purpose_and_owner():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not port_is_free("127.0.0.1", port)
        with pytest.raises(PortInUseError) as err:
            ensure_port_free("127.0.0.1", port, "kafka broker")
    message = str(err.value)
    assert f"Port {port}" in message and "kafka broker" in message
    assert f"pid {os.getpid()}" in message
    assert port_is_free("127.0.0.1", port)


def test_redact_url_hides_only_the_password():
    assert redact_url("postgresql://triptych:s3cret@127.0.0.1:5432/db") == "postgresql://triptych:***@127.0.0.1:5432/db"
    assert redact_url("http://127.0.0.1:9000") == "http://127.0.0.1:9000"


def test_tree_rss_skips_a_child_that_exits_while_counting():
    import subprocess
    import sys

    import psutil

    from triptych.stack.services import tree_rss

    me = psutil.Process()
    alive = tree_rss(me)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        gone = psutil.Process(child.pid)
    finally:
        child.wait()
    # A process list naming a child that has already exited still gives a figure.
    real_children = me.children

    def with_dead_child(recursive=False):
        return [*real_children(recursive=recursive), gone]

    me.children = with_dead_child
    assert tree_rss(me) > 0 and alive > 0


def test_a_postgres_lock_naming_a_zombie_or_a_gone_process_is_stale_and_a_live_one_is_not():
    from triptych.stack.services.postgres import stale_lock_pid

    child = subprocess.Popen(["sleep", "60"])
    try:
        assert not stale_lock_pid(child.pid)
        child.kill()
        # Killed but not reaped: a zombie, which still answers kill(pid, 0) as PostgreSQL checks.
        wait_until(lambda: psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE, 10, interval=0.05)
        os.kill(child.pid, 0)
        assert stale_lock_pid(child.pid)
    finally:
        child.kill()
        child.wait()
    assert stale_lock_pid(child.pid)  # reaped: gone
