"""Event types, producer API keys and ingested events."""

import hashlib
import secrets
from functools import cached_property

import jsonschema
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from ulid import ULID

from notifyhub.formats import UNSTORABLE_MESSAGE, unstorable_path
from notifyhub.models import Tenant, identifier_validator
from notifyhub.tenancy import Reach


def new_event_id() -> str:
    """A ULID: unique, and sortable by creation time, so it can order every channel's items."""
    return str(ULID())


class EventType(models.Model):
    """One kind of event producers may post, with an optional JSON Schema for its payload."""

    id = models.CharField(primary_key=True, max_length=128, validators=[identifier_validator])
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    schema = models.JSONField(
        null=True, blank=True, help_text="JSON Schema (2020-12) every payload must satisfy."
    )

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.id

    def clean(self) -> None:
        if self.schema is not None:
            where = unstorable_path(self.schema, "schema")
            if where is not None:
                raise ValidationError({"schema": f"{where}: {UNSTORABLE_MESSAGE}"})
            try:
                jsonschema.Draft202012Validator.check_schema(self.schema)
            except jsonschema.SchemaError as exc:
                raise ValidationError(
                    {"schema": f"not a valid JSON Schema: {exc.message}"}
                ) from exc

    @cached_property
    def payload_validator(self) -> jsonschema.Draft202012Validator | None:
        """The compiled schema, built once per loaded row (ingest keeps rows a few seconds)."""
        return None if self.schema is None else jsonschema.Draft202012Validator(self.schema)


class ApiKey(models.Model):
    """A producer's `Client-Token`: only its SHA-256 is stored; the key is shown once."""

    PREFIX = "nhk_"

    name = models.CharField(max_length=200)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    hint = models.CharField(
        max_length=12, editable=False, help_text="First characters, to tell keys apart."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    tenant = models.ForeignKey(
        Tenant,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="api_keys",
        help_text="The company producing with this key: it may address that tenant's accounts "
        "and their members only.",
    )
    any_account = models.BooleanField(
        default=False,
        help_text="May address every tenant's accounts and users: only for the operator's own "
        "producers.",
    )

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    @staticmethod
    def hash(raw_key: str) -> str:
        return hashlib.sha256(raw_key.encode("utf-8")).hexdigest()

    @classmethod
    def generate(cls) -> str:
        return cls.PREFIX + secrets.token_urlsafe(32)

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def reach(self) -> Reach:
        """The accounts and users this key's events may address."""
        return Reach(tenant_id=self.tenant_id, everywhere=self.any_account)

    @property
    def producer(self) -> str:
        """The idempotency scope of this key's events."""
        return f"key:{self.pk}"


class Event(models.Model):
    """One event a producer posted: stored once, routed once, and identified by the same id
    on every channel that carries it."""

    id = models.CharField(primary_key=True, max_length=26, default=new_event_id, editable=False)
    type = models.ForeignKey(EventType, on_delete=models.PROTECT, related_name="events")
    payload = models.JSONField()
    producer = models.CharField(
        max_length=150, help_text="Who posted it: key:<api key id> or client:<OAuth client id>."
    )
    # NULL, not "", means "no key": the partial unique index ignores NULLs, and the window sweep
    # frees a key by setting it to NULL. The same holds for the routing attributes below.
    idempotency_key = models.CharField(  # noqa: DJ001
        max_length=255,
        null=True,
        blank=True,
        help_text="Cleared once the idempotency window is over, so the key may be used again.",
    )
    payload_hash = models.CharField(max_length=64, editable=False)
    # Routing attributes, copied out of the payload so filters need no JSON operators.
    account_id = models.CharField(max_length=128, null=True, blank=True, db_index=True)  # noqa: DJ001
    user_id = models.CharField(max_length=150, null=True, blank=True)  # noqa: DJ001
    ticket_number = models.CharField(max_length=128, null=True, blank=True)  # noqa: DJ001
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # The arbiter of duplicate ingests: concurrent identical requests race on this
            # index and exactly one insert wins (ON CONFLICT DO NOTHING for the others).
            models.UniqueConstraint(
                fields=["producer", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="event_unique_idempotency_key_per_producer",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type_id} {self.id}"
