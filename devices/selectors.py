"""Reads: a device with its tokens, what the admin counts, and the tokens an event reaches."""

from django.db.models import Prefetch, QuerySet

from devices.models import Device, Preference, Registration


def device_get(*, account_id: str, app_name: str, device_id: str) -> Device | None:
    """One subscription with its registration ids and their preferences (three queries)."""
    return (
        Device.objects.filter(account_id=account_id, app_name=app_name, device_id=device_id)
        .prefetch_related(
            Prefetch(
                "registrations",
                queryset=Registration.objects.order_by("id").prefetch_related(
                    Prefetch("preferences", queryset=Preference.objects.order_by("id"))
                ),
            )
        )
        .first()
    )


def devices_count() -> int:
    """Every registered device (the admin index counter)."""
    return Device.objects.count()


def registrations_for_event(
    *, account_id: str, type_id: str, device_id: str | None
) -> QuerySet[Registration]:
    """Active tokens of the account whose preferences include the event type."""
    registrations = Registration.objects.filter(
        active=True, device__account_id=account_id, preferences__name=type_id
    )
    if device_id is not None:
        registrations = registrations.filter(device__device_id=device_id)
    return registrations
