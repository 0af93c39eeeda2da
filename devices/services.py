"""Rules that write: device registrations (a validated document), token deactivation, pushes.

The Kazoo wire format (validating a document, rendering one) is the surface's:
`devices/api/kazoo_document.py`; each provider's is its own: `devices/providers/`.
"""

import functools
import logging
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F, Q
from django.utils import timezone

from devices.models import Device, DevicePush, Preference, PushAttempt, Registration
from devices.providers import Outcome, ProviderAnswer, PushMessage, push_clients
from devices.providers.configuration import NOT_CONFIGURED
from devices.tasks import device_pushes_enqueue
from events.channels import RoutingStatement
from events.models import Event
from events.operational import PROVIDER_FAILING, ProviderFailing, operational_event_emit
from events.services import event_ingest
from notifyhub import errors, metrics
from notifyhub.models import Account
from notifyhub.outbox import Retries, backoff_seconds
from notifyhub.sql import sql_names
from notifyhub.tenancy import HUB

logger = logging.getLogger(__name__)


class DeviceNotFound(errors.NotFound):
    """No such device (or account); `identifier` is the id that named nothing."""

    description = "bad identifier"

    def __init__(self, identifier: str) -> None:
        super().__init__()
        self.identifier = identifier


class DeviceConflict(errors.HubError):
    code, status, description = "NOT000071", 409, "The document changed or already exists."


@dataclass(frozen=True)
class RegistrationSpec:
    """One validated registration id of a document."""

    token: str
    notification_type: str
    notification_preferences: list[str]
    push_type: str = Registration.PushType.ALERT


@dataclass(frozen=True)
class DeviceDocument:
    """A validated push notification subscription document (what the services store)."""

    app_name: str
    mobile_device_id: str
    platform: str
    sip_proxy_server: str
    registrations: list[RegistrationSpec] = field(default_factory=list)


def _next_revision(current: str | None) -> str:
    generation = int(current.split("-", 1)[0]) + 1 if current else 1
    return f"{generation}-{secrets.token_hex(16)}"


def _check_revision(device: Device, expected_revision: str | None) -> None:
    if expected_revision is not None and expected_revision != device.revision:
        raise DeviceConflict(
            f"The document is at revision {device.revision}, not {expected_revision}."
        )


def _save(*, device: Device, document: DeviceDocument) -> Device:
    """Write the document's fields and registrations, and free its mobile device elsewhere."""
    # One device per mobile device: another device of the account holding the same phone is
    # removed in this transaction, before the unique index would see two rows.
    Device.objects.filter(
        account_id=device.account_id, mobile_device_id=document.mobile_device_id
    ).exclude(device_id=device.device_id).delete()
    device.mobile_device_id = document.mobile_device_id
    device.platform = document.platform
    device.sip_proxy_server = document.sip_proxy_server
    device.revision = _next_revision(device.revision)
    device.updated_at = timezone.now()
    device.save()
    existing = {registration.token: registration for registration in device.registrations.all()}
    wanted = {spec.token: spec for spec in document.registrations}
    device.registrations.exclude(token__in=list(wanted)).delete()
    # Preferences are rewritten whole: the unique (device, name) index must never see a type
    # moving between two registration ids half-way.
    device.preferences.all().delete()
    to_create: list[Registration] = []
    to_update: list[Registration] = []
    for token, spec in wanted.items():
        registration = existing.get(token)
        if registration is None:
            to_create.append(
                Registration(
                    device=device,
                    token=token,
                    notification_type=spec.notification_type,
                    push_type=spec.push_type,
                )
            )
            continue
        # A token that the provider refused stays inactive: re-sending it in a document does
        # not make Apple or Google accept it again; the phone registers a new token instead.
        registration.notification_type = spec.notification_type
        registration.push_type = spec.push_type
        to_update.append(registration)
    Registration.objects.bulk_create(to_create)
    Registration.objects.bulk_update(to_update, ["notification_type", "push_type"])
    by_token = {registration.token: registration for registration in [*to_create, *to_update]}
    Preference.objects.bulk_create(
        Preference(device=device, registration=by_token[spec.token], name=name)
        for spec in document.registrations
        for name in spec.notification_preferences
    )
    return device


@transaction.atomic
def device_create(
    *, account_id: str, app_name: str, device_id: str, document: DeviceDocument
) -> Device:
    """Store a new subscription; one that exists already is a conflict."""
    account = Account.objects.filter(pk=account_id).first()
    if account is None:
        raise DeviceNotFound(account_id)
    if Device.objects.filter(account=account, app_name=app_name, device_id=device_id).exists():
        raise DeviceConflict("The device is already registered; update it with POST.")
    try:
        with transaction.atomic():
            device = Device(account=account, app_name=app_name, device_id=device_id, revision="")
            return _save(device=device, document=document)
    except IntegrityError:
        # A concurrent request registered the same device or mobile device first.
        raise DeviceConflict("A concurrent request registered this device first.") from None


