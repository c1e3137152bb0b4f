"""HTTP ports the supervisor owns and hands to its replicas (socket activation, as
systemd and Nuclio's DLX do it in their ways).

The supervisor binds each HTTP trigger's port once and every replica it starts
inherits that listening socket: they all accept from it, so the kernel spreads
connections over them. When a function is at zero the socket stays open, so a
request that arrives then is not refused: the kernel completes its handshake and
keeps it in the backlog, the supervisor sees it waiting (`held`) and starts a
replica, and that replica accepts it and answers. Nothing is proxied.

A replica started outside a supervisor binds its port itself (`bind_listener`, SO_REUSEPORT).
"""

from __future__ import annotations

import json
import logging
import os
import select
import socket

from .spec import FunctionSpec, HttpTriggerSpec

log = logging.getLogger("triptych.runtime.listeners")

# In a replica's environment: {"<trigger name>": <inherited file descriptor>}.
LISTEN_FDS_ENV = "TRIPTYCH_LISTEN_FDS"
BACKLOG = 1024


def bind_listener(host: str, port: int) -> socket.socket:
    """A listening socket on host:port. SO_REUSEPORT as the replicas' own, so a
    replica left from an older supervisor does not stop this one from starting."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    return sock


class Listeners:
    """The HTTP triggers' sockets of every function, bound by the supervisor."""

    def __init__(self, functions: dict[str, FunctionSpec], host: str):
        self.sockets: dict[str, dict[str, socket.socket]] = {}
        for name, spec in functions.items():
            for trigger in spec.triggers:
                if isinstance(trigger, HttpTriggerSpec):
                    sock = bind_listener(host, trigger.port)
                    sock.set_inheritable(True)
                    self.sockets.setdefault(name, {})[trigger.name] = sock

    def owns(self, function: str) -> bool:
        return function in self.sockets

    def env_for(self, function: str) -> dict[str, str]:
        socks = self.sockets.get(function)
        return {LISTEN_FDS_ENV: json.dumps({t: s.fileno() for t, s in socks.items()})} if socks else {}

    def fds_for(self, function: str) -> tuple[int, ...]:
        return tuple(s.fileno() for s in self.sockets.get(function, {}).values())

    def held(self, function: str) -> bool:
        """A connection waits to be accepted (only meaningful while no replica accepts)."""
        socks = list(self.sockets.get(function, {}).values())
        return bool(socks) and bool(select.select(socks, [], [], 0)[0])

    def close(self) -> None:
        for socks in self.sockets.values():
            for sock in socks.values():
                sock.close()
        self.sockets.clear()


def inherited_listener(trigger: str) -> socket.socket | None:
    """The listening socket the supervisor handed this replica for `trigger`, if any."""
    raw = os.environ.get(LISTEN_FDS_ENV)
    if not raw:
        return None
    try:
        fd = json.loads(raw).get(trigger)
    except ValueError:
        log.warning("%s is not JSON: %r; binding the port instead", LISTEN_FDS_ENV, raw[:80])
        return None
    if fd is None:
        return None
    try:
        return socket.socket(fileno=int(fd))
    except OSError as exc:  # not open in this process: the replica binds the port itself
        log.warning("inherited socket %s for trigger %s unusable (%s); binding the port instead", fd, trigger, exc)
        return None
