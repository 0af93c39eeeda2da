"""Push API stream sessions: one principal's `clientId`, with its position in the event log."""

from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone


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
        # The table it was created with, when sessions were part of `subscriptions`.
        db_table = "subscriptions_streamsession"
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
