"""Each claim written by hand for PostgreSQL chooses and changes the same rows as its portable
twin (the ORM path SQLite runs), given the same queue: the paged pull, the FIFO pull and the
webhook outbox's claim. Both run here on PostgreSQL, each from the same data (the first one's
writes are rolled back), and the queue afterwards is compared."""

import json
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from events.services import event_ingest
from notifyhub.tenancy import HUB
from subscriptions.models import Delivery, Notification, Subscription
from subscriptions.services import (
    _claim_next_portable,
    _claim_next_postgresql,
    _claim_page_portable,
    _claim_page_postgresql,
    subscription_create,
)
from subscriptions.webhooks import _claim_portable, _claim_postgresql

pytestmark = pytest.mark.django_db

CLIENT = "alice-app"


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the hand-written twin of each claim runs on PostgreSQL only")


def twins(postgresql: Callable[[], Any], portable: Callable[[], Any], state: Callable[[], Any]):
    """Run each path from the same data; what each returned and the state it left."""
    with transaction.atomic():
        first = (postgresql(), state())
        transaction.set_rollback(True)
    second = (portable(), state())
    return first, second


def subscribe(client_id: str = CLIENT, **options: Any) -> Subscription:
    return subscription_create(
        reach=HUB,
        client_id=client_id,
        event_type_ids=["chat"],
        subscribed_by="alice",
        **options,
    )


def ingest(n: int) -> str:
    return event_ingest(
        producer="key:t", reach=HUB, type_id="chat", payload={"n": n}, idempotency_key=None
    ).event_id


def queue() -> list[tuple[Any, ...]]:
    return list(
        Notification.objects.order_by("id").values_list("id", "subscription_id", "event_id")
    )


def subscriptions() -> list[tuple[Any, ...]]:
    return [
        (id_, pages_read, read_at is not None)
        for id_, pages_read, read_at in Subscription.objects.order_by("id").values_list(
            "id", "pages_read", "last_request_date"
        )
    ]


@pytest.fixture
def paged_queue() -> Subscription:
    """A subscription (retention 1 h) whose two oldest rows are past it, then five live rows;
    another subscription of the client and one of another client queue the same events."""
    paged = subscribe(retention=timedelta(hours=1))
    subscribe()
    subscribe(client_id="bob-app")
    events = [ingest(n) for n in range(7)]
    Notification.objects.filter(subscription=paged, event_id__in=events[:2]).update(
        created_at=timezone.now() - timedelta(hours=2)
    )
    return paged


@pytest.mark.parametrize("size", [None, 3, 10])
def test_the_paged_claims_hand_out_the_same_page_and_drop_the_same_stale_rows(
    paged_queue: Subscription, size: int | None
):
    def read(claim: Callable[..., Any]) -> Callable[[], Any]:
        def page() -> Any:
            claimed = claim(client_id=CLIENT, subscription_id=str(paged_queue.id), size=size)
            return claimed.number, claimed.size, json.loads(claimed.results_json)

        return page

    postgresql, portable = twins(
        read(_claim_page_postgresql), read(_claim_page_portable), lambda: (queue(), subscriptions())
    )

    assert postgresql == portable
    (_, size_read, items), (rows, _) = portable
    assert size_read == (5 if size is None or size > 5 else size) == len(items)
    # The stale rows went with the page, whatever its size.
    assert len([row for row in rows if row[1] == paged_queue.id]) == 5 - size_read


def test_the_paged_claims_leave_a_foreign_subscription_untouched(paged_queue: Subscription):
    def read(claim: Callable[..., Any]) -> Callable[[], Any]:
        return lambda: claim(client_id="bob-app", subscription_id=str(paged_queue.id), size=None)

    postgresql, portable = twins(
        read(_claim_page_postgresql), read(_claim_page_portable), lambda: (queue(), subscriptions())
    )

    assert postgresql == portable
    assert portable[0] is None


def test_the_fifo_claims_hand_out_the_same_events_in_the_same_order():
    """Two subscriptions of the client queue every event (siblings); the oldest row has
    expired; another client's queue must be left alone."""
    subscribe()
    subscribe(retention=timedelta(hours=2))
    subscribe(client_id="bob-app")
    events = [ingest(n) for n in range(4)]
    Notification.objects.filter(event_id=events[0]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    def drain(claim: Callable[..., Any]) -> Callable[[], Any]:
        return lambda: [claim(client_id=CLIENT) for _ in range(5)]

    postgresql, portable = twins(
        drain(_claim_next_postgresql),
        drain(_claim_next_portable),
        lambda: (queue(), subscriptions()),
    )

    assert postgresql == portable
    claimed, (rows, _) = portable
    assert [c.event_id for c in claimed if c] == events[1:]
    assert {row[2] for row in rows} == set(events)  # bob's queue and the expired rows stay
    assert claimed[3:] == [None, None]


@pytest.fixture
def outbox() -> dict[str, Subscription]:
    """Three pushing subscriptions with due, not yet due, expired and sending deliveries, each
    due at its own time (oldest first in id order)."""
    pushing = {
        name: subscribe(client_id=f"{name}-app", notification_url=f"https://{name}.test/hook")
        for name in ("a", "b", "c")
    }
    for n in range(4):
        ingest(n)
    now = timezone.now()
    for index, delivery in enumerate(Delivery.objects.order_by("id")):
        delivery.next_attempt_at = now - timedelta(minutes=60 - index)
        delivery.save(update_fields=["next_attempt_at"])
    newest = Delivery.objects.order_by("-id")
    Delivery.objects.filter(pk=newest[0].pk).update(next_attempt_at=now + timedelta(hours=1))
    Delivery.objects.filter(pk=newest[1].pk).update(expires_at=now - timedelta(seconds=1))
    Delivery.objects.filter(pk=newest[2].pk).update(status=Delivery.Status.SENDING)
    return pushing


def deliveries() -> list[tuple[Any, ...]]:
    return list(Delivery.objects.order_by("id").values_list("id", "status", "attempts"))


@pytest.mark.parametrize(
    ("free", "per_subscription", "busy_with", "only"),
    [
        (20, 10, {}, False),
        (5, 10, {}, False),
        (20, 2, {}, False),
        (20, 2, {"a": 2, "b": 1}, False),
        (20, 10, {}, True),
    ],
)
def test_the_delivery_claims_take_the_same_rows(
    outbox: dict[str, Subscription],
    free: int,
    per_subscription: int,
    busy_with: dict[str, int],
    only: bool,
):
    only_ids = list(Delivery.objects.order_by("id").values_list("id", flat=True)[::2])

    def claim(path: Callable[..., list[int]]) -> Callable[[], Any]:
        def run() -> Any:
            busy: Counter[uuid.UUID] = Counter(
                {outbox[name].id: count for name, count in busy_with.items()}
            )
            chosen = path(
                free=free,
                only_ids=only_ids if only else None,
                busy=busy,
                per_subscription=per_subscription,
            )
            return sorted(chosen), +busy

        return run

    postgresql, portable = twins(claim(_claim_postgresql), claim(_claim_portable), deliveries)

    assert postgresql == portable
    (chosen, _), rows = portable
    assert chosen
    assert {status for id_, status, _ in rows if id_ in chosen} == {Delivery.Status.SENDING}
