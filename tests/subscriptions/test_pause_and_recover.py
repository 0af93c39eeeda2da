"""Pause keeps a subscription's deliveries waiting and resume sends them in order; "recover since
T" resends exactly the rows it should and says why it left the others; the ledger outlives its
subscription and keeps the headers sent and received."""

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from subscriptions.models import Delivery, Recovery, Subscription
from subscriptions.redelivery import (
    SKIP_EXPIRED,
    SKIP_IN_FLIGHT,
    SKIP_NOT_FAILED,
    deliveries_purge_ledger,
    deliveries_resend,
    deliveries_sweep,
    recovery_run,
    recovery_start,
    subscription_pause,
    subscription_resume,
)
from subscriptions.webhooks import deliveries_send
from tests.receivers import Behaviour, receiving
from tests.subscriptions.factories import delivery_of, ingest, push_subscription

pytestmark = pytest.mark.django_db


def statuses(subscription: Subscription) -> list[str]:
    return list(
        Delivery.objects.filter(subscription=subscription)
        .order_by("id")
        .values_list("status", flat=True)
    )


def test_a_paused_subscription_holds_its_deliveries_and_resume_sends_them_in_order(
    consumer, receiver, settings
):
    # One request at a time per subscription: the order of arrival is then the order of sending.
    settings.NOTIFYHUB_WEBHOOK_PER_SUBSCRIPTION = 1
    subscription = push_subscription(client_id=consumer.client_id, url=receiver.url)
    first = ingest(n=0)
    held = subscription_pause(subscription=subscription)
    assert held == 1
    events = [first] + [ingest(n=n) for n in range(1, 5)]

    # Sent while paused: claimed, found paused, given back without an attempt.
    assert deliveries_send().attempted == 0
    deliveries_sweep(grace=timedelta(0))
    deliveries_send()
    assert receiver.requests == []
    assert statuses(subscription) == ["paused"] * 5
    assert not Delivery.objects.filter(subscription=subscription, attempts__gt=0).exists()

    assert subscription_resume(subscription=subscription) == 5
    deliveries_send()

    assert [json.loads(r.body)["id"] for r in receiver.requests] == events
    assert statuses(subscription) == ["delivered"] * 5


def test_pausing_still_queues_for_the_pull_surfaces(consumer, receiver):
    subscription = push_subscription(client_id=consumer.client_id, url=receiver.url)
    subscription_pause(subscription=subscription)
    event_id = ingest(n=1)

    pulled = consumer.api().get("/api/v3/integration/notifications")

    assert pulled.status_code == 200
    assert pulled.json()["id"] == event_id


def test_a_row_held_while_its_subscription_was_resumed_is_released_by_the_sweep(consumer, receiver):
    subscription = push_subscription(client_id=consumer.client_id, url=receiver.url)
    event_id = ingest(n=1)
    # What a sender that read the subscription as paused just before the resume leaves behind.
    Delivery.objects.filter(subscription=subscription).update(status=Delivery.Status.PAUSED)

    deliveries_sweep(grace=timedelta(0))
    deliveries_send()

    assert delivery_of(subscription=subscription, event_id=event_id).status == "delivered"


