"""Outbound HTTP: the one client every delivery to a URL a user gave us goes through.

It refuses to reach anything but the public internet (SSRF guard), connects to the very address it
checked (so DNS cannot answer differently between the check and the connection), never follows a
redirect, bounds the time and the size of each answer, and pools connections per process.
"""

import atexit
import ipaddress
import os
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# What Python 3.11's `is_global` lets through although it leads back inside: IPv6 forms that
# embed an IPv4 address (the embedded one may be loopback or private), and carrier-grade NAT.
DENIED_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(network)
    for network in (
        "::ffff:0:0/96",  # IPv4-mapped
        "::/96",  # IPv4-compatible (deprecated)
        "64:ff9b::/96",  # NAT64 well-known prefix
        "64:ff9b:1::/48",  # NAT64 local-use prefix
        "2002::/16",  # 6to4
        "2001::/32",  # Teredo
        "100.64.0.0/10",  # carrier-grade NAT (shared address space)
    )
)


class OutboundError(Exception):
    """A request that got no HTTP answer; `reason` says why in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OutboundRefused(OutboundError):
    """The URL or an address it resolves to is not one we may reach."""


class OutboundTimeout(OutboundError):
    """The connection or the answer took longer than allowed."""


@dataclass(frozen=True)
class OutboundResponse:
    """The answer to one request: status, headers and at most `max_response_bytes` of body."""

    status_code: int
    headers: Mapping[str, str]
    body: bytes
    truncated: bool


@dataclass(frozen=True)
class OutboundPolicy:
    """Limits of one kind of outbound request (callers build it from their settings)."""

    connect_timeout: float
    total_timeout: float
    max_response_bytes: int
    allowed_networks: tuple[IPNetwork, ...] = ()


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDR strings to networks; raises ValueError naming the bad one."""
    return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values)


def address_refusal(address: IPAddress, allowed: tuple[IPNetwork, ...]) -> str | None:
    """Why `address` may not be reached, or None if it may."""
    if any(address.version == net.version and address in net for net in allowed):
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return f"{address} is an IPv4-mapped address"
    for network in DENIED_NETWORKS:
        if address.version == network.version and address in network:
            return f"{address} is in {network}"
    if not address.is_global:
        return f"{address} is not a globally routable address"
    return None


def resolve_checked(host: str, port: int, allowed: tuple[IPNetwork, ...]) -> IPAddress:
    """Resolve `host` and return an address to connect to, if every address it has is allowed.

    Every address is checked, not only the one we would use: a name that resolves to a public and a
    private address could otherwise be steered to the private one by the resolver's order.
    """
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise OutboundError(f"cannot resolve {host!r}: {exc}") from None
        addresses = []
        for info in infos:
            # Strip an IPv6 scope id ("fe80::1%eth0"): the address itself is what we judge.
            found = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            if found not in addresses:
                addresses.append(found)
        if not addresses:
            raise OutboundError(f"{host!r} has no address")
    for address in addresses:
        reason = address_refusal(address, allowed)
        if reason is not None:
            raise OutboundRefused(f"refused {host!r}: {reason}")
    return addresses[0]


_clients: dict[int, httpx.Client] = {}
_clients_lock = threading.Lock()


def pooled_client(*, max_connections: int) -> httpx.Client:
    """This process's client (a forked worker child never reuses its parent's sockets)."""
    pid = os.getpid()
    client = _clients.get(pid)
    if client is None:
        with _clients_lock:
            client = _clients.get(pid)
            if client is None:
                client = httpx.Client(
                    follow_redirects=False,
                    trust_env=False,  # A proxy from the environment would skip the address check.
                    limits=httpx.Limits(
                        max_connections=max_connections,
                        max_keepalive_connections=max_connections,
                        keepalive_expiry=30,
                    ),
                )
                _clients.clear()
                _clients[pid] = client
                atexit.register(client.close)
    return client


def guarded_post(
    *,
    url: str,
    content: bytes,
    headers: Mapping[str, str],
    policy: OutboundPolicy,
    client: httpx.Client,
) -> OutboundResponse:
    """POST `content` to `url` under `policy`: checked address, no redirects, bounded answer."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise OutboundRefused(f"refused scheme {parts.scheme!r}: only http and https")
    host = parts.hostname
    if not host:
        raise OutboundRefused("the URL has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise OutboundRefused("the URL has an invalid port") from None
    address = resolve_checked(host, port, policy.allowed_networks)

    # Connect to the checked address literally; the Host header and TLS SNI (and so certificate
    # verification) still name the host the user gave.
    netloc = f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"
    target = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    host_header = parts.netloc.rsplit("@", 1)[-1]
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    timeout = httpx.Timeout(
        policy.total_timeout, connect=policy.connect_timeout, pool=policy.total_timeout
    )
    deadline = time.monotonic() + policy.total_timeout
    request = client.build_request(
        "POST",
        target,
        content=content,
        headers={**headers, "Host": host_header},
        timeout=timeout,
        extensions=extensions,
    )
    try:
        response = client.send(request, stream=True, follow_redirects=False)
        try:
            body = bytearray()
            truncated = False
            for chunk in response.iter_raw():
                body.extend(chunk)
                if len(body) > policy.max_response_bytes:
                    truncated = True
                    del body[policy.max_response_bytes :]
                    break
                if time.monotonic() > deadline:
                    raise OutboundTimeout(f"no complete answer within {policy.total_timeout}s")
        finally:
            response.close()
    except httpx.TimeoutException as exc:
        raise OutboundTimeout(f"timed out: {type(exc).__name__}") from None
    except httpx.HTTPError as exc:
        raise OutboundError(f"{type(exc).__name__}: {exc}") from None
    return OutboundResponse(
        status_code=response.status_code,
        headers=dict(response.headers),
        body=bytes(body),
        truncated=truncated,
    )
