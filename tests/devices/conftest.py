"""Fake push providers for the device tests (servers per test process, settings per test)."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.push_fakes import PushFakes


@pytest.fixture(scope="session")
def push_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PushFakes]:
    fakes = PushFakes(Path(tmp_path_factory.mktemp("push")))
    yield fakes
    fakes.stop()


@pytest.fixture
def push_fakes(push_servers: PushFakes, settings) -> PushFakes:
    push_servers.reset()
    for name, value in push_servers.settings().items():
        setattr(settings, name, value)
    settings.NOTIFYHUB_APNS_TOPIC = ""
    return push_servers


def device_callbacks(callbacks: list) -> list:
    """The on-commit callbacks the devices app scheduled (streams and webhooks add theirs)."""
    return [callback for callback in callbacks if callback.__module__.startswith("devices.")]
