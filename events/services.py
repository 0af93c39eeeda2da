"""Rules that write: API keys, event ingestion (validate, dedupe, store, route)."""

import functools
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jsonschema
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from events.channels import RoutingStatement, channels_all
from events.models import ApiKey, Event, EventType, new_event_id
from events.selectors import event_type_get_cached
from notifyhub import errors, metrics
from notifyhub.formats import UNSTORABLE_MESSAGE, unstorable_char, unstorable_path
from notifyhub.selectors import account_in_reach, principal_in_reach
from notifyhub.services import tenant_ensure
from notifyhub.sql import sql_names
from notifyhub.tenancy import Reach
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


def api_key_create(
    *, name: str, tenant_id: str | None = None, any_account: bool = False
) -> NewApiKey:
    """Create a producer API key of tenant `tenant_id` (created if new), or one that may address
    any account; the raw key is returned this once and stored only hashed."""
    raw = ApiKey.generate()
    api_key = ApiKey.objects.create(
        name=name,
        key_hash=ApiKey.hash(raw),
        hint=raw[:10],
        tenant=tenant_ensure(tenant_id=tenant_id) if tenant_id else None,
        any_account=any_account,
    )
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


def _validate_payload(event_type: EventType, payload: JSONDict) -> None:
    validator = event_type.payload_validator
    if validator is None:
        return
    error = jsonschema.exceptions.best_match(validator.iter_errors(payload))
    if error is not None:
        where = "event.payload" + "".join(f".{part}" for part in error.absolute_path)
        raise IngestRefused(f"{where}: {error.message}", field=where)


def _routing_attribute(payload: JSONDict, key: str) -> str | None:
    value = payload.get(key)
    if value is None or isinstance(value, dict | list | bool):
        return None
    return str(value)[:150]


def _addressing_check(*, reach: Reach, payload: JSONDict) -> None:
    """A producer addresses only its tenant's accounts and their members: a routing attribute
    outside its reach is refused (422 naming the field), never delivered to another tenant."""
    if reach.everywhere:
        return
    account_id = _routing_attribute(payload, "account_id")
    if account_id is not None and not account_in_reach(reach=reach, account_id=account_id):
        raise IngestRefused(
            "event.payload.account_id: not an account this producer may address",
            field="event.payload.account_id",
        )
    user_id = _routing_attribute(payload, "user_id")
    if user_id is not None and not principal_in_reach(reach=reach, principal=user_id):
        raise IngestRefused(
            "event.payload.user_id: not a user this producer may address",
            field="event.payload.user_id",
        )


def event_ingest(
    *,
    producer: str,
    reach: Reach,
    type_id: str,
    payload: JSONDict,
    idempotency_key: str | None,
) -> IngestResult:
    """Validate, dedupe and store one event, and route it in the same transaction (counted in
    the metrics by type and outcome, and timed).

    `producer` scopes the idempotency key; without a key the type and payload are the key.
    `reach` bounds the accounts and users the event may address (`tenancy.HUB` for the hub's
    own events).
    """
    started = time.perf_counter()
    outcome = "refused"
    try:
        result = _event_ingest(
            producer=producer,
            reach=reach,
            type_id=type_id,
            payload=payload,
            idempotency_key=idempotency_key,
        )
        outcome = "duplicate" if result.duplicate else "stored"
        return result
    finally:
        metrics.ingest_seconds.observe(time.perf_counter() - started)
        # Only catalogue types become labels: a producer's typo must not grow the series.
        known = outcome != "refused" or (
            not unstorable_char(type_id) and event_type_get_cached(type_id=type_id) is not None
        )
        metrics.events_ingested.labels(type_id if known else "unknown", outcome).inc()


def _event_ingest(
    *,
    producer: str,
    reach: Reach,
    type_id: str,
    payload: JSONDict,
    idempotency_key: str | None,
) -> IngestResult:
    """The ingest itself (event_ingest counts and times it)."""
    # An id holding text no database can store names no catalogue row, and may not be queried.
    event_type = None if unstorable_char(type_id) else event_type_get_cached(type_id=type_id)
    if event_type is None:
        raise IngestRefused(f"event.type: unknown event type {type_id!r}", field="event.type")
    if not event_type.enabled:
        raise IngestRefused(f"event.type: event type {type_id!r} is disabled", field="event.type")
    where = unstorable_path(payload, "event.payload")
    if where is not None:
        raise IngestRefused(f"{where}: {UNSTORABLE_MESSAGE}", field=where)
    if idempotency_key is not None and unstorable_char(idempotency_key) is not None:
        raise IngestRefused(f"idempotency key: {UNSTORABLE_MESSAGE}", field="Idempotency-Key")
    _validate_payload(event_type, payload)
    _addressing_check(reach=reach, payload=payload)

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
    stored_now = _event_store_and_route(event=candidate)
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
    """The event's INSERT ... ON CONFLICT DO NOTHING, without its RETURNING (built once)."""
    e = sql_names(Event)
    columns = ", ".join(getattr(e, field.name) for field in Event._meta.concrete_fields)
    values = ", ".join(["%s"] * len(Event._meta.concrete_fields))
    return f"""
        INSERT INTO {e.table} ({columns}) VALUES ({values})
        ON CONFLICT ({e.producer}, {e.idempotency_key}) WHERE {e.idempotency_key} IS NOT NULL
        DO NOTHING
    """  # noqa: S608 - names from our models' _meta, values as parameters


