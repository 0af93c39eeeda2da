"""Operator console for subscriptions and their queues."""

from django.contrib import admin
from django.db import models
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from notifyhub.admin import site
from subscriptions.models import Notification, Subscription, SubscriptionEventType


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
    )
    list_filter = ("active",)
    search_fields = ("=id", "client_id", "subscribed_by", "notification_url")
    readonly_fields = ("subscription_date", "last_request_date", "pages_read")
    inlines = [SubscriptionEventTypeInline]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

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
