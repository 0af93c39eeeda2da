"""Subscriptions and their per-subscription notification queues."""

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from events.models import Event, EventType
from notifyhub.models import identifier_validator


def default_retention() -> timedelta:
    return settings.NOTIFYHUB_RETENTION


class Subscription(models.Model):
    """One consumer's (OAuth client's) wish to receive events of some types."""

    class DeliveryPolicy(models.TextChoices):
        ONCE = "once", "once (the Integration API's contract)"
        RETRY = "retry", "retry with exponential backoff"

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
    # Webhook push: the Standard Webhooks signing secrets (kept readable: HMAC needs them), the
    # previous one signing too until `webhook_secret_previous_until` after a rotation.
    webhook_secret = models.CharField(max_length=100, blank=True, default="", editable=False)
    webhook_secret_previous = models.CharField(
        max_length=100, blank=True, default="", editable=False
    )
    webhook_secret_previous_until = models.DateTimeField(null=True, blank=True, editable=False)
    delivery_policy = models.CharField(
        max_length=10, choices=DeliveryPolicy.choices, default=DeliveryPolicy.ONCE
    )
    push_disabled_at = models.DateTimeField(
        null=True, blank=True, help_text="Set when the receiver answered 410 Gone: no more pushes."
    )
    push_disabled_reason = models.CharField(max_length=200, blank=True, default="")
    # Paused: events are still queued and its webhook deliveries still written, but held (status
    # `paused`) until it is resumed; then they are sent in the order they were written.
    paused_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-subscription_date"]

    def __str__(self) -> str:
        return f"{self.client_id} {self.id}"

    @property
    def pushes(self) -> bool:
        """Whether new events are POSTed to this subscription's URL."""
        return bool(self.notification_url) and self.active and self.push_disabled_at is None

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets that sign a delivery sent at `now`: the current one, and the previous one
        during its grace period."""
        secrets = [self.webhook_secret] if self.webhook_secret else []
        until = self.webhook_secret_previous_until
        if self.webhook_secret_previous and until is not None and until > now:
            secrets.append(self.webhook_secret_previous)
        return secrets


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


class Delivery(models.Model):
    """One notification owed to one subscription's webhook URL: the outbox row and its ledger.

    Written in the transaction that routes the event; the row, not the broker, says what is due.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        SENDING = "sending", "sending"
        DELIVERED = "delivered", "delivered"
        FAILED = "failed", "failed"
        UNKNOWN = "unknown", "unknown (the worker died while sending)"
        PAUSED = "paused", "paused (held until its subscription is resumed)"

    id = models.BigAutoField(primary_key=True)
    # Null once the subscription is deleted: the ledger outlives it (NOTIFYHUB_LEDGER_RETENTION),
    # with the client and URL it was sent to kept in `deleted_subscription`.
    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="deliveries",
        db_index=False,
    )
    # A database default too: the routing statement (hand-written SQL) does not name it.
    deleted_subscription = models.CharField(max_length=300, blank=True, db_default="")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "event"], name="delivery_unique_per_subscription_event"
            ),
        ]
        indexes = [
            # Serves the claim and the sweep: due pending rows, oldest first.
            models.Index(
                fields=["next_attempt_at"],
                name="delivery_due",
                condition=models.Q(status="pending"),
            ),
            # Serves the sweep's lease check on rows a worker holds.
            models.Index(
                fields=["claimed_at"], name="delivery_sending", condition=models.Q(status="sending")
            ),
            # Serves release, the admin's failed filter and the failed counter.
            models.Index(
                fields=["subscription", "expires_at"],
                name="delivery_failed",
                condition=models.Q(status__in=["failed", "unknown"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.event_id} ({self.status})"


class DeliveryAttempt(models.Model):
    """One HTTP request made for a delivery, and what came of it."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")
    response_excerpt = models.CharField(max_length=500, blank=True, default="")
    # As sent (credentials redacted) and as received: what a receiver's support desk asks for.
    request_headers = models.JSONField(default=dict, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"{self.delivery_id} #{self.number}"

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Recovery(models.Model):
    """An operator's or administrator's "recover since T": one subscription's deliveries sent
    again, from a time, by a background job whose progress this row records."""

    class Scope(models.TextChoices):
        FAILED = "failed", "failed and unknown deliveries"
        ALL = "all", "every finished delivery (delivered ones too)"

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        DONE = "done", "done"

    id = models.BigAutoField(primary_key=True)
    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="recoveries"
    )
    since = models.DateTimeField(help_text="Deliveries written from this time on.")
    scope = models.CharField(max_length=6, choices=Scope.choices, default=Scope.FAILED)
    status = models.CharField(max_length=7, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.CharField(max_length=150, help_text="A username or a client id.")
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Deliveries in the range, those queued to be sent again, and those left as they were,
    # counted by reason (e.g. {"still pending or sending": 3, "past retention": 1}).
    total = models.PositiveIntegerField(default=0)
    resent = models.PositiveIntegerField(default=0)
    skipped = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name_plural = "recoveries"
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"recover {self.subscription_id} since {self.since:%Y-%m-%d %H:%M} ({self.status})"
