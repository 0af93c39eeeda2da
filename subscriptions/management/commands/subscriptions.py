"""`manage.py subscriptions`: what an operator does to subscriptions daily, from a shell.

    manage.py subscriptions list [--client CLIENT] [--paused]
    manage.py subscriptions show ID
    manage.py subscriptions pause ID | resume ID
    manage.py subscriptions recover ID --since 2026-12-04T09:00Z [--scope failed|all] [--wait]
    manage.py subscriptions release CLIENT [--dry-run]

Every subcommand prints JSON (one object, or one per line for `list`), so it can be piped.
"""

import json
import uuid
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Count
from django.utils.dateparse import parse_datetime

from notifyhub import errors
from notifyhub.formats import iso_utc
from subscriptions.models import Delivery, Recovery, Subscription
from subscriptions.redelivery import (
    deliveries_release,
    recovery_run,
    recovery_start,
    subscription_pause,
    subscription_resume,
)


def _time(value: datetime | None) -> str | None:
    return iso_utc(value) if value is not None else None


def _summary(subscription: Subscription) -> dict[str, Any]:
    return {
        "id": str(subscription.id),
        "client_id": subscription.client_id,
        "event_type_ids": sorted(subscription.event_types.values_list("id", flat=True)),
        "notification_url": subscription.notification_url,
        "active": subscription.active,
        "paused_at": _time(subscription.paused_at),
        "push_disabled_at": _time(subscription.push_disabled_at),
        "push_disabled_reason": subscription.push_disabled_reason,
        "subscription_date": _time(subscription.subscription_date),
        "last_request_date": _time(subscription.last_request_date),
    }


class Command(BaseCommand):
    help = "List, inspect, pause, resume and recover subscriptions; release a client's failures."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="command", required=True)
        listing = commands.add_parser("list", help="Subscriptions, one JSON object per line.")
        listing.add_argument("--client", help="Only this client's.")
        listing.add_argument("--paused", action="store_true", help="Only paused ones.")
        for name, text in (
            ("show", "One subscription, with its deliveries counted by status."),
            ("pause", "Hold its webhook deliveries (they wait; nothing is lost)."),
            ("resume", "Send what it held, in order."),
        ):
            commands.add_parser(name, help=text).add_argument("id")
        recover = commands.add_parser("recover", help="Resend its deliveries since a time.")
        recover.add_argument("id")
        recover.add_argument("--since", required=True, help="ISO 8601, e.g. 2026-12-04T09:00Z.")
        recover.add_argument("--scope", choices=list(Recovery.Scope.values), default="failed")
        recover.add_argument(
            "--wait", action="store_true", help="Run the job here instead of on a worker."
        )
        release = commands.add_parser("release", help="Re-send a client's failed deliveries.")
        release.add_argument("client")
        release.add_argument("--dry-run", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, "_" + options["command"])(options)
        except errors.HubError as exc:
            raise CommandError(exc.description) from exc

    def _emit(self, value: dict[str, Any]) -> None:
        self.stdout.write(json.dumps(value))

    def _get(self, subscription_id: str) -> Subscription:
        subscription = Subscription.objects.filter(pk=_uuid(subscription_id)).first()
        if subscription is None:
            raise CommandError(f"No subscription {subscription_id}.")
        return subscription

    def _list(self, options: dict[str, Any]) -> None:
        subscriptions = Subscription.objects.order_by("client_id", "subscription_date")
        if options["client"]:
            subscriptions = subscriptions.filter(client_id=options["client"])
        if options["paused"]:
            subscriptions = subscriptions.filter(paused_at__isnull=False)
        for subscription in subscriptions.prefetch_related("event_types"):
            self._emit(_summary(subscription))

    def _show(self, options: dict[str, Any]) -> None:
        subscription = self._get(options["id"])
        counts = dict(
            Delivery.objects.filter(subscription=subscription)
            .values_list("status")
            .annotate(count=Count("id"))
            .values_list("status", "count")
        )
        self._emit({**_summary(subscription), "deliveries": counts})

    def _pause(self, options: dict[str, Any]) -> None:
        subscription = self._get(options["id"])
        held = subscription_pause(subscription=subscription)
        self._emit(
            {"id": str(subscription.id), "paused_at": _time(subscription.paused_at), "held": held}
        )

    def _resume(self, options: dict[str, Any]) -> None:
        subscription = self._get(options["id"])
        queued = subscription_resume(subscription=subscription)
        self._emit({"id": str(subscription.id), "queued": queued})

    def _recover(self, options: dict[str, Any]) -> None:
        subscription = self._get(options["id"])
        since = parse_datetime(options["since"].replace("Z", "+00:00"))
        if since is None or since.tzinfo is None:
            raise CommandError("--since: an ISO 8601 time with its zone, e.g. 2026-12-04T09:00Z.")
        recovery = recovery_start(
            subscription=subscription,
            since=since,
            scope=options["scope"],
            requested_by="manage.py",
        )
        if options["wait"]:
            recovery = recovery_run(recovery_id=recovery.pk) or recovery
        self._emit(
            {
                "recovery": recovery.pk,
                "status": recovery.status,
                "total": recovery.total,
                "resent": recovery.resent,
                "skipped": recovery.skipped,
            }
        )

    def _release(self, options: dict[str, Any]) -> None:
        count = deliveries_release(
            client_id=options["client"], dry_run=options["dry_run"], rate_limited=False
        )
        self._emit(
            {"client_id": options["client"], "released": count, "dry_run": options["dry_run"]}
        )


def _uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError as exc:
        raise CommandError(f"{value!r} is not a subscription id (a UUID).") from exc
