"""Redis, the Celery broker, dies (SIGKILL) and starts again on the same port (empty: nothing is
persisted), once while the worker holds nothing and once while it holds a task it has yet to
acknowledge, with a pool slot free (the case that killed workers, notifyhub/broker.py).

Pass: the same worker process (same pid, never restarted) reconnects by itself and delivers the
webhooks of events ingested after Redis is back; every webhook is received exactly once.
"""

import json
import os
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from django.conf import settings

from events.services import api_key_create
from notifyhub.devredis import start_redis
from subscriptions.models import Delivery
from tests import servers
from tests.receivers import Behaviour, Receiver, receiving
from tests.subscriptions.factories import push_subscription

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TYPE = "chat"
LOST = "Connection to broker lost"


@dataclass
class Hub:
    """A private Redis on a fixed port, a daphne and one worker (two pool slots) using it."""

    port: int
    redis: subprocess.Popen[bytes]
    daphne: servers.Process | None = None
    worker: servers.Process | None = None
    key: str = ""

    def ingest(self, n: int) -> str:
        response = httpx.post(
            f"{self.daphne.url}/v1/notifications",
            content=json.dumps({"event": {"type": TYPE, "payload": {"n": n}}}),
            headers={
                "Client-Token": self.key,
                "Api-Version": "3.0",
                "Content-Type": "application/json",
            },
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return str(response.json()["id"])

    def unacknowledged(self) -> int:
        """Messages the worker took and has not acknowledged (kombu's unacked hash)."""
        client = redis.Redis(port=self.port)
        try:
            return int(client.hlen(f"{settings.NOTIFYHUB_REDIS_PREFIX}:celery:unacked"))
        finally:
            client.close()

    def restart_redis(self, *, while_down: object = None) -> None:
        """SIGKILL Redis, wait for the worker to notice, call `while_down`, start it again."""
        os.killpg(self.redis.pid, signal.SIGKILL)
        self.redis.wait()
        servers.wait_until(
            lambda: LOST in self.worker.output(),
            timeout=30,
            what="the worker noticing that the broker is gone",
            process=self.worker,
        )
        if callable(while_down):
            while_down()
        self.redis = start_redis(port=self.port)[0]


@contextmanager
def hub(log_dir: Path) -> Iterator[Hub]:
    port = servers.free_port()
    env = {"REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    running = Hub(port=port, redis=start_redis(port=port)[0])
    try:
        running.daphne = servers.start_daphne(log_dir, **env)
        running.worker = servers.start_worker(log_dir, queue="notifyhub", **env)
        running.key = api_key_create(name="shop").raw_key
        yield running
    finally:
        for process in (running.worker, running.daphne):
            if process is not None:
                process.stop()
        if running.redis.poll() is None:
            os.killpg(running.redis.pid, signal.SIGTERM)
        running.redis.wait(timeout=10)


def after_restart_the_same_worker_delivers(running: Hub, receiver: Receiver, *, before: int):
    pid = running.worker.popen.pid
    accepted = [running.ingest(n) for n in range(100, 103)]
    servers.wait_until(
        lambda: len(receiver.requests) >= before + len(accepted),
        timeout=60,
        what="the webhooks of events ingested after the restart",
        process=running.worker,  # a worker that died fails here, with its log
    )
    received = list(receiver.requests)
    assert running.worker.popen.pid == pid
    assert running.worker.output().count(" ready.") == 1  # connected once, never restarted
    assert set(accepted) <= {json.loads(request.body)["id"] for request in received}
    return accepted


def test_an_idle_worker_reconnects_after_redis_restarts(log_dir, consumer):
    with hub(log_dir) as running, receiving() as receiver:
        push_subscription(client_id=consumer.client_id, url=receiver.url, type_id=TYPE)
        before = [running.ingest(n) for n in range(3)]
        receiver.wait_for(3)
        servers.wait_until(
            lambda: running.unacknowledged() == 0,
            timeout=30,
            what="the worker acknowledging every task",
        )

        running.restart_redis()
        after = after_restart_the_same_worker_delivers(running, receiver, before=3)

    ids = Counter(json.loads(request.body)["id"] for request in receiver.requests)
    assert set(ids) == set(before + after)
    assert max(ids.values()) == 1


def test_a_worker_holding_a_task_reconnects_after_redis_restarts(log_dir, consumer):
    # The first send hangs until released: the worker holds its task, unacknowledged (acks_late),
    # with its second pool slot waiting on BRPOP when Redis dies. Released while Redis is down,
    # the send completes and the worker's acknowledgement meets a broker that is gone.
    with hub(log_dir) as running, receiving(Behaviour(hang_first=1)) as receiver:
        push_subscription(client_id=consumer.client_id, url=receiver.url, type_id=TYPE)
        held = running.ingest(0)
        receiver.wait_for(1)
        assert running.unacknowledged() == 1

        def finish_the_held_send() -> None:
            receiver.behaviour.release.set()
            servers.wait_until(
                lambda: Delivery.objects.filter(event_id=held, status="delivered").exists(),
                timeout=30,
                what="the held send finishing while Redis is down",
                process=running.worker,
            )

        running.restart_redis(while_down=finish_the_held_send)
        after = after_restart_the_same_worker_delivers(running, receiver, before=1)

    ids = Counter(json.loads(request.body)["id"] for request in receiver.requests)
    assert set(ids) == {held, *after}
    assert max(ids.values()) == 1
    assert set(Delivery.objects.values_list("status", flat=True)) == {"delivered"}
