from django.apps import AppConfig


class DevicesConfig(AppConfig):
    """Device push registrations, push providers and device deliveries."""

    name = "devices"

    def ready(self) -> None:
        from devices.channels import DevicePushChannel
        from devices.selectors import devices_count
        from events.channels import channel_register
        from notifyhub.dashboard import counter_register

        channel_register(DevicePushChannel())
        counter_register(label="Devices", compute=devices_count, url="/admin/devices/device/")
