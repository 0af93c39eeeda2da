from collections.abc import Iterator

import pytest

from tests.receivers import Behaviour, Receiver, receiving


@pytest.fixture(autouse=True)
def _own_celery_queue(celery_queue: str) -> None:
    """Tasks enqueued on commit go to this test process's queue, never a shared one."""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as started:
        yield started


@pytest.fixture
def failing_receiver() -> Iterator[Receiver]:
    with receiving(Behaviour(status=500, body=b"boom")) as started:
        yield started