def test_recover_resends_exactly_the_failed_rows_since_the_time_and_says_why_not_the_others(
    consumer,
):
    with receiving(Behaviour(status=500)) as failing:
        subscription = push_subscription(client_id=consumer.client_id, url=failing.url)
        old = ingest(n=0)
        deliveries_send()
        since = timezone.now()
        failed = [ingest(n=n) for n in (1, 2)]
        deliveries_send()
        assert len(failing.requests) == 3
    with receiving() as healthy:
        Subscription.objects.filter(pk=subscription.pk).update(notification_url=healthy.url)
        delivered = ingest(n=3)
        deliveries_send()
        expired = ingest(n=4)
        deliveries_send()
        Delivery.objects.filter(event_id=expired).update(
            status=Delivery.Status.FAILED, expires_at=timezone.now()
        )
        pending = ingest(n=5)  # written, not yet sent

        recovery = recovery_start(
            subscription=subscription, since=since, scope="failed", requested_by="test"
        )
        recovery = recovery_run(recovery_id=recovery.pk)
        deliveries_send()

        assert recovery.status == Recovery.Status.DONE
        assert (recovery.total, recovery.resent) == (5, 2)
        assert recovery.skipped == {SKIP_NOT_FAILED: 1, SKIP_EXPIRED: 1, SKIP_IN_FLIGHT: 1}
        resent_ids = [json.loads(r.body)["id"] for r in healthy.requests]
        # Sent once each as they came (expired was sent, then aged by hand), the failed ones
        # again.
        assert sorted(resent_ids) == sorted([delivered, expired, *failed, pending])
        assert old not in resent_ids


def test_recover_all_resends_delivered_rows_too(consumer, receiver):
    subscription = push_subscription(client_id=consumer.client_id, url=receiver.url)
    since = timezone.now() - timedelta(seconds=1)
    event_id = ingest(n=1)
    deliveries_send()

    recovery = recovery_start(subscription=subscription, since=since, scope="all", requested_by="t")
    assert recovery_run(recovery_id=recovery.pk).resent == 1
    deliveries_send()

    assert [json.loads(r.body)["id"] for r in receiver.requests] == [event_id, event_id]
    assert delivery_of(subscription=subscription, event_id=event_id).attempts == 2


def test_resend_of_rows_still_pending_says_so(consumer, receiver):
    subscription = push_subscription(client_id=consumer.client_id, url=receiver.url)
    ingest(n=1)

    result = deliveries_resend(
        delivery_ids=list(
            Delivery.objects.filter(subscription=subscription).values_list("id", flat=True)
        )
    )

    assert result.resent == 0
    assert result.describe() == f"0 queued to be sent again; left as they were: 1 {SKIP_IN_FLIGHT}"


def test_the_ledger_outlives_its_subscription_until_its_retention(consumer, receiver, settings):
    subscription = push_subscription(client_id=consumer.client_id, url=receiver.url)
    sent = ingest(n=1)
    deliveries_send()
    waiting = ingest(n=2)

    subscription.delete()

    kept = Delivery.objects.get(event_id=sent)
    assert kept.subscription_id is None
    assert kept.deleted_subscription == f"{consumer.client_id} {receiver.url}"
    assert kept.status == "delivered"
    assert kept.attempt_log.count() == 1
    orphan = Delivery.objects.get(event_id=waiting)
    assert (orphan.status, orphan.last_error) == ("failed", "its subscription was deleted")

    assert deliveries_purge_ledger() == 0
    settings.NOTIFYHUB_LEDGER_RETENTION = timedelta(0)
    assert deliveries_purge_ledger() == 2
    assert not Delivery.objects.exists()


def test_an_attempt_keeps_the_headers_sent_and_received(consumer):
    with receiving(Behaviour(status=503, headers={"Retry-After": "7"})) as busy:
        subscription = push_subscription(client_id=consumer.client_id, url=busy.url)
        event_id = ingest(n=1)
        deliveries_send()

    attempt = delivery_of(subscription=subscription, event_id=event_id).attempt_log.get()
    assert attempt.request_headers["webhook-id"] == event_id
    assert attempt.request_headers["content-type"] == "application/json"
    assert attempt.request_headers["webhook-signature"].startswith("v1,")
    assert attempt.response_headers["retry-after"] == "7"


