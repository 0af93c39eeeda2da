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


class StreamSession(models.Model):
    """One Push API subscription: a principal's `clientId`, whether or not it is connected now.

    Matching events are buffered for it (StreamBufferedEvent) so a reconnect within the window
    loses nothing; `kinds_csv` and `account_ids_csv` are wrapped in commas (",a,b,") so the
    routing step can match them with a plain `contains` on every database backend.
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


class StreamBufferedEvent(models.Model):
    """One event kept for one stream session, so a reconnect can replay what it missed."""

    id = models.BigAutoField(primary_key=True)
    session = models.ForeignKey(
        StreamSession, on_delete=models.CASCADE, related_name="buffered", db_index=False
    )
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            # Serves the replay (a session's rows by event id, i.e. in creation order) and
            # makes a doubly routed event impossible to replay twice.
            models.UniqueConstraint(fields=["session", "event"], name="stream_buffer_unique"),
        ]
        indexes = [
            # Serves the trim task: rows older than the reconnect window.
            models.Index(fields=["created_at"], name="stream_buffer_age"),
        ]

    def __str__(self) -> str:
        return f"{self.session_id} ← {self.event_id}"
