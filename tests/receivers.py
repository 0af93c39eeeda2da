"""A real webhook receiver on a loopback port: records every request and answers as told."""

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


@dataclass
class Behaviour:
    """How the receiver answers: a status, maybe after a delay, maybe hanging on the first
    `hang_first` requests until `release` is set, maybe redirecting."""

    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    hang_first: int = 0
    release: threading.Event = field(default_factory=threading.Event)


class _Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: a restarted Celery worker opening dozens of
    # connections at once then gets some reset, which a real receiver's backlog never does.
    request_queue_size = 128


class Receiver:
    """A threaded HTTP/1.1 server on 127.0.0.1 (keep-alive, so clients can pool connections)."""

    def __init__(self, behaviour: Behaviour | None = None) -> None:
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
                try:
                    self.send_response(behaviour.status)
                    for name, value in behaviour.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(behaviour.body)))
                    self.end_headers()
                    self.wfile.write(behaviour.body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # The sender went away (timed out or died).

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def wait_for(self, count: int, *, timeout: float = 30) -> list[Received]:
        """Block until at least `count` requests arrived (or fail the test)."""
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.requests) >= count, timeout=timeout):
                raise TimeoutError(f"{len(self.requests)} of {count} requests within {timeout}s")
            return list(self.requests)


@contextmanager
def receiving(behaviour: Behaviour | None = None) -> Iterator[Receiver]:
    receiver = Receiver(behaviour)
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.behaviour.release.set()
        receiver.server.shutdown()
        receiver.server.server_close()
