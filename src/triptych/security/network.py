"""Who is asking, by address: loopback binds and trusted proxies."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """True for an address only this machine reaches (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name, or 0.0.0.0-like wildcards written otherwise: assume it is reachable


def address_in(address: str | None, networks: list[str]) -> bool:
    """True when `address` lies in one of `networks` (addresses or CIDRs); a bad entry matches nothing."""
    if not address or not networks:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for network in networks:
        try:
            if ip in ipaddress.ip_network(network, strict=False):
                return True
        except ValueError:
            continue
    return False


def reads_need_key(configured: bool | None, host: str) -> bool:
    """TRIPTYCH_READ_REQUIRES_KEY when set; unset, reads need a key once the API binds
    beyond loopback (anyone who reaches the port could otherwise browse every image)."""
    return configured if configured is not None else not is_loopback(host)
