"""Outbound HTTP: the one client every delivery to a URL a user gave us goes through.

It refuses to reach anything but the public internet (SSRF guard), connects to the very address it
checked (so DNS cannot answer differently between the check and the connection), never follows a
redirect, bounds the time and the size of each answer, and pools connections per process.

The time bound is a deadline for the whole exchange, not only per read: httpx's timeouts restart
with every read, so a receiver that trickles header lines (or body bytes) just inside the read
timeout would otherwise hold a sending thread for as long as it likes. The client's connections
read and write through `DeadlineBackend`, which cuts every socket operation at the deadline of the
request being made.
"""

import atexit
import ipaddress
import os
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpcore
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


# When the request this thread is making must be over (time.monotonic()), if it has a deadline.
_deadline: ContextVar[float | None] = ContextVar("outbound_deadline", default=None)


def _time_left(timeout: float | None, expired: type[httpcore.TimeoutException]) -> float | None:
    """`timeout` for one socket operation, shortened to what is left before the deadline."""
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("the time allowed for the whole request is up")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write ends by the deadline of the request using it."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _time_left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _time_left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        timeout = _time_left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's network backend seam: plain sockets, each operation cut at the deadline."""

    def __init__(self) -> None:
        self._sockets = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _time_left(timeout, httpcore.ConnectTimeout)
        stream = self._sockets.connect_tcp(host, port, timeout, local_address, socket_options)
        return _DeadlineStream(stream)

    def sleep(self, seconds: float) -> None:
        self._sockets.sleep(seconds)


# httpcore's errors as httpx's, most specific first (what httpx's own transport does).
_HTTPX_ERRORS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
)


@contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for core, ours in _HTTPX_ERRORS:
            if isinstance(exc, core):
                raise ours(str(exc)) from exc
        raise


class _ResponseStream(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _as_httpx_errors():
            yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class DeadlineTransport(httpx.BaseTransport):
    """httpx's transport seam: HTTP/1.1 over httpcore's pool, on `DeadlineBackend` connections
    (httpx's own transport takes no network backend)."""

    def __init__(self, *, max_connections: int) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=30,
            network_backend=DeadlineBackend(),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _as_httpx_errors():
            response = self._pool.handle_request(core_request)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()


def outbound_client(*, max_connections: int) -> httpx.Client:
    """A client for `guarded_post`: no redirects, no proxies, connections that keep deadlines."""
    return httpx.Client(
        follow_redirects=False,
        trust_env=False,  # A proxy from the environment would skip the address check.
        transport=DeadlineTransport(max_connections=max_connections),
    )


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
                client = outbound_client(max_connections=max_connections)
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
    """POST `content` to `url` under `policy`: checked address, no redirects, bounded answer.

    With a client from `outbound_client` the whole exchange ends by `policy.total_timeout`;
    with another client only the body is held to it (each read is bounded all the same).
    """
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
    deadline_token = _deadline.set(deadline)
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
    finally:
        _deadline.reset(deadline_token)
    return OutboundResponse(
        status_code=response.status_code,
        headers=dict(response.headers),
        body=bytes(body),
        truncated=truncated,
    )
