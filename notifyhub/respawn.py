"""Run a command and start it again whenever it exits, until told to stop.

    python -m notifyhub.respawn [--max-delay SECONDS] -- COMMAND [ARGS...]

`make run` wraps each line of Procfile.dev in it: honcho stops every process when one exits,
so without it one crashed worker took the web process and beat down with it. Each restart
logs one WARNING line (the command, its exit code or signal, the restart count) and waits a
little first: 0.5 s, doubling up to --max-delay (5 s), back to 0.5 s once a run lasted a
minute. SIGTERM or SIGINT is passed on to the command, which is not started again; the wrapper
exits once it has stopped (killing it if it takes longer than STOP_GRACE). Production does not
use this: its supervisor restarts processes (docs/deploy.md).
"""

import argparse
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from types import FrameType

logger = logging.getLogger("notifyhub.respawn")

FIRST_DELAY = 0.5
# A run this long was a healthy one: the next crash restarts at FIRST_DELAY again.
STABLE_AFTER = 60.0
# Under honcho's five seconds before it sends SIGKILL to everything it started: a child still
# alive after this is killed by us, so no orphan keeps a port or a queue.
STOP_GRACE = 4.5
POLL = 0.05


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"code {returncode}"


class Respawner:
    """One command, restarted on every exit until a stop signal arrives."""

    def __init__(self, argv: list[str], *, max_delay: float) -> None:
        self.argv = argv
        self.command = " ".join(argv)
        self.max_delay = max_delay
        self.child: subprocess.Popen[bytes] | None = None
        self.stop_signal: int | None = None

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        """Stop: pass the signal on once and start nothing more."""
        if self.stop_signal is None:
            self.stop_signal = signum
            self._signal_child(signum)

    def _signal_child(self, signum: int) -> None:
        child = self.child
        if child is not None and child.poll() is None:
            # The child leads a process group of its own (so a terminal's Ctrl-C reaches it
            # once, through us, not twice); its own children (Celery's pool) get it too, as
            # they would from honcho.
            with contextlib.suppress(ProcessLookupError):  # it exited just now
                os.killpg(child.pid, signum)

    def run(self) -> int:
        restarts = 0
        delay = FIRST_DELAY
        while True:
            started = time.monotonic()
            child = subprocess.Popen(self.argv, process_group=0)  # noqa: S603 - the caller's command
            self.child = child
            if self.stop_signal is not None:  # arrived while the child was being started
                self._signal_child(self.stop_signal)
            returncode = self._wait(child)
            if self.stop_signal is not None:
                return 128 - returncode if returncode < 0 else returncode
            if time.monotonic() - started >= STABLE_AFTER:
                delay = FIRST_DELAY
            restarts += 1
            logger.warning(
                "%r exited with %s; restart %d in %.1f s",
                self.command,
                describe_exit(returncode),
                restarts,
                delay,
            )
            if not self._sleep(delay):
                return 0
            delay = min(delay * 2, self.max_delay)

    def _wait(self, child: subprocess.Popen[bytes]) -> int:
        deadline: float | None = None
        while True:
            try:
                return child.wait(timeout=POLL)
            except subprocess.TimeoutExpired:
                pass
            if self.stop_signal is None:
                continue
            if deadline is None:
                deadline = time.monotonic() + STOP_GRACE
            elif time.monotonic() > deadline:
                logger.warning(
                    "%r still running after %.1f s: killing it", self.command, STOP_GRACE
                )
                self._signal_child(signal.SIGKILL)
                return child.wait()

    def _sleep(self, seconds: float) -> bool:
        """Wait before a restart; False if told to stop meanwhile."""
        deadline = time.monotonic() + seconds
        while self.stop_signal is None and time.monotonic() < deadline:
            time.sleep(POLL)
        return self.stop_signal is None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m notifyhub.respawn",
        description="Run a command and start it again whenever it exits, until told to stop.",
    )
    parser.add_argument("--max-delay", type=float, default=5.0, help="longest wait (seconds)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)
    command = options.command[1:] if options.command[:1] == ["--"] else options.command
    if not command:
        parser.error("no command: python -m notifyhub.respawn -- COMMAND [ARGS...]")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    respawner = Respawner(command, max_delay=options.max_delay)
    signal.signal(signal.SIGTERM, respawner.on_signal)
    signal.signal(signal.SIGINT, respawner.on_signal)
    return respawner.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
