from django.apps import AppConfig


class SubscriptionsConfig(AppConfig):
    """Subscriptions, their notification queues (paged and FIFO pull) and webhook deliveries."""

    name = "subscriptions"

    def ready(self) -> None:
        from django.db.models.signals import pre_delete

        from events.channels import channel_register
        from notifyhub.dashboard import counter_register
        from subscriptions.channels import PullChannel, WebhookChannel
        from subscriptions.models import Subscription
        from subscriptions.receivers import subscription_deleting
        from subscriptions.selectors import deliveries_failed_count, notifications_pending_count

        channel_register(PullChannel())
        channel_register(WebhookChannel())
        pre_delete.connect(
            subscription_deleting,
            sender=Subscription,
            dispatch_uid="subscriptions.subscription_deleting",
        )
        counter_register(
            label="Queued notifications",
            compute=notifications_pending_count,
            url="/admin/subscriptions/notification/?expired=no",
        )
        counter_register(
            label="Failed deliveries",
            compute=deliveries_failed_count,
            url="/admin/subscriptions/delivery/?status__in=failed,unknown",
        )
