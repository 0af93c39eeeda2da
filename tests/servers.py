"""Real processes for tests: daphne and Celery workers on free loopback ports, against the test
database and the test run's Redis."""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_database_url() -> str:
    """A DATABASE_URL naming the database this test run created (so subprocesses share it)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    credentials = f"{user}{password}@" if user else ""
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{credentials}{db.get('HOST') or 'localhost'}{port}/{db['NAME']}"


def process_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": test_database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "NOTIFYHUB_REDIS_PREFIX": settings.NOTIFYHUB_REDIS_PREFIX,
            "DJANGO_SETTINGS_MODULE": "notifyhub.settings",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


@dataclass
class Process:
    """A started server process, its log file and (for HTTP servers) its base URL."""

    popen: subprocess.Popen[bytes]
    log: Path
    url: str = ""
    name: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    # The PostgreSQL application_name of every connection the process (and its children) opens.
    application_name: str = ""

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
        """Stop the process group with `sig` (SIGKILL after `timeout`). After a SIGKILL, return
        only once the database holds nothing more the process could still write."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=timeout)
            if sig == signal.SIGKILL:
                self._wait_for_database_sessions_to_end(timeout)

    def _wait_for_database_sessions_to_end(self, timeout: float) -> None:
        """A killed client's PostgreSQL backend lives on until it next touches the dead socket:
        one running a statement finishes it first, and an autocommitted one (a claim) commits.
        Until those backends are gone, a read could miss a write the process still makes."""
        if connection.vendor != "postgresql":
            return  # SQLite rolls back whatever the dead process had not committed.

        def ended() -> bool:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                    [self.application_name],
                )
                return cursor.fetchone()[0] == 0

        wait_until(ended, timeout=timeout, what=f"{self.name}'s database sessions to end")


def _spawn(argv: list[str], env: dict[str, str], log: Path, name: str) -> Process:
    log.parent.mkdir(parents=True, exist_ok=True)
    # libpq reads PGAPPNAME: every connection of this process tree is known by it.
    application_name = f"notifyhub-test-{name}-{uuid.uuid4().hex[:12]}"
    env = {**env, "PGAPPNAME": application_name}
    with log.open("wb") as handle:  # The child keeps its own copy of the descriptor.
        popen = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Process(popen=popen, log=log, name=name, application_name=application_name)


def wait_until(predicate, *, timeout: float, what: str, process: Process | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.popen.poll() is not None:
            raise RuntimeError(f"{what}: process exited early\n{process.output()}")
        try:
            if predicate():
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{what} within {timeout}s\n{process.output() if process else ''}")


def start_daphne(log_dir: Path, *, port: int | None = None, **env: str) -> Process:
    """A daphne on `port` (a free one if None: pass a stopped one's to restart it in place)."""
    port = port or free_port()
    process = _spawn(
        [
            str(BIN / "daphne"),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "notifyhub.asgi:application",
        ],
        process_env(**env),
        log_dir / f"daphne-{port}-{uuid.uuid4().hex[:6]}.log",
        "daphne",
    )
    process.url = f"http://127.0.0.1:{port}"
    wait_until(
        lambda: httpx.get(f"{process.url}/healthz", timeout=1).status_code == 200,
        timeout=30,
        what="daphne answering /healthz",
        process=process,
    )
    return process


def start_hypercorn(log_dir: Path, **env: str) -> Process:
    """The same ASGI application under hypercorn, which hands the body over as it arrives (daphne
    buffers it first): what the application's own guards do is then what a client meets."""
    port = free_port()
    process = _spawn(
        [str(BIN / "hypercorn"), "--bind", f"127.0.0.1:{port}", "notifyhub.asgi:application"],
        process_env(**env),
        log_dir / f"hypercorn-{port}.log",
        "hypercorn",
    )
    process.url = f"http://127.0.0.1:{port}"
    wait_until(
        lambda: httpx.get(f"{process.url}/healthz", timeout=1).status_code == 200,
        timeout=30,
        what="hypercorn answering /healthz",
        process=process,
    )
    return process


def start_worker(log_dir: Path, *, queue: str, concurrency: int = 2, **env: str) -> Process:
    name = f"w{free_port()}@127.0.0.1"
    process = _spawn(
        [
            str(BIN / "celery"),
            "--app",
            "notifyhub",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            str(concurrency),
            "--queues",
            queue,
            "--hostname",
            name,
            "--without-gossip",
            "--without-mingle",
        ],
        process_env(NOTIFYHUB_DB_CONN_MAX_AGE="600", **env),
        log_dir / f"worker-{name}.log",
        "worker",
    )
    wait_until(
        lambda: "ready." in process.output(),
        timeout=60,
        what="celery worker ready",
        process=process,
    )
    return process


def start_beat(log_dir: Path, **env: str) -> Process:
    """A celery beat with a schedule file of its own; returns once it has started (or exited)."""
    schedule = log_dir / f"beat-schedule-{uuid.uuid4().hex[:6]}"
    process = _spawn(
        [
            str(BIN / "celery"),
            "--app",
            "notifyhub",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(schedule),
        ],
        process_env(**env),
        log_dir / f"beat-{uuid.uuid4().hex[:6]}.log",
        "beat",
    )
    wait_until(
        lambda: process.popen.poll() is not None or "beat lock" in process.output(),
        timeout=60,
        what="celery beat started",
    )
    return process


@contextmanager
def running(*processes: Process) -> Iterator[None]:
    try:
        yield
    finally:
        for process in processes:
            process.stop()
