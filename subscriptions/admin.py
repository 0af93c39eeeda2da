"""Operator console for subscriptions and their queues."""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from notifyhub import errors
from notifyhub.admin import site
from subscriptions.api.push import admin_live_feed
from subscriptions.models import (
    Delivery,
    DeliveryAttempt,
    Notification,
    StreamSession,
    Subscription,
    SubscriptionEventType,
)
from subscriptions.redelivery import deliveries_release, deliveries_resend
from subscriptions.streams import (
    LIVE_FEED_PERMISSION,
    stream_holder_silent_before,
    stream_session_events,
    stream_sessions_live_filter,
)
from subscriptions.webhooks import subscription_rotate_webhook_secret


class SubscriptionEventTypeInline(admin.TabularInline):
    model = SubscriptionEventType
    extra = 0


@admin.register(Subscription, site=site)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "client_id",
        "active",
        "subscription_date",
        "last_request_date",
        "retention",
        "remaining",
        "delivery_policy",
        "push_disabled_at",
    )
    list_filter = ("active", "delivery_policy", ("push_disabled_at", admin.EmptyFieldListFilter))
    search_fields = ("=id", "client_id", "subscribed_by", "notification_url")
    readonly_fields = (
        "subscription_date",
        "last_request_date",
        "pages_read",
        "webhook_secret_previous_until",
        "push_disabled_reason",
    )
    inlines = [SubscriptionEventTypeInline]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    actions = ["rotate_webhook_secret", "rotate_webhook_secret_now"]

    @admin.action(description="Rotate the webhook signing secret (shown once)")
    def rotate_webhook_secret(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        self._rotate(request, queryset, grace=None)

    @admin.action(description="Rotate the webhook signing secret, ending the old one now (leaked)")
    def rotate_webhook_secret_now(
        self, request: HttpRequest, queryset: QuerySet[Subscription]
    ) -> None:
        self._rotate(request, queryset, grace=timedelta(0))

    def _rotate(
        self, request: HttpRequest, queryset: QuerySet[Subscription], *, grace: timedelta | None
    ) -> None:
        for subscription in queryset.exclude(notification_url=""):
            secret = subscription_rotate_webhook_secret(subscription=subscription, grace=grace)
            self.message_user(
                request, f"{subscription.id}: new secret {secret}", level=messages.WARNING
            )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Subscription]:
        live = Q(notifications__expires_at__gt=timezone.now())
        return (
            super()
            .get_queryset(request)
            .annotate(remaining_total=Count("notifications", filter=live))
        )

    @admin.display(description="remaining", ordering="remaining_total")
    def remaining(self, subscription: Subscription) -> int:
        return subscription.remaining_total  # type: ignore[attr-defined]


class ExpiredFilter(admin.SimpleListFilter):
    title = "expired"
    parameter_name = "expired"

    def lookups(self, request: HttpRequest, model_admin: object) -> list[tuple[str, str]]:
        return [("no", "Pending"), ("yes", "Expired")]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[Notification]
    ) -> QuerySet[Notification]:
        if self.value() == "no":
            return queryset.filter(expires_at__gt=timezone.now())
        if self.value() == "yes":
            return queryset.filter(expires_at__lte=timezone.now())
        return queryset


