"""Device push registrations (the Kazoo document), their push tokens, and the push ledger."""

from django.db import models
from django.utils import timezone

from events.models import Event
from notifyhub.models import Account


class Device(models.Model):
    """One Kazoo push notification subscription: an account's device, for one app."""

    class Platform(models.TextChoices):
        ANDROID = "android"
        IOS = "ios"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="devices")
    app_name = models.CharField(max_length=128)
    device_id = models.CharField(max_length=128)
    mobile_device_id = models.CharField(max_length=255)
    platform = models.CharField(max_length=16, choices=Platform.choices)
    sip_proxy_server = models.CharField(max_length=255)
    # CouchDB-style `<n>-<hex>`: changes on every write, so a stale writer can be refused.
    revision = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["account_id", "app_name", "device_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "app_name", "device_id"], name="device_unique_per_app"
            ),
            # The backstop of "one device per mobile device": the service removes the other
            # registration first; two concurrent saves race here and one gets a 409.
            models.UniqueConstraint(
                fields=["account", "app_name", "mobile_device_id"],
                name="device_unique_mobile_device_per_app",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id}/{self.app_name}/{self.device_id}"


class Registration(models.Model):
    """One push token of a device, the events it wants, and whether the provider still takes it."""

    class Provider(models.TextChoices):
        APNS = "apns"
        FCM = "fcm"

    class PushType(models.TextChoices):
        ALERT = "alert"
        VOIP = "voip"

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="registrations")
    token = models.CharField(max_length=1024)
    notification_type = models.CharField(max_length=8, choices=Provider.choices)
    push_type = models.CharField(max_length=8, choices=PushType.choices, default=PushType.ALERT)
    active = models.BooleanField(default=True)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    deactivation_reason = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["device_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["device", "token"], name="registration_unique_token"),
        ]

    def __str__(self) -> str:
        return f"{self.notification_type}:{self.token[:16]}…"


class Preference(models.Model):
    """One event type a registration id wants; a type belongs to one registration per device."""

    class Name(models.TextChoices):
        CHAT = "chat"
        INCOMING_CALL = "incoming_call"
        NEW_UNOWNED_VOICEMAIL = "new_unowned_voicemail"
        NEW_VOICEMAIL = "new_voicemail"

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="preferences")
    registration = models.ForeignKey(
        Registration, on_delete=models.CASCADE, related_name="preferences"
    )
    name = models.CharField(max_length=32, choices=Name.choices)

    class Meta:
        ordering = ["id"]
        constraints = [
            # "A preference may appear under only one registration id of a subscription".
            models.UniqueConstraint(fields=["device", "name"], name="preference_once_per_device"),
        ]
        indexes = [
            # Routing: "registrations of this account wanting this type" starts from the name.
            models.Index(fields=["name", "registration"], name="preference_routing"),
        ]

    def __str__(self) -> str:
        return self.name


class DevicePush(models.Model):
    """One event owed to one push token: the row a push task claims and settles."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        SENT = "sent"
        INVALID_TOKEN = "invalid_token"  # noqa: S105 - a status, not a secret
        FAILED = "failed"

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="device_pushes")
    registration = models.ForeignKey(Registration, on_delete=models.CASCADE, related_name="pushes")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A claim is a lease: a push left in SENDING past it (its worker died) is due again.
    claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["event", "registration"], name="device_push_once"),
        ]
        indexes = [
            # The sweep: "pending or leased, oldest due first" never scans settled pushes.
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status__in=["pending", "sending"]),
                name="device_push_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.registration_id} ({self.status})"


class PushAttempt(models.Model):
    """One request to APNs or FCM and what the provider answered (the call log)."""

    push = models.ForeignKey(DevicePush, on_delete=models.CASCADE, related_name="attempt_log")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="push_attempts")
    registration = models.ForeignKey(
        Registration, on_delete=models.CASCADE, related_name="attempts"
    )
    event_id = models.CharField(max_length=26, db_index=True)
    provider = models.CharField(max_length=8, choices=Registration.Provider.choices)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=255, blank=True)
    answer = models.TextField(blank=True)
    message_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.provider} {self.status_code} {self.reason}"