def _device_locked(
    *, account_id: str, app_name: str, device_id: str, expected_revision: str | None
) -> Device:
    """The device row, locked for this transaction, if the caller read its current revision.

    The row lock serialises writers, so the revision check and the write that follows are one
    step: no lost updates.
    """
    device = (
        Device.objects.select_for_update()
        .filter(account_id=account_id, app_name=app_name, device_id=device_id)
        .first()
    )
    if device is None:
        raise DeviceNotFound(device_id)
    _check_revision(device, expected_revision)
    return device


@transaction.atomic
def device_update(
    *,
    account_id: str,
    app_name: str,
    device_id: str,
    document: DeviceDocument,
    expected_revision: str | None,
) -> Device:
    """Replace a subscription's document, refusing a writer that read an older revision."""
    device = _device_locked(
        account_id=account_id,
        app_name=app_name,
        device_id=device_id,
        expected_revision=expected_revision,
    )
    try:
        with transaction.atomic():
            return _save(device=device, document=document)
    except IntegrityError:
        raise DeviceConflict("A concurrent request registered this mobile device.") from None


@transaction.atomic
def device_delete(
    *, account_id: str, app_name: str, device_id: str, expected_revision: str | None
) -> Device:
    """Remove a subscription and its tokens (and the pushes still owed to them); returns the
    removed device as it was last stored, revision included."""
    device = _device_locked(
        account_id=account_id,
        app_name=app_name,
        device_id=device_id,
        expected_revision=expected_revision,
    )
    device.delete()
    return device


def registration_deactivate(*, registration_id: int, reason: str) -> bool:
    """Stop pushing to a token the provider refused; returns whether it was active."""
    changed = Registration.objects.filter(pk=registration_id, active=True).update(
        active=False, deactivated_at=timezone.now(), deactivation_reason=reason[:255]
    )
    if changed:
        DevicePush.objects.filter(
            registration_id=registration_id,
            status__in=[DevicePush.Status.PENDING, DevicePush.Status.SENDING],
        ).update(status=DevicePush.Status.INVALID_TOKEN)
    return bool(changed)


# --- Pushes ---

ROUTED_TYPES = frozenset(Preference.Name.values)
# The event type of the admin's "send test push" (seeded by this app's migration).
TEST_EVENT_TYPE = "device_test"


@dataclass(frozen=True)
class SendResult:
    """What one batch did, and when the pushes it must retry are due."""

    sent: int = 0
    invalid: int = 0
    failed: int = 0
    retries: Retries = field(default_factory=Retries)


@functools.cache
def _device_pushes_route_sql(vendor: str, *, one_device: bool) -> str:
    """The device push routing statement for this database vendor (built once per shape)."""
    p = sql_names(DevicePush)
    r = sql_names(Registration)
    d = sql_names(Device)
    f = sql_names(Preference)
    e = sql_names(Event)
    # A type belongs to one registration per device (Preference's unique index), so the join
    # yields each token at most once. ORDER BY: ids in Registration's ordering, as the ORM
    # version gave them.
    device_filter = f"AND d.{d.device_id} = %s" if one_device else ""
    return f"""
        INSERT INTO {p.table} (
            {p.event}, {p.registration}, {p.status}, {p.attempts}, {p.next_attempt_at},
            {p.created_at}
        )
        SELECT e.{e.id}, r.{r.id}, %s, 0, %s, %s
        FROM new_event AS e
        JOIN {d.table} AS d ON d.{d.account} = e.{e.account_id}
        JOIN {r.table} AS r ON r.{r.device} = d.{d.id}
        JOIN {f.table} AS f ON f.{f.registration} = r.{r.id} AND f.{f.name} = e.{e.type}
        WHERE r.{r.active} {device_filter}
        ORDER BY r.{r.device}, r.{r.id}
        RETURNING {p.id}
    """  # noqa: S608 - names from our models' _meta, values as parameters


def device_pushes_routing_statement(
    *, event: Event, connection: BaseDatabaseWrapper
) -> RoutingStatement | None:
    """Owe one push per active token of the event's account that wants its type (only the
    target device's tokens when the payload names a `device_id`), written with the event; None
    for an event no device can want."""
    if event.type_id not in ROUTED_TYPES or not event.account_id:
        return None
    target = event.payload.get("device_id") if isinstance(event.payload, dict) else None
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    params = [DevicePush.Status.PENDING, now, now]
    if target is not None:
        params.append(str(target))
    return RoutingStatement(
        _device_pushes_route_sql(connection.vendor, one_device=target is not None), params
    )


