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

    id = models.BigAutoField(primary_key=True)
    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
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

    class Meta:
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"{self.delivery_id} #{self.number}"

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class StreamSession(models.Model):
    """One Push API subscription: a principal's `clientId`, whether or not it is connected now.

    A reconnect within the window replays, from the event log, what its filters match after
    `last_sent_event_id` (its position), so it loses nothing. `kinds_csv` and `account_ids_csv`
    are wrapped in commas (",a,b,") so the routing step can match them with a plain `contains`
    on every database backend.
    """

    class PrincipalKind(models.TextChoices):
        USER = "user", "user"
        CLIENT = "client", "client"

    principal_kind = models.CharField(max_length=6, choices=PrincipalKind.choices)
    principal = models.CharField(max_length=150, help_text="Username, or an application's id.")
    principal_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    principal_application = models.ForeignKey(
        settings.OAUTH2_PROVIDER_APPLICATION_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    client_id = models.CharField(max_length=200)
    kinds_csv = models.CharField(max_length=200)
    account_ids_csv = models.TextField(blank=True, default="")
    ticket_number = models.CharField(max_length=128, blank=True, default="")
    # The connection holding the session now (None while disconnected); a closing connection
    # writes its state only if it still holds the session, so a takeover is never undone.
    connection_id = models.UUIDField(null=True, blank=True)
    connected_at = models.DateTimeField(null=True, blank=True)
    disconnected_at = models.DateTimeField(null=True, blank=True)
    # The last heartbeat of the process holding the connection (every web process marks the
    # sessions it holds, in one UPDATE, every NOTIFYHUB_STREAM_HEARTBEAT): a process killed
    # outright records no disconnect, so a holder gone silent is presumed dead since then.
    seen_at = models.DateTimeField(default=timezone.now)
    last_sent_event_id = models.CharField(max_length=26, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["principal_kind", "principal", "client_id"],
                name="stream_session_unique_client",
            )
        ]
        indexes = [
            # Serves the trim task: sessions disconnected for longer than the window.
            models.Index(fields=["disconnected_at"], name="stream_session_disconnected"),
        ]

    def __str__(self) -> str:
        return f"{self.principal} / {self.client_id}"

    @property
    def kinds(self) -> list[str]:
        return [kind for kind in self.kinds_csv.split(",") if kind]

    @property
    def account_ids(self) -> list[str]:
        return [account for account in self.account_ids_csv.split(",") if account]

    def disconnected_since(self, *, silent_before: datetime) -> datetime | None:
        """When the session lost its connection, None while it holds a live one; a connection
        whose process has sent no heartbeat since before `silent_before` counts as lost at its
        last heartbeat."""
        if self.connection_id is None:
            return self.disconnected_at
        if self.seen_at < silent_before:
            return self.seen_at
        return None
