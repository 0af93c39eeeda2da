"""A Celery worker is killed (SIGKILL) mid-delivery while a producer ingests a steady stream and
every channel reads it: a webhook receiver, an iPhone (APNs) and an Android phone (FCM), and a
pull subscription drained over HTTP. A new worker starts and the beat's sweeps run.

Pass, as docs/webhooks.md and README (`NOTIFYHUB_PUSH_LEASE`) promise:
- webhooks (`once`): every delivery ends `delivered` (received exactly once) or, only if it was
  `sending` when the worker died, `unknown` (received at most once, never resent): 0 lost,
  0 duplicated, one attempt record each;
- device pushes (at least once, by lease): every push ends `sent`; a push reaches its provider
  twice only if the killed worker held it, and the second send leaves after the kill (never two
  at once): 0 lost, duplicates only among the interrupted;
- pull: every ingested event is pulled exactly once: 0 lost, 0 duplicated.
"""

import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from devices.models import DevicePush, PushAttempt
from notifyhub.tenancy import HUB
from subscriptions.models import Delivery, DeliveryAttempt
from subscriptions.services import subscription_create
from tests import servers
from tests.conftest import CONSUMER
from tests.push_fakes import PushFakes
from tests.receivers import Behaviour, Receiver, receiving

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

EVENTS = 100
TYPE = "incoming_call"  # the one type every channel takes: webhook, devices, pull
APP = "com.acme.phone"
IPHONE = "c0ffee" + "0" * 58
ANDROID = "fcm-token:android-1"
# Slow answers keep requests in flight, so the kill lands mid-delivery.
SLOW = 0.3
# The killed worker's push lease: short, so its pushes are due again within the test, yet far
# longer than a batch takes. The new worker keeps the default lease.
KILLED_LEASE = "5"
# What daphne enqueues to (the default queue): a private Redis prefix keeps it this test's own.
QUEUE = "notifyhub"


@pytest.fixture(scope="module")
def fakes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PushFakes]:
    push = PushFakes(Path(tmp_path_factory.mktemp("push-faults")))
    yield push
    push.stop()


def register(member, device: str, platform: str, token: str, provider: str) -> None:
    """One phone wanting incoming calls, registered through the Kazoo device API."""
    client = APIClient()
    client.credentials(HTTP_X_AUTH_TOKEN=member.token)
    response = client.put(
        f"/v2/accounts/acme/push_notification_subscriptions/{APP}/{device}",
        {
            "data": {
                "mobile_device_id": device,
                "platform": platform,
                "sip_proxy_server": "sip.acme.test",
                "notification_registration_ids": {
                    token: {"notification_preferences": [TYPE], "notification_type": provider}
                },
            }
        },
        format="json",
    )
    assert response.status_code == 201, response.content


class Producer(threading.Thread):
    """POSTs `EVENTS` events one after another to a real daphne, keeping the accepted ids."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.url, self.token = url, token
        self.accepted: list[str] = []
        self.failures: list[str] = []

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            for n in range(EVENTS):
                try:
                    response = client.post(
                        f"{self.url}/v1/notifications",
                        json={"event": {"type": TYPE, "payload": {"account_id": "acme", "n": n}}},
                        headers={"Authorization": f"Bearer {self.token}", "Api-Version": "3.0"},
                    )
                except httpx.HTTPError as error:  # daphne stopped: a failed test's cleanup
                    self.failures.append(repr(error))
                    return
                if response.status_code == 200:
                    self.accepted.append(response.json()["id"])
                else:
                    self.failures.append(f"{response.status_code} {response.text}")


class Puller(threading.Thread):
    """Drains the Integration API's FIFO pull until told to stop and the queue is empty."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.url, self.token = url, token
        self.pulled: list[str] = []
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.drained = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while True:
                try:
                    response = client.get(
                        f"{self.url}/api/v3/integration/notifications",
                        headers={"Authorization": f"Bearer {self.token}"},
                    )
                except httpx.HTTPError as error:  # daphne stopped: a failed test's cleanup
                    self.failures.append(repr(error))
                    return
                if response.status_code == 200:
                    self.pulled.append(response.json()["id"])
                    continue
                if response.status_code != 204:
                    self.failures.append(f"{response.status_code} {response.text}")
                    return
                if self.stop.is_set():
                    self.drained.set()
                    return
                self.stop.wait(0.05)