def _message(push: DevicePush) -> PushMessage:
    """The push as its provider takes it (the provider writes the request)."""
    registration = push.registration
    payload = push.event.payload
    return PushMessage(
        provider=registration.notification_type,
        token=registration.token,
        topic=settings.NOTIFYHUB_APNS_TOPIC or registration.device.app_name,
        event_id=push.event_id,
        event_type=push.event.type_id,
        payload=payload if isinstance(payload, dict) else {},
        high_priority=push.event.type_id == Preference.Name.INCOMING_CALL,
        voip=registration.push_type == Registration.PushType.VOIP,
    )


def _claim(push_ids: list[int]) -> list[DevicePush]:
    """Lease the due pushes among `push_ids` (and other due ones, up to a batch); a push leased
    by another worker is skipped."""
    now = timezone.now()
    due = Q(status=DevicePush.Status.PENDING, next_attempt_at__lte=now) | Q(
        status=DevicePush.Status.SENDING, claimed_until__lt=now
    )
    with transaction.atomic():
        # skip_locked: two tasks holding the same ids split them instead of waiting.
        ids = list(
            DevicePush.objects.select_for_update(skip_locked=True)
            .filter(due, pk__in=push_ids)
            .values_list("pk", flat=True)
        )
        room = settings.NOTIFYHUB_PUSH_BATCH - len(ids)
        if room > 0:
            # Fill the batch with other due pushes: under load many small tasks (one event, one
            # phone each) become a few full batches in flight together; their own tasks then
            # find nothing left to claim and end at once.
            ids += list(
                DevicePush.objects.select_for_update(skip_locked=True)
                .filter(status=DevicePush.Status.PENDING, next_attempt_at__lte=now)
                .exclude(pk__in=ids)
                .order_by("next_attempt_at")
                .values_list("pk", flat=True)[:room]
            )
        DevicePush.objects.filter(pk__in=ids).update(
            status=DevicePush.Status.SENDING,
            claimed_until=now + settings.NOTIFYHUB_PUSH_LEASE,
            attempts=F("attempts") + 1,
        )
    return list(
        DevicePush.objects.filter(pk__in=ids).select_related("event", "registration__device")
    )


def _backoff(push: DevicePush, answer: ProviderAnswer) -> float:
    # Not jittered: a provider's throttle is per connection, which all of a worker's pushes share.
    return backoff_seconds(
        attempt=push.attempts,
        base=settings.NOTIFYHUB_PUSH_BACKOFF,
        cap=3600.0,
        retry_after=answer.retry_after,
        jitter=False,
    )


def device_pushes_send(*, push_ids: list[int]) -> SendResult:
    """Claim these pushes, send them concurrently, record every attempt and settle each push."""
    pushes = _claim(push_ids)
    if not pushes:
        return SendResult()
    sendable = [push for push in pushes if push.registration.active]
    answers = push_clients().send_all([_message(push) for push in sendable])
    return _settle(pushes, dict(zip([p.pk for p in sendable], answers, strict=True)))


def _settle(pushes: list[DevicePush], answers: dict[int, ProviderAnswer]) -> SendResult:
    now = timezone.now()
    attempts: list[PushAttempt] = []
    sent: list[int] = []
    failed: list[int] = []
    invalid: dict[int, str] = {}
    retries: list[DevicePush] = []
    for push in pushes:
        answer = answers.get(push.pk)
        if answer is None:  # Its token was retired while the push waited.
            invalid.setdefault(push.registration_id, "")
            continue
        attempts.append(
            PushAttempt(
                push=push,
                device_id=push.registration.device_id,
                registration=push.registration,
                event_id=push.event_id,
                provider=push.registration.notification_type,
                status_code=answer.status_code,
                reason=answer.reason[:255],
                answer=answer.answer,
                message_id=answer.message_id[:255],
                created_at=now,
            )
        )
        _push_attempt_observe(push, answer)
        if answer.outcome == Outcome.SENT:
            sent.append(push.pk)
        elif answer.outcome == Outcome.INVALID_TOKEN:
            invalid[push.registration_id] = answer.reason
        elif (
            answer.outcome == Outcome.RETRY and push.attempts < settings.NOTIFYHUB_PUSH_MAX_ATTEMPTS
        ):
            push.status = DevicePush.Status.PENDING
            push.claimed_until = None
            push.next_attempt_at = now + timedelta(seconds=_backoff(push, answer))
            retries.append(push)
        else:
            failed.append(push.pk)
    with transaction.atomic():
        PushAttempt.objects.bulk_create(attempts)
        DevicePush.objects.filter(pk__in=sent).update(
            status=DevicePush.Status.SENT, sent_at=now, claimed_until=None
        )
        DevicePush.objects.filter(pk__in=failed).update(
            status=DevicePush.Status.FAILED, claimed_until=None
        )
        DevicePush.objects.bulk_update(retries, ["status", "claimed_until", "next_attempt_at"])
        for registration_id, reason in invalid.items():
            if reason:
                registration_deactivate(registration_id=registration_id, reason=reason)
            DevicePush.objects.filter(
                registration_id=registration_id, pk__in=[p.pk for p in pushes]
            ).update(status=DevicePush.Status.INVALID_TOKEN, claimed_until=None)
    return SendResult(
        sent=len(sent),
        invalid=sum(1 for p in pushes if p.registration_id in invalid),
        failed=len(failed),
        retries=Retries(
            {push.pk: (push.next_attempt_at - now).total_seconds() for push in retries}
        ),
    )


