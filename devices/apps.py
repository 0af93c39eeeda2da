import functools

from django.apps import AppConfig


class DevicesConfig(AppConfig):
    """Device push registrations, push providers and device deliveries."""

    name = "devices"

    def ready(self) -> None:
        from devices.api.kazoo import MAX_BODY_BYTES, kazoo_too_large
        from devices.channels import DevicePushChannel
        from devices.providers.configuration import provider_missing, providers_status
        from devices.selectors import devices_count
        from events.channels import channel_register
        from notifyhub.body_limits import body_limit_register
        from notifyhub.dashboard import counter_register
        from notifyhub.health import status_register
        from notifyhub.metrics import scrape_gauge_register

        body_limit_register(
            prefix="/v2/", max_bytes=lambda: MAX_BODY_BYTES, refusal=kazoo_too_large
        )
        channel_register(DevicePushChannel())
        counter_register(label="Devices", compute=devices_count, url="/admin/devices/device/")
        for provider, label in (("apns", "APNs"), ("fcm", "FCM")):
            status_register(name=provider, compute=functools.partial(_provider_status, provider))
            counter_register(
                label=f"Push provider {label}",
                compute=functools.partial(_provider_described, provider),
            )
        scrape_gauge_register(
            name="notifyhub_device_provider_configured",
            documentation="1 if a push provider has its credentials configured, else 0.",
            compute=lambda: {
                (provider,): 0.0 if provider_missing(provider) else 1.0
                for provider in providers_status()
            },
            labels=("provider",),
        )


def _provider_status(provider: str) -> dict[str, str]:
    from devices.providers.configuration import providers_status

    return providers_status()[provider]


def _provider_described(provider: str) -> str:
    status = _provider_status(provider)
    if status["status"] == "ok":
        return status["detail"]
    return f"{status['status']}: {status['detail']}"