def provider_sends(fakes: PushFakes) -> dict[str, list[tuple[str, str]]]:
    """(token, event id) of every push each fake provider accepted, in arrival order."""
    return {
        "apns": [(r["token"], r["payload"]["event_id"]) for r in fakes.apns.requests],
        "fcm": [(r["token"], r["message"]["data"]["event_id"]) for r in fakes.fcm.requests],
    }


def in_flight(receiver: Receiver, fakes: PushFakes) -> bool:
    """Whether a webhook and a device push are each claimed, arrived, and not yet settled."""
    arrived = {request.headers["webhook-id"] for request in list(receiver.requests)}
    webhook = Delivery.objects.filter(status="sending", event_id__in=arrived).exists()
    pushed = {
        (provider, event_id)
        for provider, log in provider_sends(fakes).items()
        for _, event_id in log
    }
    sending = DevicePush.objects.filter(status="sending").values_list(
        "registration__notification_type", "event_id"
    )
    return webhook and any(push in pushed for push in sending)


def beat(*, webhook_lease: int | None = None, pushes: bool = False) -> dict[str, int]:
    """Run the beat's sweeps once, in a process of their own as beat does: the webhook sweep
    (with `webhook_lease` seconds as the lease, else the configured one) and, with `pushes`,
    the device push sweep (its grace at the smallest the setting allows)."""
    code = (
        "import django, json; django.setup()\n"
        "from datetime import timedelta\n"
        "from subscriptions.redelivery import deliveries_sweep\n"
        "from devices.tasks import device_pushes_sweep_task\n"
        f"lease = {webhook_lease!r}\n"
        "swept = deliveries_sweep(grace=timedelta(0),"
        " lease=None if lease is None else timedelta(seconds=lease))\n"
        f"pushes = device_pushes_sweep_task() if {pushes!r} else 0\n"
        "print(json.dumps({'unknown': swept.unknown, 'enqueued': swept.enqueued,"
        " 'pushes': pushes}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=servers.process_env(NOTIFYHUB_PUSH_SWEEP_GRACE="1"),
        cwd=servers.ROOT,
        capture_output=True,
        check=True,
        timeout=60,
    )
    return json.loads(done.stdout.decode().splitlines()[-1])


