"""Who is calling: the client address, believing X-Forwarded-For only from trusted proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(spec: str) -> tuple[Network, ...]:
    """``10.0.0.0/8, 192.0.2.7, ::1`` as networks; ValueError names a bad entry."""
    networks: list[Network] = []
    for token in spec.replace(" ", ",").split(","):
        token = token.strip()
        if not token:
            continue
        try:
            networks.append(ipaddress.ip_network(token, strict=False))
        except ValueError:
            raise ValueError(f"{token!r} is not an IP address or network") from None
    return tuple(networks)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _trusted(text: str, proxies: Sequence[Network]) -> bool:
    address = _ip(text)
    return address is not None and any(address in net for net in proxies)


def client_address(peer: str | None, forwarded_for: str | None, proxies: Sequence[Network]) -> str:
    """The address a request came from.

    The TCP peer, unless the peer is a trusted proxy: then X-Forwarded-For is read
    from the right, skipping trusted proxies, and the first other hop is the client.
    Entries a client wrote itself sit to the left of that and are never believed.
    """
    peer = peer or "unknown"
    if not forwarded_for or not proxies or not _trusted(peer, proxies):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if _ip(hop) is None:
            return peer  # a garbled header: believe only what we saw ourselves
        if not _trusted(hop, proxies):
            return str(_ip(hop))
    return str(_ip(hops[0])) if hops else peer
