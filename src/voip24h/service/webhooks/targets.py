"""The SSRF guard: where a webhook may be delivered.

The host is resolved with the event loop's getaddrinfo and every address it gives is
checked; the delivery then connects to the checked address itself (the Host header
and TLS name stay the URL's), so a second DNS answer cannot point it elsewhere.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from voip24h.domain.netaddr import Network

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# Cloud metadata services, named although link-local/private already covers them.
METADATA = (ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"))


class TargetRefused(ValueError):
    """A webhook URL that must not be delivered to; the message says why."""


@dataclass(frozen=True)
class Target:
    """A checked URL and the address to connect to."""

    url: str
    scheme: str
    host: str
    port: int
    address: str


def forbidden(address: Address) -> bool:
    """True for loopback, private, link-local, multicast, reserved, unspecified and
    metadata addresses (an IPv4-mapped IPv6 address is judged as its IPv4 one)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address in METADATA
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def check_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL without credentials; TargetRefused if not."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("a webhook URL must start with https:// or http://")
    if not parts.hostname:
        raise TargetRefused("a webhook URL needs a host")
    if parts.username or parts.password:
        raise TargetRefused("a webhook URL must not carry a user or password")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise TargetRefused("the webhook URL's port is not a number from 1 to 65535") from None
    return parts.scheme, parts.hostname, port


def allowed(address: Address, allow: Sequence[Network]) -> bool:
    """True when ``address`` may be delivered to."""
    return any(address in net for net in allow) or not forbidden(address)


async def resolve(url: str, allow: Sequence[Network]) -> Target:
    """Resolve ``url``'s host and check every address; TargetRefused names the first one
    refused. A host that resolves to both public and private addresses is refused."""
    scheme, host, port = check_url(url)
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise TargetRefused(f"the webhook host {host} does not resolve: {exc.strerror}") from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    for address in addresses:
        if not allowed(address, allow):
            raise TargetRefused(
                f"the webhook host {host} resolves to {address}, a loopback, private, "
                "link-local or reserved address (see webhook_allow_cidrs)"
            )
    if not addresses:
        raise TargetRefused(f"the webhook host {host} has no address")
    return Target(url, scheme, host, port, str(addresses[0]))