def _provider_at_fault(answer: ProviderAnswer) -> bool:
    """Whether a failed push says the provider (or the hub's access to it) is failing, rather
    than this one token: not configured, unreachable, refusing the hub's credentials, throttling
    or erring."""
    code = answer.status_code
    return answer.reason == NOT_CONFIGURED or code is None or code in (401, 403, 429) or code >= 500


def _provider_failing_announce(push: DevicePush, provider: str, answer: ProviderAnswer) -> None:
    payload: ProviderFailing = {
        "provider": provider,
        "reason": answer.reason,
        "answer": answer.answer[:500],
        "push_id": push.pk,
        "event_id": push.event_id,
    }
    operational_event_emit(
        type_id=PROVIDER_FAILING,
        payload=dict(payload),
        key=f"{provider}:{push.pk}:{push.attempts}",
        throttle_seconds=settings.NOTIFYHUB_PROVIDER_ALERT_INTERVAL,
    )


def _push_attempt_observe(push: DevicePush, answer: ProviderAnswer) -> None:
    """Count one push attempt by provider and outcome; log a failure once, with its ids."""
    provider = push.registration.notification_type
    metrics.device_pushes.labels(provider, str(answer.outcome)).inc()
    if answer.outcome == Outcome.SENT:
        return
    if _provider_at_fault(answer):
        _provider_failing_announce(push, provider, answer)
    logger.warning(
        "device push %s: push=%s event=%s registration=%s device=%s provider=%s attempt=%d "
        "status=%s: %s %s",
        answer.outcome,
        push.pk,
        push.event_id,
        push.registration_id,
        push.registration.device_id,
        provider,
        push.attempts,
        answer.status_code,
        answer.reason,
        answer.answer[:200],
        extra={
            "push_id": push.pk,
            "event_id": push.event_id,
            "registration_id": push.registration_id,
            "device_id": push.registration.device_id,
            "provider": provider,
            "attempt": push.attempts,
            "status_code": answer.status_code,
            "reason": answer.reason,
        },
    )


def device_pushes_due(*, limit: int) -> list[int]:
    """Pushes whose task was lost: pending past their due time, or leased past the lease."""
    now = timezone.now()
    # The grace keeps the sweep off pushes whose own task is simply still in the queue.
    grace = now - settings.NOTIFYHUB_PUSH_SWEEP_GRACE
    due = Q(status=DevicePush.Status.PENDING, next_attempt_at__lte=grace) | Q(
        status=DevicePush.Status.SENDING, claimed_until__lt=now
    )
    return list(
        DevicePush.objects.filter(due)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


@transaction.atomic
def device_test_push(*, device_ids: list[int]) -> list[int]:
    """Send a `device_test` event to every active token of these devices, whatever they prefer."""
    push_ids: list[int] = []
    for device in Device.objects.filter(pk__in=device_ids):
        result = event_ingest(
            producer="admin:test-push",
            reach=HUB,
            type_id=TEST_EVENT_TYPE,
            payload={
                "account_id": device.account_id,
                "device_id": device.device_id,
                "message": "notifyhub test push",
                "nonce": secrets.token_hex(8),
            },
            idempotency_key=None,
        )
        pushes = DevicePush.objects.bulk_create(
            DevicePush(event_id=result.event_id, registration=registration)
            for registration in device.registrations.filter(active=True)
        )
        push_ids.extend(push.pk for push in pushes)
    device_pushes_enqueue(push_ids=push_ids)
    return push_ids
