from django.apps import AppConfig


class DevicesConfig(AppConfig):
    """Device push registrations, push providers and device deliveries."""

    name = "devices"
