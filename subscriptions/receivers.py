"""Signal receivers of the subscriptions app (connected in SubscriptionsConfig.ready())."""

from typing import Any

from django.utils import timezone

from subscriptions.models import Delivery, Subscription


def subscription_deleting(sender: type, instance: Subscription, **kwargs: Any) -> None:
    """pre_delete receiver for Subscription: its ledger outlives it. Each delivery keeps who it
    was for (the foreign key is then set null), and what was still to be sent fails with the
    reason, since nobody is left to send it to. Runs however the subscription is deleted (the
    API, the admin, a queryset)."""
    deliveries = Delivery.objects.filter(subscription=instance)
    who = f"{instance.client_id} {instance.notification_url}"
    deliveries.update(deleted_subscription=who[:300])
    deliveries.filter(status__in=[Delivery.Status.PENDING, Delivery.Status.PAUSED]).update(
        status=Delivery.Status.FAILED,
        last_error="its subscription was deleted",
        finished_at=timezone.now(),
    )