def _event_store_and_route(*, event: Event) -> bool:
    """Insert the event unless its idempotency key is taken, and write what every delivery
    channel owes for it; whether it was inserted (a repeat writes nothing at all).

    The unique index on (producer, idempotency_key) is the arbiter: a concurrent insert of the
    same key waits on this one until its transaction ends, then does nothing (PostgreSQL; SQLite
    transactions are IMMEDIATE, so writers take turns). No read-before-write window exists, and
    no IntegrityError (which would cost a savepoint so the transaction survives it).

    An event is never stored unrouted: on PostgreSQL the insert and the channels' statements
    are one statement, their own transaction when the caller has none (one round trip and one
    commit); elsewhere they share a transaction. Either way an error aborts the caller's
    transaction too. Raw SQL because the ORM cannot say ON CONFLICT nor INSERT ... SELECT.
    """
    # The thread's connection itself: each attribute read through the `connection` proxy
    # costs a context-local lookup, and this hot path reads a dozen.
    connection = connections[DEFAULT_DB_ALIAS]
    channels = channels_all()
    statements = [
        channel.routing_statement(event=event, connection=connection) for channel in channels
    ]
    fields = Event._meta.concrete_fields
    params = [field.get_db_prep_save(getattr(event, field.attname), connection) for field in fields]
    if connection.vendor == "postgresql":
        row_ids = _store_and_route_postgresql(connection, params, statements)
    else:
        row_ids = _store_and_route_in_a_transaction(connection, event, params, statements)
    if row_ids is None:
        return False
    # The instance is now a stored row, as after save().
    event._state.adding = False
    event._state.db = connection.alias
    for channel, ids in zip(channels, row_ids, strict=True):
        channel.routed(event=event, row_ids=ids)
    return True


@functools.lru_cache(maxsize=64)
def _store_and_route_sql(channel_sqls: tuple[str | None, ...]) -> str:
    """The event's insert with each channel's statement (None: no statement) as
    data-modifying CTEs, selecting the event's id and each statement's new ids (built once per
    combination of statements: the channels' statements are constants)."""
    # Names from our models' _meta and the CTEs' own; every value is a parameter.
    ctes = [f"new_event AS ({_event_insert_sql('postgresql')} RETURNING *)"]
    outputs = [f"(SELECT {sql_names(Event).id} FROM new_event)"]  # noqa: S608
    for index, sql in enumerate(channel_sqls):
        if sql is not None:
            ctes.append(f"routed_{index} AS ({sql})")
            outputs.append(f"ARRAY(SELECT * FROM routed_{index})")  # noqa: S608
    return f"WITH {', '.join(ctes)} SELECT {', '.join(outputs)}"


def _store_and_route_postgresql(
    connection: BaseDatabaseWrapper,
    event_params: list[Any],
    statements: list[RoutingStatement | None],
) -> list[list[Any]] | None:
    """One statement: the event's insert and each channel's as data-modifying CTEs (all run to
    completion, seeing the same snapshot; the channels' rows reference the new event, whose
    foreign keys are checked at the end of the statement). None when the event repeated.

    Its portable twin is `_store_and_route_in_a_transaction`, which runs the same channel
    statements (tests/events/test_routing_twins.py: the same rows written)."""
    sql = _store_and_route_sql(tuple(None if s is None else s.sql for s in statements))
    params = list(event_params)
    for statement in statements:
        if statement is not None:
            params.extend(statement.params)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        event_id, *written = cursor.fetchone()
    if event_id is None:
        return None
    written_ids = iter(written)
    return [[] if statement is None else next(written_ids) for statement in statements]


def _store_and_route_in_a_transaction(
    connection: BaseDatabaseWrapper,
    event: Event,
    event_params: list[Any],
    statements: list[RoutingStatement | None],
) -> list[list[Any]] | None:
    """The event's insert, then each channel's statement with `new_event` read back from the
    event table (SQLite has no data-modifying CTEs). None when the event repeated. The twin of
    `_store_and_route_postgresql`."""
    e = sql_names(Event)
    new_event = f"WITH new_event AS (SELECT * FROM {e.table} WHERE {e.id} = %s) "  # noqa: S608
    with transaction.atomic(using=connection.alias, savepoint=False), connection.cursor() as cursor:
        cursor.execute(f"{_event_insert_sql(connection.vendor)} RETURNING {e.id}", event_params)
        if cursor.fetchone() is None:
            return None
        row_ids: list[list[Any]] = []
        for statement in statements:
            if statement is None:
                row_ids.append([])
                continue
            cursor.execute(new_event + statement.sql, [event.id, *statement.params])
            row_ids.append([row[0] for row in cursor.fetchall()])
    return row_ids


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
