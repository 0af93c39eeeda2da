"""Outbound HTTP: the one client every delivery to a URL a user gave us goes through.

It refuses to reach anything but the public internet (SSRF guard), connects to the very address it
checked (so DNS cannot answer differently between the check and the connection), never follows a
redirect, bounds the time and the size of each answer, and pools connections per process, each
reused only for the host name (scheme and port) it was opened and verified for.

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
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Where a webhook may never go: every block of IANA's IPv4 and IPv6 special-purpose address
# registries (RFC 6890 and their later entries), multicast included, by name. Python 3.11's
# `is_global` is not used: it passes multicast, `fec0::/10`, `::ffff:0:0:0/96` and other blocks that
# lead back inside. Besides this table an IPv6 address must be global unicast (`2000::/3`); an
# IPv4 address embedded in an IPv6 one (mapped, compatible) is named in the refusal.
SPECIAL_PURPOSE_NETWORKS: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(network), name)
    for network, name in (
        ("0.0.0.0/8", "this network"),
        ("10.0.0.0/8", "private use"),
        ("100.64.0.0/10", "shared address space (carrier-grade NAT)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link local"),
        ("172.16.0.0/12", "private use"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation (TEST-NET-1)"),
        ("192.31.196.0/24", "AS112-v4"),
        ("192.52.193.0/24", "AMT"),
        ("192.88.99.0/24", "deprecated 6to4 relay anycast"),
        ("192.168.0.0/16", "private use"),
        ("192.175.48.0/24", "direct delegation AS112 service"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation (TEST-NET-2)"),
        ("203.0.113.0/24", "documentation (TEST-NET-3)"),
        ("224.0.0.0/4", "multicast"),
        ("255.255.255.255/32", "limited broadcast"),  # Inside 240.0.0.0/4; named first.
        ("240.0.0.0/4", "reserved"),
        ("::/128", "unspecified address"),
        ("::1/128", "loopback"),
        ("::/96", "IPv4-compatible (deprecated)"),
        ("::ffff:0:0/96", "IPv4-mapped"),
        ("::ffff:0:0:0/96", "IPv4-translated (SIIT)"),
        ("64:ff9b::/96", "IPv4-IPv6 translation (NAT64)"),
        ("64:ff9b:1::/48", "IPv4-IPv6 translation, local use"),
        ("100::/64", "discard only"),
        ("100:0:0:1::/64", "dummy IPv6 prefix"),
        ("2001::/32", "Teredo"),  # The sub-blocks of 2001::/23 first, to be named in a refusal.
        ("2001:2::/48", "benchmarking"),
        ("2001:10::/28", "deprecated ORCHID"),
        ("2001:20::/28", "ORCHIDv2"),
        ("2001::/23", "IETF protocol assignments"),
        ("2001:db8::/32", "documentation"),
        ("2002::/16", "6to4"),
        ("2620:4f:8000::/48", "direct delegation AS112 service"),
        ("3fff::/20", "documentation"),
        ("5f00::/16", "segment routing (SRv6) SIDs"),
        ("fc00::/7", "unique local"),
        ("fe80::/10", "link local"),
        ("fec0::/10", "deprecated site local"),
        ("ff00::/8", "multicast"),
    )
)
IPV6_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")


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


def system_resolve(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives `host` (getaddrinfo), as strings."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


# A resolver takes a host name and a port and answers its addresses (`system_resolve`, or a
# static table in tests).
Resolver = Callable[[str, int], list[str]]


@dataclass(frozen=True)
class OutboundPolicy:
    """Limits of one kind of outbound request (callers build it from their settings)."""

    connect_timeout: float
    total_timeout: float
    max_response_bytes: int
    allowed_networks: tuple[IPNetwork, ...] = ()
    # The name-to-address step (tests give loopback receivers names with a static table).
    resolve: Resolver = system_resolve


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDR strings to networks; raises ValueError naming the bad one."""
    return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values)


def _special_purpose(address: IPAddress) -> str | None:
    """The special-purpose block `address` is in, as "<network> (<name>)", or None."""
    for network, name in SPECIAL_PURPOSE_NETWORKS:
        if address.version == network.version and address in network:
            return f"{network} ({name})"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped, -compatible or -translated spelling carries."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    value = int(address)
    # ::a.b.c.d (compatible; not :: and ::1) and ::ffff:0:a.b.c.d (translated).
    if (value >> 32 == 0 and value > 1) or value >> 32 == 0xFFFF0000:
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    return None


def address_refusal(address: IPAddress, allowed: tuple[IPNetwork, ...]) -> str | None:
    """Why `address` may not be reached, or None if it may: only public unicast addresses, and
    whatever `allowed` opens explicitly (the operator's word wins over the table)."""
    if any(address.version == net.version and address in net for net in allowed):
        return None
    block = _special_purpose(address)
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None and block is not None:
            inner = _special_purpose(embedded)
            inside = f", and {embedded} is in {inner}" if inner else f" of {embedded}"
            return f"{address} is in {block}{inside}"
        if block is None and address not in IPV6_GLOBAL_UNICAST:
            return f"{address} is not a global unicast address (2000::/3)"
    if block is not None:
        return f"{address} is in {block}"
    return None


