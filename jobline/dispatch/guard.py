"""The address guard of ``http`` jobs: an aiohttp session that reaches only allowed addresses.

The check runs on the address of every socket, just before it connects, not on the URL:
a redirect, an IP literal or a DNS answer that changes between check and use (rebinding)
cannot get around it. Public addresses are allowed; loopback, private, link-local (cloud
metadata), multicast and other non-public ones only when their network is listed in
``JOBLINE_HTTP_ALLOWED_NETWORKS``. Kept apart from the job type so that importing jobline
does not import aiohttp.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import aiohttp

from jobline.exceptions import JoblineError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class AddressNotAllowed(OSError):
    """http jobs may not connect to this address (see JOBLINE_HTTP_ALLOWED_NETWORKS)."""

    def __init__(self, reason: str):
        # EACCES marks the refusal once aiohttp has wrapped it: it keeps the errno of a socket
        # error, and when every address of a name fails with the same errno, so does the sum.
        super().__init__(errno.EACCES, reason)


def is_refusal(error: OSError) -> bool:
    """Whether a connection error (``ClientConnectorError``) is this guard's refusal."""
    return error.errno == errno.EACCES


def parse_networks(value: str | Iterable[str]) -> tuple[Network, ...]:
    """Networks from ``"127.0.0.0/8 10.0.0.0/8"`` (or a list of such strings)."""
    items = value.split() if isinstance(value, str) else value
    try:
        return tuple(ipaddress.ip_network(item, strict=False) for item in items)
    except ValueError as exc:
        raise JoblineError(f"JOBLINE_HTTP_ALLOWED_NETWORKS: {exc}") from None


NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the last 32 bits are IPv4
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated ::a.b.c.d


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (and reaches): mapped ``::ffff:a.b.c.d``,
    NAT64 ``64:ff9b::a.b.c.d``, 6to4 ``2002:AABB:CCDD::`` or IPv4-compatible ``::a.b.c.d``."""
    if ip.ipv4_mapped or ip.sixtofour:
        return ip.ipv4_mapped or ip.sixtofour
    if ip in NAT64 or (ip in IPV4_COMPATIBLE and int(ip) > 1):  # not :: or ::1 themselves
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def refusal(address: str, allowed: Sequence[Network]) -> str | None:
    """Why http jobs may not connect to ``address``, or None when they may."""
    ip = ipaddress.ip_address(address.partition("%")[0])  # without an IPv6 zone ("%eth0")
    if isinstance(ip, ipaddress.IPv6Address) and (v4 := embedded_ipv4(ip)):
        ip = v4  # judged by the IPv4 address it leads to: ::ffff:127.0.0.1 is 127.0.0.1
    if any(ip in network for network in allowed):
        return None
    if ip.is_global and not ip.is_multicast:
        return None
    kinds = [
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),  # includes cloud metadata (169.254.169.254)
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
    ]
    kind = next((name for name, match in kinds if match), "non-public")
    return f"{ip} is a {kind} address; to allow it, list it in JOBLINE_HTTP_ALLOWED_NETWORKS"


def socket_factory(allowed: Sequence[Network]) -> Callable[[Any], socket.socket]:
    """aiohttp's socket factory: refuses an address before any byte is sent to it."""
    allowed = tuple(allowed)

    def make(addr_info: Any) -> socket.socket:
        family, kind, proto, _, address = addr_info
        if why := refusal(str(address[0]), allowed):
            raise AddressNotAllowed(f"refused to connect: {why}")
        return socket.socket(family=family, type=kind, proto=proto)

    return make


def guarded_session(allowed: Sequence[Network], **options: Any) -> aiohttp.ClientSession:
    """An ``aiohttp.ClientSession`` that reaches public addresses and ``allowed`` only.

    Proxy environment variables are ignored (``trust_env=False``): a proxy would connect
    on the job's behalf, out of the guard's sight.
    """
    # No connection cap: the worker's concurrency already bounds the requests in flight.
    connector = aiohttp.TCPConnector(limit=0, socket_factory=socket_factory(allowed))
    return aiohttp.ClientSession(connector=connector, trust_env=False, **options)
