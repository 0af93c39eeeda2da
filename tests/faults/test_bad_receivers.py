"""Bad webhook receivers while a worker delivers: one hangs (accepts, never answers), one answers
after 2 s, one answers 200 with a 10 MiB body, one sends a head that never ends (a header line
every 0.2 s, each read well within the read timeout), and a healthy receiver on another
subscription.

Pass: with one worker process of 10 sending slots, 2 per subscription, the healthy subscription
gets every delivery while the hanging backlog is still undone (the bad ones cannot take its
slots); the hanging and never-ending answers end as timeout failures in the ledger (the time
limit holds for the whole exchange, not per read); the 10 MiB answer is recorded as a 200 with a
capped excerpt and the worker stops reading it at the cap (the receiver could not send it all);
the slow one is delivered. Per subscription: every owed delivery attempted exactly once, none
lost, none duplicated, and the worker is still alive.
"""

import json
from collections import Counter
from contextlib import ExitStack

import pytest

from subscriptions.models import Delivery, DeliveryAttempt
from tests import servers
from tests.receivers import Behaviour, Receiver, receiving
from tests.subscriptions.factories import ingest, push_subscription

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TIMEOUT = 4.0  # NOTIFYHUB_WEBHOOK_TIMEOUT of the worker: twice the slow receiver's delay
MAX_RESPONSE_BYTES = 4096
HUGE = 10 * 1024 * 1024
BAD_EVENTS = 6  # per bad subscription: three rounds of two timeouts for the hanging one
HEALTHY_EVENTS = 30
WORKER_ENV = {
    "NOTIFYHUB_WEBHOOK_TIMEOUT": str(TIMEOUT),
    "NOTIFYHUB_WEBHOOK_MAX_RESPONSE_BYTES": str(MAX_RESPONSE_BYTES),
    # Four bad subscriptions at two slots each hold 8 of the 10: two stay for everyone else.
    "NOTIFYHUB_WEBHOOK_CONCURRENCY": "10",
    "NOTIFYHUB_WEBHOOK_PER_SUBSCRIPTION": "2",
}
BAD = {
    "hanging": Behaviour(hang_first=10**6),
    "slow": Behaviour(delay=2.0),
    "huge": Behaviour(stream_bytes=HUGE),
    "endless head": Behaviour(trickle_headers=0.2),
}


def ids_received(receiver: Receiver) -> Counter[str]:
    return Counter(json.loads(request.body)["id"] for request in receiver.requests)


def test_bad_receivers_take_neither_the_workers_slots_nor_its_memory(
    transactional_db, celery_queue, log_dir, consumer
):
    with ExitStack() as stack:
        receivers = {name: stack.enter_context(receiving(b)) for name, b in BAD.items()}
        healthy = stack.enter_context(receiving())
        subscriptions = {
            name: push_subscription(client_id=consumer.client_id, url=receiver.url)
            for name, receiver in receivers.items()
        }
        healthy_sub = push_subscription(
            client_id=consumer.client_id, url=healthy.url, type_id="ticket"
        )
        worker = servers.start_worker(log_dir, queue=celery_queue, concurrency=1, **WORKER_ENV)
        stack.callback(worker.stop)

        # The bad receivers are busy before the healthy traffic starts.
        bad_events = [ingest(n=0)]
        receivers["hanging"].wait_for(1)
        healthy_events = []
        for n in range(HEALTHY_EVENTS):
            healthy_events.append(ingest(type_id="ticket", n=n))
            if len(bad_events) < BAD_EVENTS and n % 5 == 4:
                bad_events.append(ingest(n=n))

        healthy.wait_for(HEALTHY_EVENTS)
        servers.wait_until(
            lambda: healthy_sub.deliveries.filter(status="delivered").count() == HEALTHY_EVENTS,
            timeout=30,
            what="every healthy delivery recorded",
            process=worker,
        )
        # An ordering, not a stopwatch: the hanging backlog needs three rounds of timeouts.
        assert (
            subscriptions["hanging"].deliveries.filter(status__in=["pending", "sending"]).exists()
        )

        servers.wait_until(
            lambda: not Delivery.objects.filter(status__in=["pending", "sending"]).exists(),
            timeout=60,
            what="every delivery attempted",
            process=worker,
        )
        assert worker.popen.poll() is None
        received = {name: ids_received(receiver) for name, receiver in receivers.items()}
        received["healthy"] = ids_received(healthy)
        huge_answers = list(receivers["huge"].requests)

    owed = {name: set(bad_events) for name in BAD} | {"healthy": set(healthy_events)}
    subscriptions["healthy"] = healthy_sub
    counts = {}
    for name, subscription in subscriptions.items():
        statuses = Counter(subscription.deliveries.values_list("status", flat=True))
        counts[name] = {
            "delivered": statuses["delivered"],
            "failed": statuses["failed"],
            "lost": len(owed[name] - set(received[name])),
            "duplicated": sum(count - 1 for count in received[name].values()),
        }
        assert set(subscription.deliveries.values_list("event_id", flat=True)) == owed[name]
        assert set(subscription.deliveries.values_list("attempts", flat=True)) == {1}

    assert counts == {
        "hanging": {"delivered": 0, "failed": BAD_EVENTS, "lost": 0, "duplicated": 0},
        "slow": {"delivered": BAD_EVENTS, "failed": 0, "lost": 0, "duplicated": 0},
        "huge": {"delivered": BAD_EVENTS, "failed": 0, "lost": 0, "duplicated": 0},
        "endless head": {"delivered": 0, "failed": BAD_EVENTS, "lost": 0, "duplicated": 0},
        "healthy": {"delivered": HEALTHY_EVENTS, "failed": 0, "lost": 0, "duplicated": 0},
    }

    # The ledger says why: both never-finished answers ended at the time limit.
    for name in ("hanging", "endless head"):
        attempts = DeliveryAttempt.objects.filter(delivery__subscription=subscriptions[name])
        assert attempts.count() == BAD_EVENTS
        for attempt in attempts:
            assert attempt.status_code is None
            assert attempt.error == "timed out: ReadTimeout"
            assert attempt.duration_ms >= TIMEOUT * 1000 * 0.9

    # The 10 MiB answer: a 200 with a capped excerpt, read no further than the cap.
    attempts = DeliveryAttempt.objects.filter(delivery__subscription=subscriptions["huge"])
    assert attempts.count() == BAD_EVENTS
    for attempt in attempts:
        assert (attempt.status_code, attempt.error) == (200, "")
        assert attempt.response_excerpt == "x" * 500
    for answer in huge_answers:
        assert answer.broken
        assert answer.sent < HUGE
