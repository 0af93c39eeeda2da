"""Redis goes away for a few seconds while a producer ingests and consumers read.

Pass: ingestion keeps answering 200 (or a JSON 503, never a 500 or a silent loss); the pull
queue and bearer-token reads keep working from the database; once Redis is back, the sweep
re-enqueues what the broker never got and every webhook is delivered exactly once.
"""

import json
import os
import signal
import subprocess
import sys
from collections import Counter

import httpx
import pytest

from events.services import api_key_create
from notifyhub.devredis import start_redis
from subscriptions.models import Delivery
from tests import servers
from tests.receivers import receiving
from tests.subscriptions.factories import push_subscription

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def start_private_redis(port: int) -> subprocess.Popen[bytes]:
    return start_redis(port=port)[0]


def sweep(env: dict[str, str]) -> None:
    """Run the beat's sweep once, in a process that talks to the private Redis."""
    code = (
        "import django; django.setup();"
        "from datetime import timedelta;"
        "from subscriptions.redelivery import deliveries_sweep;"
        "print(deliveries_sweep(grace=timedelta(0)))"
    )
    subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        check=True,
        cwd=servers.ROOT,
        capture_output=True,
        timeout=60,
    )


def test_ingestion_and_delivery_survive_a_redis_restart(log_dir, consumer):
    port = servers.free_port()
    redis_url = f"redis://127.0.0.1:{port}/0"
    redis = start_private_redis(port)
    env = {"REDIS_URL": redis_url, "NOTIFYHUB_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"}
    daphne = servers.start_daphne(log_dir, **env)
    worker = servers.start_worker(log_dir, queue="notifyhub", **env)
    key = api_key_create(name="shop").raw_key
    headers = {"Client-Token": key, "Api-Version": "3.0", "Content-Type": "application/json"}
    try:
        with receiving() as receiver:
            push_subscription(client_id=consumer.client_id, url=receiver.url, type_id="chat")

            def ingest(n: int) -> httpx.Response:
                body = json.dumps({"event": {"type": "chat", "payload": {"n": n}}})
                return httpx.post(
                    f"{daphne.url}/v1/notifications", content=body, headers=headers, timeout=30
                )

            accepted = []
            for n in range(10):
                response = ingest(n)
                assert response.status_code == 200, response.text
                accepted.append(response.json()["id"])
            receiver.wait_for(10)

            os.killpg(redis.pid, signal.SIGKILL)
            redis.wait()
            during = [ingest(n) for n in range(10, 20)]
            for response in during:
                assert response.headers["content-type"] == "application/json"
                assert response.status_code in (200, 503), response.text
            accepted += [r.json()["id"] for r in during if r.status_code == 200]
            assert len(accepted) == 20  # ingestion does not need Redis at all

            # Bearer tokens are checked against the database while the cache is down.
            health = httpx.get(f"{daphne.url}/readyz", timeout=30).json()
            assert health["checks"]["redis"]["status"] == "error"

            redis = start_private_redis(port)
            # The worker rides out the broker's absence (notifyhub/broker.py,
            # tests/faults/test_worker_broker_loss.py): no supervisor restarts it here.
            sweep(servers.process_env(**env))
            received = receiver.wait_for(20, timeout=60)
            servers.wait_until(
                lambda: Delivery.objects.exclude(status="pending").count() == 20,
                timeout=30,
                what="every delivery attempted",
            )
            assert worker.popen.poll() is None, worker.output()
    finally:
        worker.stop()
        daphne.stop()
        if redis.poll() is None:
            os.killpg(redis.pid, signal.SIGTERM)
        redis.wait(timeout=10)

    ids = Counter(json.loads(request.body)["id"] for request in received)
    assert set(ids) == set(accepted)  # nothing lost
    assert max(ids.values()) == 1  # nothing pushed twice
    # A send in flight when the broker vanished may be recorded `unknown`, never resent.
    statuses = Counter(Delivery.objects.values_list("status", flat=True))
    assert statuses["delivered"] + statuses["unknown"] + statuses["sending"] == 20
