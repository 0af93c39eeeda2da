"""Operator console for subscriptions and their queues."""

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.text import Truncator

from events.models import EventType
from notifyhub import errors
from notifyhub.admin import LedgerAdmin, site
from notifyhub.charts import bar_chart
from subscriptions.models import (
    Delivery,
    DeliveryAttempt,
    Notification,
    Recovery,
    Subscription,
    SubscriptionEventType,
)
from subscriptions.redelivery import (
    deliveries_release,
    deliveries_resend,
    recovery_start,
    subscription_pause,
    subscription_resume,
)
from subscriptions.selectors import OUTCOME_SERIES, subscription_statistics
from subscriptions.webhooks import subscription_rotate_webhook_secret


def latency_text(latency: timedelta | None) -> str:
    """A latency as an operator reads it: milliseconds below a second, then seconds, minutes."""
    if latency is None:
        return "-"
    seconds = latency.total_seconds()
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


class RecoverForm(forms.Form):
    since = forms.DateTimeField(
        help_text="Deliveries written from this time on (UTC), e.g. 2026-12-04 09:00.",
        initial=lambda: (timezone.now() - timedelta(hours=1)).replace(second=0, microsecond=0),
    )
    scope = forms.ChoiceField(choices=Recovery.Scope.choices, initial=Recovery.Scope.FAILED)


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
        "paused_at",
    )
    list_filter = (
        "active",
        "delivery_policy",
        ("push_disabled_at", admin.EmptyFieldListFilter),
        ("paused_at", admin.EmptyFieldListFilter),
    )
    search_fields = ("=id", "client_id", "subscribed_by", "notification_url")
    readonly_fields = (
        "subscription_date",
        "last_request_date",
        "pages_read",
        "webhook_secret_previous_until",
        "push_disabled_reason",
        "paused_at",
    )
    inlines = [SubscriptionEventTypeInline]
    change_form_template = "admin/subscriptions/subscription/change_form.html"
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    actions = ["pause", "resume", "rotate_webhook_secret", "rotate_webhook_secret_now"]

    @admin.action(
        description="Pause webhook deliveries (they wait, nothing is lost)", permissions=["change"]
    )
    def pause(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        for subscription in queryset:
            held = subscription_pause(subscription=subscription)
            self.message_user(request, f"{subscription.id}: paused; {held} deliveries held.")

    @admin.action(
        description="Resume webhook deliveries (the held ones are sent, in order)",
        permissions=["change"],
    )
    def resume(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        for subscription in queryset:
            if subscription.paused_at is None:
                self.message_user(
                    request, f"{subscription.id}: not paused; nothing to do.", messages.WARNING
                )
                continue
            sent = subscription_resume(subscription=subscription)
            self.message_user(request, f"{subscription.id}: resumed; {sent} deliveries queued.")

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """The change page, with the "Last 24 hours" panel above the form."""
        subscription = self.get_object(request, object_id)
        if subscription is not None:
            statistics = subscription_statistics(subscription=subscription)
            rate = statistics.success_rate
            extra_context = {
                **(extra_context or {}),
                "statistics": statistics,
                "success_rate": "-" if rate is None else f"{rate:.1%}",
                "latency_p50": latency_text(statistics.latency_p50),
                "latency_p99": latency_text(statistics.latency_p99),
                "statistics_chart": bar_chart(
                    title="Webhook deliveries per hour by outcome",
                    buckets=statistics.hours,
                    series=OUTCOME_SERIES,
                    empty_text="No webhook deliveries in the last 24 hours.",
                    chart_id="subscription-hours",
                ),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<path:object_id>/recover/",
                self.admin_site.admin_view(self.recover_view),
                name="subscriptions_subscription_recover",
            ),
            *super().get_urls(),
        ]

    def recover_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """ "Recover since T": a form, then a background job whose progress the Recovery page
        shows."""
        subscription = self.get_object(request, object_id)
        if subscription is None:
            raise Http404("No such subscription.")
        if not self.has_change_permission(request, subscription):
            raise PermissionDenied
        form = RecoverForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                recovery = recovery_start(
                    subscription=subscription,
                    since=form.cleaned_data["since"],
                    scope=form.cleaned_data["scope"],
                    requested_by=request.user.get_username(),
                )
            except errors.HubError as error:
                form.add_error("since", error.description)
            else:
                self.message_user(
                    request, f"Recovery {recovery.pk} queued: its progress is shown below."
                )
                changelist = reverse("admin:subscriptions_recovery_changelist")
                return HttpResponseRedirect(
                    f"{changelist}?subscription__id__exact={subscription.pk}"
                )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Recover deliveries of {subscription}",
            "opts": self.model._meta,
            "original": subscription,
            "form": form,
        }
        return TemplateResponse(request, "admin/subscriptions/subscription/recover.html", context)

    @admin.action(
        description="Rotate the webhook signing secret (shown once)", permissions=["change"]
    )
    def rotate_webhook_secret(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        self._rotate(request, queryset, grace=None)

    @admin.action(
        description="Rotate the webhook signing secret, ending the old one now (leaked)",
        permissions=["change"],
    )
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
    fields = (
        "number",
        "started_at",
        "duration_ms",
        "status_code",
        "error",
        "response_excerpt",
        "request_headers",
        "response_headers",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class EventTypeFilter(admin.SimpleListFilter):
    """By the type of the event delivered (a column of the event, not of the delivery)."""

    title = "event type"
    parameter_name = "event_type"

    def lookups(self, request: HttpRequest, model_admin: object) -> list[tuple[str, str]]:
        return [(pk, pk) for pk in EventType.objects.order_by("id").values_list("id", flat=True)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value:
            return queryset
        field = "event__type_id" if queryset.model is Delivery else "delivery__event__type_id"
        return queryset.filter(**{field: value})


@admin.register(Delivery, site=site)
class DeliveryAdmin(LedgerAdmin):
    list_display = (
        "id",
        "status",
        "reason",
        "client_id",
        "event",
        "attempts",
        "last_status_code",
        "created_at",
        "finished_at",
    )
    list_filter = (
        "status",
        EventTypeFilter,
        "last_status_code",
        ("created_at", admin.DateFieldListFilter),
        ("subscription", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("=event__id", "subscription__client_id", "=subscription__id")
    list_select_related = ("subscription", "event")
    readonly_fields = [field.name for field in Delivery._meta.fields]
    date_hierarchy = "created_at"
    inlines = [DeliveryAttemptInline]
    show_full_result_count = False
    actions = ["resend", "release_for_client"]

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        # Resending changes rows: offered to whoever may change deliveries in principle (the
        # permission), though no row is ever edited through a form.
        actions = super().get_actions(request)
        if not request.user.has_perm("subscriptions.change_delivery"):
            actions.pop("resend", None)
            actions.pop("release_for_client", None)
        return actions

    @admin.display(description="client", ordering="subscription__client_id")
    def client_id(self, delivery: Delivery) -> str:
        if delivery.subscription is None:
            return f"(deleted) {delivery.deleted_subscription}"
        return delivery.subscription.client_id

    @admin.display(description="reason")
    def reason(self, delivery: Delivery) -> str:
        return Truncator(delivery.last_error).chars(80) if delivery.last_error else "-"

    @admin.action(description="Resend")
    def resend(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        result = deliveries_resend(delivery_ids=list(queryset.values_list("id", flat=True)))
        level = messages.WARNING if result.skipped else messages.INFO
        self.message_user(request, result.describe() + ".", level=level)

    @admin.action(description="Release for this client (its failed and unknown deliveries)")
    def release_for_client(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        clients = set(
            queryset.filter(subscription__isnull=False).values_list(
                "subscription__client_id", flat=True
            )
        )
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
class DeliveryAttemptAdmin(LedgerAdmin):
    list_display = ("id", "error", "status_code", "delivery", "number", "started_at", "duration_ms")
    list_filter = (
        "status_code",
        EventTypeFilter,
        ("started_at", admin.DateFieldListFilter),
        ("delivery__subscription", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("=delivery__event__id", "delivery__subscription__client_id")
    list_select_related = ("delivery",)
    readonly_fields = [field.name for field in DeliveryAttempt._meta.fields]
    date_hierarchy = "started_at"
    show_full_result_count = False


@admin.register(Recovery, site=site)
class RecoveryAdmin(LedgerAdmin):
    """Recoveries started from a subscription's page (or the API), with their progress."""

    list_display = (
        "id",
        "subscription",
        "since",
        "scope",
        "status",
        "progress",
        "skipped_reasons",
        "requested_by",
        "created_at",
        "finished_at",
    )
    list_filter = ("status", "scope")
    search_fields = ("=subscription__id", "subscription__client_id", "requested_by")
    list_select_related = ("subscription",)
    readonly_fields = [field.name for field in Recovery._meta.fields]

    @admin.display(description="resent / in range")
    def progress(self, recovery: Recovery) -> str:
        return f"{recovery.resent} / {recovery.total}"

    @admin.display(description="left as they were")
    def skipped_reasons(self, recovery: Recovery) -> str:
        return "; ".join(f"{count} {reason}" for reason, count in recovery.skipped.items()) or "-"
