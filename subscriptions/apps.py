from django.apps import AppConfig


class SubscriptionsConfig(AppConfig):
    """Subscriptions, their notification queues, webhook deliveries and stream sessions."""

    name = "subscriptions"
