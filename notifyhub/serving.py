"""Production serving on every core: several daphne processes accepting on one shared socket.

One daphne process runs Django's synchronous views on one thread, so it uses one core at most.
The supervisor here binds one listening socket per process on the same port with SO_REUSEPORT
and starts a daphne process on each (`daphne --fd`): the kernel spreads new connections evenly
across them (with one shared socket, whichever process woke first took most of a burst).
Server-sent event streams stay on the same port: any process can hold any stream, because
stream sessions and fan-out live in the database and Redis, not in a process.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
# Connections the kernel completes for a process before it accepts them (capped by
# net.core.somaxconn, 4096 on current kernels). After a restart every client of the process
# reconnects at once; with a short queue (Twisted's default is 50) the kernel drops most of
# their handshakes and each client retries on TCP's backoff (1, 3, 7, 15, 31 s...), which made
# a reconnect storm's last clients wait minutes (docs/benchmarks.md).
LISTEN_BACKLOG = 4096


def serve(*, host: str, port: int, processes: int, application: str) -> int:
    """Bind host:port, run `processes` daphne workers on it, restart any that dies, stop on
    SIGINT/SIGTERM. Returns the exit status."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listeners = []
    for _ in range(processes):
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listener.bind((host, port))
        listener.listen(LISTEN_BACKLOG)
        listener.set_inheritable(True)
        listeners.append(listener)

    def start(index: int) -> subprocess.Popen[bytes]:
        fd = listeners[index].fileno()
        return subprocess.Popen(  # noqa: S603 - our own daphne with fixed arguments
            [str(BIN / "daphne"), "--fd", str(fd), "--proxy-headers", application],
            pass_fds=(fd,),
        )

    workers = [start(index) for index in range(processes)]
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    sys.stderr.write(f"notifyhub: {processes} daphne processes on http://{host}:{port}/\n")
    try:
        while not stopping:
            for index, worker in enumerate(workers):
                if worker.poll() is not None:
                    sys.stderr.write(f"notifyhub: daphne {worker.pid} exited; restarting\n")
                    _metrics_process_dead(worker.pid)
                    workers[index] = start(index)
            time.sleep(0.5)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
            _metrics_process_dead(worker.pid)
        for listener in listeners:
            listener.close()
    return 0


def _metrics_process_dead(pid: int) -> None:
    """A daphne that exited takes its live gauges (open streams) out of the sum."""
    from notifyhub.metrics import process_dead

    process_dead(pid)


def default_processes() -> int:
    return max(1, os.cpu_count() or 1)
