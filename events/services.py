"""Rules that write: API keys, event ingestion (validate, dedupe, store, route)."""

import functools
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import jsonschema
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from events.channels import channels_all
from events.models import ApiKey, Event, EventType, new_event_id
from events.selectors import event_type_get_cached
from notifyhub import errors
from notifyhub.sql import sql_names
from notifyhub.types import JSONDict

logger = logging.getLogger(__name__)

ROUTING_ATTRIBUTES = ("account_id", "user_id", "ticket_number")


class IngestRefused(errors.HubError):
    code, status, description = "NOT000013", 422, "The event cannot be ingested."


@dataclass(frozen=True)
class IngestResult:
    """The stored event, and whether this request created it or repeated an earlier one."""

    event_id: str
    created_at: datetime
    duplicate: bool


# --- API keys ---


@dataclass(frozen=True)
class NewApiKey:
    api_key: ApiKey
    raw_key: str


def api_key_create(*, name: str) -> NewApiKey:
    """Create a producer API key; the raw key is returned this once and stored only hashed."""
    raw = ApiKey.generate()
    api_key = ApiKey.objects.create(name=name, key_hash=ApiKey.hash(raw), hint=raw[:10])
    return NewApiKey(api_key=api_key, raw_key=raw)


def api_key_revoke(*, api_key_ids: list[int]) -> int:
    """Revoke keys at once; a revoked key is refused on its next request."""
    return ApiKey.objects.filter(pk__in=api_key_ids, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )


# --- Ingestion ---


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def payload_fingerprint(*, type_id: str, payload: JSONDict) -> str:
    """The SHA-256 of the type and canonical payload: equal for equal events."""
    return hashlib.sha256(f"{type_id}\n{canonical_json(payload)}".encode()).hexdigest()


@lru_cache(maxsize=256)
def _schema_validator(schema_json: str) -> jsonschema.Draft202012Validator:
    """Compiled once per distinct schema, not once per event."""
    return jsonschema.Draft202012Validator(json.loads(schema_json))


def _validate_payload(event_type: EventType, payload: JSONDict) -> None:
    if event_type.schema is None:
        return
    validator = _schema_validator(canonical_json(event_type.schema))
    error = jsonschema.exceptions.best_match(validator.iter_errors(payload))
    if error is not None:
        where = "event.payload" + "".join(f".{part}" for part in error.absolute_path)
        raise IngestRefused(f"{where}: {error.message}", field=where)


def _routing_attribute(payload: JSONDict, key: str) -> str | None:
    value = payload.get(key)
    if value is None or isinstance(value, dict | list | bool):
        return None
    return str(value)[:150]


def event_ingest(
    *,
    producer: str,
    type_id: str,
    payload: JSONDict,
    idempotency_key: str | None,
) -> IngestResult:
    """Validate, dedupe and store one event, and route it in the same transaction.

    `producer` scopes the idempotency key; without a key the type and payload are the key.
    """
    event_type = event_type_get_cached(type_id=type_id)
    if event_type is None:
        raise IngestRefused(f"event.type: unknown event type {type_id!r}", field="event.type")
    if not event_type.enabled:
        raise IngestRefused(f"event.type: event type {type_id!r} is disabled", field="event.type")
    _validate_payload(event_type, payload)

    fingerprint = payload_fingerprint(type_id=type_id, payload=payload)
    key = idempotency_key or f"sha256:{fingerprint}"
    candidate = Event(
        id=new_event_id(),
        type=event_type,
        payload=payload,
        producer=producer,
        idempotency_key=key,
        payload_hash=fingerprint,
        created_at=timezone.now(),
        **{name: _routing_attribute(payload, name) for name in ROUTING_ATTRIBUTES},
    )
    # No savepoint: a duplicate no longer raises (ON CONFLICT), so there is nothing to recover
    # from; any error aborts the caller's transaction too, and an event is never stored unrouted.
    with transaction.atomic(savepoint=False):
        stored_now = _event_insert(event=candidate)
        if stored_now:
            event_route(event=candidate)
    if stored_now:
        return IngestResult(event_id=candidate.id, created_at=candidate.created_at, duplicate=False)
    stored = (
        Event.objects.filter(producer=producer, idempotency_key=key)
        .only("id", "created_at", "payload_hash")
        .first()
    )
    if stored is None:
        # The key was freed (the window sweep) between the conflict and this read.
        raise IntegrityError(f"event {producer} {key!r} conflicted, then disappeared")
    if stored.payload_hash != fingerprint:
        raise IngestRefused(
            "Idempotency-Key: this key was already used with a different event",
            field="Idempotency-Key",
        )
    return IngestResult(event_id=stored.id, created_at=stored.created_at, duplicate=True)


@functools.cache
def _event_insert_sql(vendor: str) -> str:
    """The event insert for this database vendor (built once); see `_event_insert`."""
    e = sql_names(Event)
    columns = ", ".join(getattr(e, field.name) for field in Event._meta.concrete_fields)
    values = ", ".join(["%s"] * len(Event._meta.concrete_fields))
    return f"""
        INSERT INTO {e.table} ({columns}) VALUES ({values})
        ON CONFLICT ({e.producer}, {e.idempotency_key}) WHERE {e.idempotency_key} IS NOT NULL
        DO NOTHING
        RETURNING {e.id}
    """  # noqa: S608 - names from our models' _meta, values as parameters


def _event_insert(*, event: Event) -> bool:
    """Insert the event unless its idempotency key is taken; whether it was inserted.

    The unique index on (producer, idempotency_key) is the arbiter: a concurrent insert of the
    same key waits on this one until its transaction ends, then does nothing (PostgreSQL; SQLite
    transactions are IMMEDIATE, so writers take turns). No read-before-write window exists.

    Raw SQL because Model.save cannot say ON CONFLICT: it would raise IntegrityError, which
    costs an exception and a savepoint around the insert so the transaction survives it.
    """
    fields = Event._meta.concrete_fields
    params = [field.get_db_prep_save(getattr(event, field.attname), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(_event_insert_sql(connection.vendor), params)
        inserted = cursor.fetchone() is not None
    if inserted:
        # The instance is now a stored row, as after save().
        event._state.adding = False
        event._state.db = connection.alias
    return inserted


def event_route(*, event: Event) -> None:
    """Hand the event to every delivery channel; runs inside the transaction that stored it."""
    for channel in channels_all():
        channel.route(event=event)


def idempotency_keys_expire(*, batch_size: int = 5000) -> int:
    """Free the idempotency keys older than the window, in batches; returns how many."""
    cutoff = timezone.now() - settings.NOTIFYHUB_IDEMPOTENCY_WINDOW
    total = 0
    while True:
        ids = list(
            Event.objects.filter(created_at__lt=cutoff, idempotency_key__isnull=False).values_list(
                "id", flat=True
            )[:batch_size]
        )
        if not ids:
            return total
        total += Event.objects.filter(id__in=ids).update(idempotency_key=None)
