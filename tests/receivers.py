"""A real webhook receiver on a loopback port: records every request and answers as told."""

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    sent: int = 0  # bytes of answer body that left before the answer ended or broke off
    broken: bool = False  # the sender closed the connection before the whole answer was out


@dataclass
class Behaviour:
    """How the receiver answers: a status, maybe after a delay, maybe hanging on the first
    `hang_first` requests until `release` is set, maybe redirecting. Two hostile answers: a body
    of `stream_bytes` streamed in chunks, and a head that never ends (one header line every
    `trickle_headers` seconds until `release` is set)."""

    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    hang_first: int = 0
    release: threading.Event = field(default_factory=threading.Event)
    stream_bytes: int = 0
    trickle_headers: float = 0.0


STREAM_CHUNK = b"x" * (64 * 1024)


class _Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: a restarted Celery worker opening dozens of
    # connections at once then gets some reset, which a real receiver's backlog never does.
    request_queue_size = 128


class _TlsServer(_Server):
    """Speaks TLS with the certificate of `tls`; a client refusing it just ends its connection."""

    def __init__(self, address: tuple[str, int], handler: type, tls: ssl.SSLContext) -> None:
        super().__init__(address, handler)
        self.socket = tls.wrap_socket(self.socket, server_side=True)

    def handle_error(self, request: object, client_address: object) -> None:
        return  # A failed handshake is the client's verdict, which the test reads on its side.


class Receiver:
    """A threaded HTTP/1.1 server on 127.0.0.1 (keep-alive, so clients can pool connections);
    HTTPS with `tls`, a server context holding the certificate it presents."""

    def __init__(
        self, behaviour: Behaviour | None = None, tls: ssl.SSLContext | None = None
    ) -> None:
        self.behaviour = behaviour or Behaviour()
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                behaviour = receiver.behaviour
                with receiver.arrived:
                    receiver.requests.append(
                        Received(
                            path=self.path,
                            headers={k.lower(): v for k, v in self.headers.items()},
                            body=body,
                            at=time.time(),
                        )
                    )
                    number = len(receiver.requests)
                    receiver.arrived.notify_all()
                if number <= behaviour.hang_first:
                    behaviour.release.wait(timeout=60)
                if behaviour.delay:
                    time.sleep(behaviour.delay)
                received = receiver.requests[number - 1]
                try:
                    if behaviour.trickle_headers:
                        self._trickle_headers(behaviour)
                    elif behaviour.stream_bytes:
                        self._stream_body(behaviour, received)
                    else:
                        self.send_response(behaviour.status)
                        for name, value in behaviour.headers.items():
                            self.send_header(name, value)
                        self.send_header("content-length", str(len(behaviour.body)))
                        self.end_headers()
                        self.wfile.write(behaviour.body)
                        received.sent = len(behaviour.body)
                except (BrokenPipeError, ConnectionResetError):
                    received.broken = True
                    self.close_connection = True  # The sender went away (timed out or died).

            def _trickle_headers(self, behaviour: Behaviour) -> None:
                self.close_connection = True
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                line = 0
                while not behaviour.release.wait(behaviour.trickle_headers):
                    line += 1
                    self.wfile.write(b"x-trickle-%d: more to come\r\n" % line)

            def _stream_body(self, behaviour: Behaviour, received: Received) -> None:
                # A small send buffer, so what left is close to what the sender chose to read.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
                self.send_response(behaviour.status)
                self.send_header("content-length", str(behaviour.stream_bytes))
                self.end_headers()
                while received.sent < behaviour.stream_bytes:
                    chunk = STREAM_CHUNK[: behaviour.stream_bytes - received.sent]
                    self.wfile.write(chunk)
                    received.sent += len(chunk)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = (
            _TlsServer(("127.0.0.1", 0), Handler, tls)
            if tls is not None
            else _Server(("127.0.0.1", 0), Handler)
        )
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def wait_for(self, count: int, *, timeout: float = 30) -> list[Received]:
        """Block until at least `count` requests arrived (or fail the test)."""
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.requests) >= count, timeout=timeout):
                raise TimeoutError(f"{len(self.requests)} of {count} requests within {timeout}s")
            return list(self.requests)


@contextmanager
def receiving(
    behaviour: Behaviour | None = None, *, tls: ssl.SSLContext | None = None
) -> Iterator[Receiver]:
    receiver = Receiver(behaviour, tls)
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.behaviour.release.set()
        receiver.server.shutdown()
        receiver.server.server_close()