@admin.register(Notification, site=site)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("id", "subscription", "event", "created_at", "expires_at")
    list_filter = (ExpiredFilter,)
    search_fields = ("=event__id", "subscription__client_id")
    list_select_related = ("subscription", "event")
    raw_id_fields = ("subscription", "event")
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = ("number", "started_at", "duration_ms", "status_code", "error", "response_excerpt")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Delivery, site=site)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "subscription",
        "client_id",
        "event",
        "status",
        "attempts",
        "last_status_code",
        "last_error",
        "created_at",
        "finished_at",
    )
    list_filter = ("status",)
    search_fields = ("=event__id", "subscription__client_id", "=subscription__id")
    list_select_related = ("subscription", "event")
    readonly_fields = [field.name for field in Delivery._meta.fields]
    inlines = [DeliveryAttemptInline]
    show_full_result_count = False
    actions = ["resend", "release_for_client"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="client", ordering="subscription__client_id")
    def client_id(self, delivery: Delivery) -> str:
        return delivery.subscription.client_id

    @admin.action(description="Resend")
    def resend(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        count = deliveries_resend(delivery_ids=list(queryset.values_list("id", flat=True)))
        self.message_user(request, f"{count} deliveries queued to be sent again.")

    @admin.action(description="Release for this client (its failed and unknown deliveries)")
    def release_for_client(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        clients = set(queryset.values_list("subscription__client_id", flat=True))
        count, refused = 0, []
        for client_id in sorted(clients):
            try:
                count += deliveries_release(client_id=client_id, rate_limited=False)
            except errors.Conflict:
                refused.append(client_id)
        self.message_user(request, f"{count} deliveries released for {len(clients)} client(s).")
        if refused:
            self.message_user(
                request,
                f"Not released for {', '.join(refused)}: the hub pushes nothing to them "
                "(no subscription with an active notification_url).",
                level=messages.WARNING,
            )


@admin.register(DeliveryAttempt, site=site)
class DeliveryAttemptAdmin(admin.ModelAdmin):
    list_display = ("id", "delivery", "number", "started_at", "duration_ms", "status_code", "error")
    list_filter = ("status_code",)
    search_fields = ("=delivery__event__id", "delivery__subscription__client_id")
    list_select_related = ("delivery",)
    raw_id_fields = ("delivery",)
    show_full_result_count = False


# --- Push API stream sessions and the live events page ---


class ConnectedFilter(admin.SimpleListFilter):
    title = "connected"
    parameter_name = "connected"

    def lookups(self, request: HttpRequest, model_admin: object) -> list[tuple[str, str]]:
        return [("yes", "Connected"), ("no", "Disconnected")]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[StreamSession]
    ) -> QuerySet[StreamSession]:
        # A session whose process stopped heartbeating (killed) is not connected, whatever
        # the trim task has recorded yet.
        if self.value() == "yes":
            return queryset.filter(stream_sessions_live_filter())
        if self.value() == "no":
            return queryset.exclude(stream_sessions_live_filter())
        return queryset


@admin.register(StreamSession, site=site)
class StreamSessionAdmin(admin.ModelAdmin):
    list_display = (
        "principal",
        "client_id",
        "kinds_list",
        "filters",
        "state",
        "buffered_count",
    )
    list_filter = (ConnectedFilter, "principal_kind")
    search_fields = ("principal", "client_id")
    list_select_related = ()
    readonly_fields = [field.name for field in StreamSession._meta.fields]
    change_list_template = "admin/subscriptions/streamsession/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="kinds")
    def kinds_list(self, session: StreamSession) -> str:
        return ", ".join(session.kinds)

    @admin.display(description="filters")
    def filters(self, session: StreamSession) -> str:
        parts = []
        if session.account_ids:
            parts.append("accounts " + ", ".join(session.account_ids))
        if session.ticket_number:
            parts.append(f"ticket {session.ticket_number}")
        return "; ".join(parts) or "-"

    @admin.display(description="state", ordering="disconnected_at")
    def state(self, session: StreamSession) -> str:
        if session.connection_id is None:
            since = (
                session.disconnected_at.isoformat(timespec="seconds")
                if session.disconnected_at
                else "?"
            )
            return f"disconnected since {since}"
        silent_since = session.disconnected_since(
            silent_before=stream_holder_silent_before(timezone.now())
        )
        if silent_since is None:
            return "connected"
        # Not recorded yet (the trim task does): its process stopped heartbeating.
        return f"disconnected since {silent_since.isoformat(timespec='seconds')} (process gone)"

    @admin.display(description="buffered")
    def buffered_count(self, session: StreamSession) -> int | None:
        """Events a disconnected session within its window would replay now (a live one has
        been sent them; one past its window replays nothing)."""
        now = timezone.now()
        since = now - settings.NOTIFYHUB_STREAM_RECONNECT_WINDOW
        disconnected = session.disconnected_since(silent_before=stream_holder_silent_before(now))
        if disconnected is None:
            return None
        if disconnected < since:
            return 0
        return stream_session_events(session, after=session.last_sent_event_id, since=since).count()

    def get_urls(self) -> list[Any]:
        return [
            path("live/", self.admin_site.admin_view(self.live_view), name="stream-live"),
            # Not wrapped by admin_view (a sync wrapper): the async feed checks staff and
            # LIVE_FEED_PERMISSION itself.
            path("live/feed", admin_live_feed, name="stream-live-feed"),
            *super().get_urls(),
        ]

    def live_view(self, request: HttpRequest) -> TemplateResponse:
        # admin_view checks only is_staff; the page shows every tenant's payloads.
        if not request.user.has_perm(LIVE_FEED_PERMISSION):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Live events",
            "opts": self.model._meta,
            "feed_url": reverse("admin:stream-live-feed"),
        }
        return TemplateResponse(request, "admin/subscriptions/live.html", context)