def test_a_worker_killed_mid_delivery_loses_nothing_and_sends_nothing_twice_at_once(
    log_dir, settings, fakes, member, consumer, make_persona, producer
):
    # Daphne enqueues on the default queue: this run's own prefix keeps its tasks from any
    # other worker on this Redis (servers pass the prefix to every process they start).
    settings.NOTIFYHUB_REDIS_PREFIX = f"{settings.NOTIFYHUB_REDIS_PREFIX}-faults-{os.getpid()}"
    register(member, "iphone", "ios", IPHONE, "apns")
    register(member, "android", "android", ANDROID, "fcm")
    puller = make_persona("puller", [CONSUMER])
    subscription_create(
        reach=HUB, client_id=puller.client_id, event_type_ids=[TYPE], subscribed_by="test"
    )
    fakes.reset()
    fakes.apns.delay = fakes.fcm.delay = SLOW

    daphne = servers.start_daphne(log_dir)
    first = servers.start_worker(
        log_dir, queue=QUEUE, concurrency=4, NOTIFYHUB_PUSH_LEASE=KILLED_LEASE, **fakes.env()
    )
    second = None
    ingest = Producer(daphne.url, producer.token)
    pull = Puller(daphne.url, puller.token)
    try:
        with receiving(Behaviour(delay=SLOW)) as receiver:
            webhook = subscription_create(
                reach=HUB,
                client_id=consumer.client_id,
                event_type_ids=[TYPE],
                subscribed_by="test",
                notification_url=receiver.url,
            )
            ingest.start()
            pull.start()

            # Kill while a webhook and a push are both in flight: claimed, already at the
            # receiver or provider, and not yet recorded.
            servers.wait_until(
                lambda: in_flight(receiver, fakes),
                timeout=60,
                what="a webhook and a push in flight",
                process=first,
            )
            first.stop(signal.SIGKILL)
            ingested_at_kill = len(ingest.accepted)
            sends_at_kill = {name: len(log) for name, log in provider_sends(fakes).items()}
            interrupted = set(
                Delivery.objects.filter(status="sending").values_list("event_id", flat=True)
            )
            held = set(DevicePush.objects.filter(status="sending").values_list("pk", flat=True))

            # The webhook sweep once the lease is over (zero here), before another worker
            # runs: the dead sends are judged `unknown`, the pending ones enqueued again.
            assert beat(webhook_lease=0)["unknown"] == len(interrupted)
            second = servers.start_worker(log_dir, queue=QUEUE, concurrency=4, **fakes.env())
            # The killed worker's pushes are due again once its lease ends: the push sweep.
            servers.wait_until(
                lambda: (
                    not DevicePush.objects.filter(
                        pk__in=held, status="sending", claimed_until__gte=timezone.now()
                    ).exists()
                ),
                timeout=30,
                what="the killed worker's push lease to end",
            )
            beat(pushes=True)

            ingest.join(timeout=60)
            assert not ingest.is_alive()
            assert ingest.failures == []
            servers.wait_until(
                lambda: (
                    not Delivery.objects.filter(status__in=["pending", "sending"]).exists()
                    and not DevicePush.objects.filter(status__in=["pending", "sending"]).exists()
                ),
                timeout=60,
                what="every webhook and push settled",
                process=second,
            )
            pull.stop.set()
            assert pull.drained.wait(timeout=30), pull.failures
    finally:
        pull.stop.set()
        first.stop()
        if second is not None:
            second.stop()
        daphne.stop()

    ingested = ingest.accepted
    assert len(ingested) == EVENTS

    # Webhooks: delivered exactly once, or `unknown` (only those in flight) at most once.
    received = Counter(request.headers["webhook-id"] for request in receiver.requests)
    status = dict(webhook.deliveries.values_list("event_id", "status"))
    assert set(status) == set(ingested)
    delivered = {event_id for event_id, s in status.items() if s == "delivered"}
    unknown = {event_id for event_id, s in status.items() if s == "unknown"}
    assert delivered | unknown == set(ingested), list(
        webhook.deliveries.exclude(status__in=["delivered", "unknown"]).values(
            "event_id", "status", "attempts", "last_error", "claimed_at", "finished_at"
        )
    )
    assert unknown <= interrupted
    assert all(received[event_id] == 1 for event_id in delivered)
    assert set(received) <= set(ingested)
    assert max(received.values()) == 1
    attempts = Counter(
        DeliveryAttempt.objects.filter(delivery__subscription=webhook).values_list(
            "delivery__event_id", flat=True
        )
    )
    assert attempts == Counter(ingested)  # every delivery attempted, each once

    # Device pushes: all sent; only the killed worker's could reach a provider twice, and then
    # the second time after the kill.
    pushes = DevicePush.objects.filter(event_id__in=ingested)
    assert pushes.count() == 2 * len(ingested)
    assert set(pushes.values_list("status", flat=True)) == {"sent"}
    sends = provider_sends(fakes)
    assert fakes.apns.rejected == fakes.fcm.rejected == []
    sent = Counter(sends["apns"] + sends["fcm"])
    token_of = {"apns": IPHONE, "fcm": ANDROID}
    owed = {
        pk: (provider, (token_of[provider], event_id))
        for pk, provider, event_id in pushes.values_list(
            "pk", "registration__notification_type", "event_id"
        )
    }
    assert set(sent) == {key for _, key in owed.values()}
    twice = {pk for pk, (_, key) in owed.items() if sent[key] > 1}
    assert twice <= held
    assert max(sent.values()) <= 2
    for pk in twice:
        provider, key = owed[pk]
        first_send, second_send = [i for i, s in enumerate(sends[provider]) if s == key]
        assert first_send < sends_at_kill[provider] <= second_send
    assert PushAttempt.objects.filter(event_id__in=ingested).count() == len(owed)

    # Pull: every event exactly once.
    assert pull.failures == []
    assert Counter(pull.pulled) == Counter(ingested)

    print(
        f"\nworker killed: ingested {len(ingested)} ({ingested_at_kill} before the kill); "
        f"webhook delivered {len(delivered)}, unknown {len(unknown)} "
        f"(received {sum(1 for e in unknown if received[e])} of them), lost 0, duplicated "
        f"{sum(c - 1 for c in received.values())}; pushes held by the killed worker {len(held)}: "
        f"APNs {len(sends['apns'])} sends, FCM {len(sends['fcm'])} sends for {len(owed)} pushes, "
        f"resent {len(twice)}, lost 0; pulled {len(pull.pulled)}, lost 0, duplicated 0"
    )
