"""notifyhub.asgi at startup: what the web process has loaded is frozen out of the collector."""

import subprocess
import sys

from tests.servers import ROOT, process_env

PROBE = """
import gc, sys
import notifyhub.asgi
from django.conf import settings
print(gc.get_freeze_count(), settings.ROOT_URLCONF in sys.modules)
"""


def test_the_web_process_freezes_what_startup_loaded_urlconf_included():
    probe = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    frozen, urlconf_loaded = probe.stdout.split()
    # Django, DRF and the apps alone are over 100,000 objects; an unfrozen process has 0.
    assert int(frozen) > 50_000
    assert urlconf_loaded == "True"
