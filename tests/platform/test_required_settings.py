"""With DEBUG off, what production must give is asked for by name; a `make run` checkout has
DEBUG on by default in every shell, and an exported DEBUG wins over that."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import ROOT

PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "a-long-random-production-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    "DATABASE_URL": "postgres://notifyhub@db.internal:5432/notifyhub",
    "REDIS_URL": "redis://redis.internal:6379/0",
}

PROBE = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"


def setup_django(env: dict[str, str], var_dir: Path) -> subprocess.CompletedProcess[str]:
    """`django.setup()` in a clean environment: none of this shell's or pytest's settings."""
    clean = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/")}
    clean.update({"DJANGO_SETTINGS_MODULE": "notifyhub.settings"})
    clean.update({"NOTIFYHUB_VAR_DIR": str(var_dir), **env})
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("variable", ["DATABASE_URL", "REDIS_URL", "SECRET_KEY"])
def test_production_without_a_required_variable_stops_naming_it(variable, tmp_path):
    env = {name: value for name, value in PRODUCTION.items() if name != variable}
    result = setup_django(env, tmp_path)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"{variable} must be set when DEBUG is off" in result.stderr


def test_production_with_every_required_variable_starts(tmp_path):
    result = setup_django(PRODUCTION, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_debug_is_off_without_the_development_marker(tmp_path):
    result = setup_django({}, tmp_path)
    assert result.returncode != 0
    assert "must be set when DEBUG is off" in result.stderr


def test_a_make_run_checkout_has_debug_on_in_any_shell(tmp_path):
    (tmp_path / "development-checkout").touch()  # What `make run` leaves in var/.
    result = setup_django({}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_an_exported_debug_wins_over_the_development_marker(tmp_path):
    (tmp_path / "development-checkout").touch()
    result = setup_django({"DEBUG": "0"}, tmp_path)
    assert result.returncode != 0
    assert "must be set when DEBUG is off" in result.stderr