# getaddrinfo has no timeout of its own (the system resolver's retries can take tens of seconds),
# so resolutions run on these threads and the sender waits only as long as its deadline allows.
# A resolution that outlives its wait keeps its thread until the resolver gives up; a few
# threads bound how many can pile up, and a request queued behind them times out all the same.
# One pool per process: a forked worker child has none of its parent's threads.
_resolver_pools: dict[int, ThreadPoolExecutor] = {}
_resolver_pools_lock = threading.Lock()


def _resolver_threads() -> ThreadPoolExecutor:
    pid = os.getpid()
    with _resolver_pools_lock:
        pool = _resolver_pools.get(pid)
        if pool is None:
            pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="resolve")
            _resolver_pools.clear()
            _resolver_pools[pid] = pool
    return pool


def resolve_checked(
    host: str,
    port: int,
    allowed: tuple[IPNetwork, ...],
    *,
    timeout: float,
    resolve: Resolver = system_resolve,
) -> IPAddress:
    """Resolve `host` within `timeout` seconds and return an address to connect to, if every
    address it has is allowed.

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
        pending = _resolver_threads().submit(resolve, host, port)
        try:
            found_addresses = pending.result(timeout=max(timeout, 0.0))
        except FutureTimeout:
            pending.cancel()
            raise OutboundTimeout(f"resolving {host!r} took longer than {timeout:.1f}s") from None
        except (OSError, UnicodeError) as exc:
            raise OutboundError(f"cannot resolve {host!r}: {exc}") from None
        addresses = []
        for raw in found_addresses:
            # Strip an IPv6 scope id ("fe80::1%eth0"): the address itself is what we judge.
            found = ipaddress.ip_address(raw.split("%", 1)[0])
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
# The host name the request this thread is making names, and the address checked for it: a new
# connection for that name goes to that address, and to nothing else.
_pinned: ContextVar[tuple[str, str] | None] = ContextVar("outbound_pinned", default=None)


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
    """httpcore's network backend seam: plain sockets, each operation cut at the deadline, each
    connection made to the address `guarded_post` checked for the host name it is asked for.

    The request's URL keeps the host name, so httpcore's pool keys connections by the name (with
    scheme and port) and TLS verifies that name: a connection opened and verified for one name
    is never reused for another name that resolves to the same address and port.
    """

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
        pinned = _pinned.get()
        if pinned is None or pinned[0] != host:
            # Only guarded_post's checked address may be connected to, never a name resolved here.
            raise httpcore.ConnectError(f"no checked address for {host!r}")
        address = pinned[1]
        stream = self._sockets.connect_tcp(address, port, timeout, local_address, socket_options)
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

    def __init__(self, *, max_connections: int, ssl_context: ssl.SSLContext | None = None) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(),
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
            stream=_ResponseStream(cast(Iterable[bytes], response.stream)),  # a sync pool
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()


class OutboundClient(httpx.Client):
    """The client `guarded_post` needs: its connections reach only the addresses it checked."""


def outbound_client(
    *, max_connections: int, ssl_context: ssl.SSLContext | None = None
) -> OutboundClient:
    """A client for `guarded_post`: no redirects, no proxies, connections that keep deadlines and
    go only to checked addresses (`ssl_context`: the system's trust store unless given)."""
    return OutboundClient(
        follow_redirects=False,
        trust_env=False,  # A proxy from the environment would skip the address check.
        transport=DeadlineTransport(max_connections=max_connections, ssl_context=ssl_context),
    )


_clients: dict[int, OutboundClient] = {}
_clients_lock = threading.Lock()


def pooled_client(*, max_connections: int) -> OutboundClient:
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
    client: OutboundClient,
) -> OutboundResponse:
    """POST `content` to `url` under `policy`: checked address, no redirects, bounded answer,
    the whole exchange (name resolution included) ended by `policy.total_timeout`."""
    if not isinstance(client, OutboundClient):
        raise TypeError("guarded_post needs a client from outbound_client()")
    deadline = time.monotonic() + policy.total_timeout
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
    address = resolve_checked(
        host,
        port,
        policy.allowed_networks,
        timeout=deadline - time.monotonic(),
        resolve=policy.resolve,
    )

    timeout = httpx.Timeout(
        policy.total_timeout, connect=policy.connect_timeout, pool=policy.total_timeout
    )
    # Credentials in the URL are not sent (httpx would turn them into Basic authentication).
    netloc = parts.netloc.rsplit("@", 1)[-1]
    target = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    request = client.build_request(
        "POST", target, content=content, headers=headers, timeout=timeout
    )
    # The URL keeps the name (the pool's key, the Host header, TLS SNI and verification); the
    # connection, if a new one is needed, goes to the address checked above (DeadlineBackend).
    pinned_token = _pinned.set((request.url.raw_host.decode("ascii"), str(address)))
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
        _pinned.reset(pinned_token)
    return OutboundResponse(
        status_code=response.status_code,
        headers=dict(response.headers),
        body=bytes(body),
        truncated=truncated,
    )
