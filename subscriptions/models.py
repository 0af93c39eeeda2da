"""Subscriptions and their per-subscription notification queues."""

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from events.models import Event, EventType
from notifyhub.models import identifier_validator


def default_retention() -> timedelta:
    return settings.NOTIFYHUB_RETENTION


class Subscription(models.Model):
    """One consumer's (OAuth client's) wish to receive events of some types."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client_id = models.CharField(max_length=100, db_index=True, validators=[identifier_validator])
    event_types = models.ManyToManyField(
        EventType, through="SubscriptionEventType", related_name="subscriptions"
    )
    subscribed_by = models.CharField(max_length=100, help_text="Client id that created it.")
    subscription_date = models.DateTimeField(default=timezone.now)
    notification_url = models.URLField(max_length=2000, blank=True, default="")
    notification_page_size = models.PositiveIntegerField(default=100)
    retention = models.DurationField(
        default=default_retention, help_text="How long each notification stays readable."
    )
    active = models.BooleanField(default=True)
    last_request_date = models.DateTimeField(null=True, blank=True)
    pages_read = models.PositiveBigIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["-subscription_date"]

    def __str__(self) -> str:
        return f"{self.client_id} {self.id}"


class SubscriptionEventType(models.Model):
    """One event type a subscription asked for (the routing step joins on this)."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE)
    event_type = models.ForeignKey(EventType, on_delete=models.CASCADE)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["event_type", "subscription"], name="subscription_event_type_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.subscription_id} → {self.event_type_id}"


class Notification(models.Model):
    """One event waiting in one subscription's queue until it is read (then deleted) or expires.

    The autoincrement id is the queue order: FIFO is `ORDER BY id`.
    """

    id = models.BigAutoField(primary_key=True)
    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="notifications", db_index=False
    )
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [
            # Serves the paged pull and the remaining count: a subscription's live rows by id.
            models.Index(fields=["subscription", "id"], name="notification_queue_order"),
            # Serves the expiry purge: rows past their retention, oldest first.
            models.Index(fields=["expires_at"], name="notification_expiry"),
        ]

    def __str__(self) -> str:
        return f"{self.subscription_id} #{self.id}"

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()