def test_the_operator_commands_pause_resume_and_recover(consumer, receiver, capsys):
    subscription = push_subscription(client_id=consumer.client_id, url=receiver.url)
    call_command("subscriptions", "pause", str(subscription.pk))
    assert json.loads(capsys.readouterr().out)["held"] == 0
    ingest(n=1)
    deliveries_send()
    call_command("subscriptions", "show", str(subscription.pk))
    assert json.loads(capsys.readouterr().out)["deliveries"] == {"paused": 1}
    call_command("subscriptions", "list", "--paused")
    assert json.loads(capsys.readouterr().out)["id"] == str(subscription.pk)
    call_command("subscriptions", "resume", str(subscription.pk))
    assert json.loads(capsys.readouterr().out)["queued"] == 1
    deliveries_send()
    call_command(
        "subscriptions",
        "recover",
        str(subscription.pk),
        "--since",
        "2000-01-01T00:00Z",
        "--scope",
        "all",
        "--wait",
    )
    out = json.loads(capsys.readouterr().out)
    assert (out["status"], out["total"], out["resent"]) == ("done", 1, 1)


# --- The API, for the subscription's administrator ---


def base(subscription: Subscription) -> str:
    return f"/notification/v1/subscriptions/{subscription.pk}"


def test_the_administrator_pauses_resumes_and_recovers_through_the_api(
    administrator, consumer, receiver
):
    subscription = push_subscription(client_id=consumer.client_id, url=receiver.url)
    api = administrator.api()

    paused = api.post(f"{base(subscription)}/pause")
    assert paused.status_code == 200
    assert paused.json()["deliveries"] == 0
    assert paused.json()["paused_at"].endswith("Z")
    ingest(n=1)
    deliveries_send()
    resumed = api.post(f"{base(subscription)}/resume")
    assert resumed.json() == {"paused_at": None, "deliveries": 1}
    deliveries_send()

    started = api.post(
        f"{base(subscription)}/recoveries",
        {"since": "2000-01-01T00:00:00Z", "scope": "all"},
        format="json",
    )
    assert started.status_code == 202
    assert started.json()["status"] == "queued"
    recovery_run(recovery_id=started.json()["id"])
    progress = api.get(f"{base(subscription)}/recoveries/{started.json()['id']}")
    assert progress.status_code == 200
    assert (progress.json()["status"], progress.json()["total"], progress.json()["resent"]) == (
        "done",
        1,
        1,
    )


def test_a_recovery_since_an_early_year_is_echoed_as_rfc_3339(administrator, consumer):
    # Found by schemathesis: strftime wrote the year 38 as `38`, which no RFC 3339 parser reads.
    subscription = push_subscription(client_id=consumer.client_id, url="https://example.com/h")

    started = administrator.api().post(
        f"{base(subscription)}/recoveries",
        {"since": "0038-08-17T05:07:29.820+13:00", "scope": "failed"},
        format="json",
    )

    assert started.status_code == 202, started.content
    assert started.json()["since"] == "0038-08-16T16:07:29Z"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"since": "2999-01-01T00:00:00Z"}, "since"),
        ({"since": "2020-01-01T00:00:00Z", "scope": "everything"}, "scope"),
        ({}, "since"),
    ],
)
def test_a_bad_recovery_is_a_clear_400_and_starts_nothing(administrator, consumer, body, field):
    subscription = push_subscription(client_id=consumer.client_id, url="https://example.com/h")

    response = administrator.api().post(f"{base(subscription)}/recoveries", body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "NOT000007"
    assert response.json()["field"] == field
    assert not Recovery.objects.exists()


def test_others_may_not_pause_or_recover(administrator, consumer):
    subscription = push_subscription(client_id=consumer.client_id, url="https://example.com/h")

    assert consumer.api().post(f"{base(subscription)}/pause").status_code == 403
    assert administrator.api().post(f"{base(subscription)}/x/pause").status_code == 404
    missing = "/notification/v1/subscriptions/00000000-0000-0000-0000-000000000000/resume"
    assert administrator.api().post(missing).status_code == 404
    assert administrator.api().get(f"{base(subscription)}/recoveries/999").status_code == 404
    subscription.refresh_from_db()
    assert subscription.paused_at is None
