from django.apps import AppConfig


class DevicesConfig(AppConfig):
    """Device push registrations, push providers and device deliveries."""

    name = "devices"

    def ready(self) -> None:
        from devices.api.kazoo import MAX_BODY_BYTES, kazoo_too_large
        from devices.channels import DevicePushChannel
        from devices.selectors import devices_count
        from events.channels import channel_register
        from notifyhub.body_limits import body_limit_register
        from notifyhub.dashboard import counter_register

        body_limit_register(
            prefix="/v2/", max_bytes=lambda: MAX_BODY_BYTES, refusal=kazoo_too_large
        )
        channel_register(DevicePushChannel())
        counter_register(label="Devices", compute=devices_count, url="/admin/devices/device/")
