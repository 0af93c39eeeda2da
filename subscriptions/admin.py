"""Operator console for subscriptions and their queues."""

from datetime import timedelta

from django.contrib import admin, messages
from django.db import models
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from notifyhub import errors
from notifyhub.admin import site
from subscriptions.models import (
    Delivery,
    DeliveryAttempt,
    Notification,
    Subscription,
    SubscriptionEventType,
)
from subscriptions.redelivery import deliveries_release, deliveries_resend
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
        return subscription.remaining_total  # type: ignore[attr-defined]  # an annotation


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
