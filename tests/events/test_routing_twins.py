"""The routing step's two paths write the same rows: PostgreSQL's one statement (the event's
insert with every channel's INSERT ... SELECT as data-modifying CTEs) and its portable twin (the
insert, then each channel's statement, in one transaction), which SQLite runs. Both run here on
PostgreSQL from the same data (the first one's writes rolled back), and the rows compared."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.utils import timezone

from devices.api.kazoo_document import device_document_validate
from devices.models import DevicePush
from devices.services import device_create
from events.channels import channels_all
from events.models import Event, new_event_id
from events.services import _store_and_route_in_a_transaction, _store_and_route_postgresql
from notifyhub.models import Account
from notifyhub.tenancy import HUB
from subscriptions.models import Delivery, Notification, Subscription
from subscriptions.services import subscription_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the one-statement routing path runs on PostgreSQL only")


@pytest.fixture
def recipients() -> None:
    """Pull and push subscriptions to `incoming_call` (one inactive, two of one client sharing
    a URL, one with a long retention) and phones of two accounts."""
    for index, options in enumerate(
        [
            {},
            {"retention": timedelta(days=30)},
            {"notification_url": "https://a.test/hook"},
            {"notification_url": "https://a.test/hook"},
            {"notification_url": "https://b.test/hook"},
        ]
    ):
        subscription_create(
            reach=HUB,
            client_id="a-app" if index in (2, 3) else f"c-{index}",
            event_type_ids=["incoming_call"],
            subscribed_by="alice",
            **options,
        )
    Subscription.objects.filter(client_id="c-0").update(active=False)
    for account in ("acme", "globex"):
        Account.objects.create(id=account)
        for device, token in (("iphone", "1" * 64), ("android", "fcm:token")):
            document = device_document_validate(
                app_name="com.acme.phone",
                data={
                    "mobile_device_id": f"m-{device}",
                    "platform": "ios",
                    "sip_proxy_server": "sip.test",
                    "notification_registration_ids": {
                        token: {
                            "notification_type": "apns" if device == "iphone" else "fcm",
                            "notification_preferences": ["incoming_call"],
                        }
                    },
                },
            )
            device_create(
                account_id=account, app_name="com.acme.phone", device_id=device, document=document
            )


def written() -> dict[str, list[tuple[Any, ...]]]:
    """Every row the channels write, in id order, without the ids (sequences are not rolled
    back, so the second path's ids are higher)."""
    return {
        "notifications": list(
            Notification.objects.order_by("id").values_list(
                "subscription_id", "event_id", "created_at", "expires_at"
            )
        ),
        "deliveries": list(
            Delivery.objects.order_by("id").values_list(
                "subscription_id",
                "event_id",
                "status",
                "created_at",
                "expires_at",
                "next_attempt_at",
                "attempts",
            )
        ),
        "pushes": list(
            DevicePush.objects.order_by("id").values_list(
                "registration_id", "event_id", "status", "attempts", "next_attempt_at"
            )
        ),
    }


def route(event: Event) -> Callable[[Callable[..., Any]], Any]:
    """Store and route `event` by one path, as events.services._event_store_and_route does
    (the statements built once, so both paths get the same parameters, timestamps included)."""
    db = connections[DEFAULT_DB_ALIAS]
    statements = [
        channel.routing_statement(event=event, connection=db) for channel in channels_all()
    ]
    params = [
        field.get_db_prep_save(getattr(event, field.attname), db)
        for field in Event._meta.concrete_fields
    ]

    def run(path: Callable[..., Any]) -> Any:
        if path is _store_and_route_postgresql:
            ids = path(db, params, statements)
            again = path(db, params, statements)
        else:
            ids = path(db, event, params, statements)
            again = path(db, event, params, statements)
        return [len(channel_ids) for channel_ids in ids], again, written()

    return run


@pytest.mark.parametrize("payload", [{"account_id": "acme"}, {"device_id": "iphone"}])
def test_both_routing_paths_write_the_same_rows(recipients: None, payload: dict[str, str]):
    event = Event(
        id=new_event_id(),
        type_id="incoming_call",
        payload=payload,
        producer="key:t",
        idempotency_key="twin",
        payload_hash="0" * 64,
        created_at=timezone.now(),
        account_id="acme",
    )

    run = route(event)
    with transaction.atomic():
        postgresql = run(_store_and_route_postgresql)
        transaction.set_rollback(True)
    portable = run(_store_and_route_in_a_transaction)

    for table in ("notifications", "deliveries", "pushes"):
        assert postgresql[2][table] == portable[2][table], table
    assert postgresql[:2] == portable[:2]
    counts, again, rows = portable
    assert again is None  # a repeat writes nothing
    assert len(rows["notifications"]) == 4
    assert len(rows["deliveries"]) == 2  # one per client and URL
    assert len(rows["pushes"]) == (2 if "account_id" in payload else 1)
    assert sum(counts) == sum(len(table) for table in rows.values())
