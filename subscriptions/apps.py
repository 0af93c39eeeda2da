from django.apps import AppConfig


class SubscriptionsConfig(AppConfig):
    """Subscriptions, their notification queues (paged and FIFO pull) and webhook deliveries."""

    name = "subscriptions"

    def ready(self) -> None:
        from django.db.models.signals import pre_delete

        from events.channels import channel_register
        from notifyhub.dashboard import chart_register, counter_register
        from notifyhub.metrics import scrape_gauge_register
        from subscriptions.channels import PullChannel, WebhookChannel
        from subscriptions.models import Subscription
        from subscriptions.receivers import subscription_deleting
        from subscriptions.selectors import (
            OUTCOME_SERIES,
            deliveries_backlog_age,
            deliveries_by_outcome_per_hour,
            deliveries_failed_count,
            deliveries_pending_count,
            notifications_pending_count,
        )

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
        chart_register(
            title="Webhook deliveries per hour by outcome, last 12 hours",
            compute=deliveries_by_outcome_per_hour,
            series=OUTCOME_SERIES,
            empty_text="No webhook deliveries in the last 12 hours.",
            url="/admin/subscriptions/delivery/",
        )
        scrape_gauge_register(
            name="notifyhub_notifications_queued",
            documentation="Readable notifications across every subscription's queue.",
            compute=notifications_pending_count,
        )
        scrape_gauge_register(
            name="notifyhub_webhook_deliveries_pending",
            documentation="Webhook deliveries waiting for an attempt (due or backing off).",
            compute=deliveries_pending_count,
        )
        scrape_gauge_register(
            name="notifyhub_webhook_backlog_age_seconds",
            documentation="How late the longest-waiting due webhook delivery is (0: none due).",
            compute=deliveries_backlog_age,
        )
