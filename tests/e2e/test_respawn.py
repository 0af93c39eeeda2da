"""`python -m notifyhub.respawn`, run for real around a small Python child: what `make run` relies
on to bring a crashed process back and to stop everything on Ctrl-C."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests import servers

pytestmark = [pytest.mark.e2e]

# Crashes on its first run (exit 3) and its second (killed by SIGKILL), then stays up: writes its
# pid, and on SIGTERM or SIGINT writes which one arrived and exits 0.
FLAKY = """
import os, signal, sys
from pathlib import Path
state = Path(sys.argv[1])
runs = state / "runs"
run = int(runs.read_text()) + 1 if runs.exists() else 1
runs.write_text(str(run))
if run == 1:
    sys.exit(3)
if run == 2:
    os.kill(os.getpid(), signal.SIGKILL)
def stop(signum, frame):
    (state / "stopped-by").write_text(signal.Signals(signum).name)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
(state / "up").write_text(str(os.getpid()))
while True:
    signal.pause()
"""

# Ignores every stop signal but SIGKILL.
STUBBORN = """
import os, signal, sys
from pathlib import Path
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)
Path(sys.argv[1], "up").write_text(str(os.getpid()))
while True:
    signal.pause()
"""


def respawn(tmp_path: Path, script: str) -> tuple[subprocess.Popen[bytes], list[str]]:
    (tmp_path / "child.py").write_text(script)
    command = [sys.executable, str(tmp_path / "child.py"), str(tmp_path)]
    wrapper = subprocess.Popen(
        [sys.executable, "-m", "notifyhub.respawn", "--", *command],
        cwd=servers.ROOT,
        stderr=subprocess.PIPE,
    )
    return wrapper, command


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_crashed_child_is_restarted_and_a_stop_signal_ends_child_and_wrapper(tmp_path, stop):
    wrapper, command = respawn(tmp_path, FLAKY)
    try:
        servers.wait_until(
            lambda: (tmp_path / "up").exists(), timeout=60, what="the third run staying up"
        )
        child = int((tmp_path / "up").read_text())
        assert alive(child)

        wrapper.send_signal(stop)
        _, stderr = wrapper.communicate(timeout=30)
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
    assert wrapper.returncode == 0  # the child's own exit code once it stopped
    assert (tmp_path / "stopped-by").read_text() == stop.name  # passed on, once
    assert not alive(child)
    assert (tmp_path / "runs").read_text() == "3"  # not started again after the stop

    warnings = [line for line in stderr.decode().splitlines() if " WARNING " in line]
    assert len(warnings) == 2, stderr.decode()
    assert repr(" ".join(command)) in warnings[0]
    assert "exited with code 3; restart 1 " in warnings[0]
    assert "exited with signal SIGKILL; restart 2 " in warnings[1]


def test_a_child_that_ignores_the_stop_is_killed_and_left_nowhere(tmp_path):
    wrapper, _ = respawn(tmp_path, STUBBORN)
    try:
        servers.wait_until(lambda: (tmp_path / "up").exists(), timeout=60, what="the child up")
        child = int((tmp_path / "up").read_text())

        wrapper.send_signal(signal.SIGTERM)
        _, stderr = wrapper.communicate(timeout=30)
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
    assert not alive(child)
    assert wrapper.returncode == 128 + signal.SIGKILL
    assert "still running after" in stderr.decode()
    assert "restart" not in stderr.decode()
