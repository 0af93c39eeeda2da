"""Reads: a device with its tokens, and what the admin counts."""

from django.db.models import Prefetch

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
