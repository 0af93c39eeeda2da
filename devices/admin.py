"""Operator console for devices: tokens, preferences, deactivations, pushes and attempts."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from devices.models import Device, DevicePush, Preference, PushAttempt, Registration
from devices.services import device_test_push
from notifyhub.admin import LedgerAdmin, site


class RegistrationInline(admin.TabularInline):
    model = Registration
    extra = 0
    fields = (
        "token",
        "notification_type",
        "push_type",
        "preference_names",
        "active",
        "deactivation_reason",
        "deactivated_at",
    )
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    @admin.display(description="preferences")
    def preference_names(self, registration: Registration) -> str:
        return ", ".join(preference.name for preference in registration.preferences.all())

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Device, site=site)
class DeviceAdmin(admin.ModelAdmin):
    list_display = (
        "device_id",
        "account",
        "app_name",
        "platform",
        "mobile_device_id",
        "active_tokens",
        "updated_at",
    )
    list_filter = ("platform", "app_name")
    search_fields = ("=device_id", "=account__id", "mobile_device_id", "registrations__token")
    list_select_related = ("account",)
    readonly_fields = ("revision", "created_at", "updated_at")
    inlines = [RegistrationInline]
    actions = ["send_test_push"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Device]:
        return super().get_queryset(request).prefetch_related("registrations")

    @admin.display(description="active tokens")
    def active_tokens(self, device: Device) -> int:
        return sum(1 for registration in device.registrations.all() if registration.active)

    @admin.action(description="Send test push", permissions=["change"])
    def send_test_push(self, request: HttpRequest, queryset: QuerySet[Device]) -> None:
        pushes = device_test_push(device_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{len(pushes)} test push(es) queued.", messages.SUCCESS)


@admin.register(Registration, site=site)
class RegistrationAdmin(admin.ModelAdmin):
    list_display = (
        "token",
        "device",
        "notification_type",
        "push_type",
        "preference_names",
        "active",
        "deactivation_reason",
        "deactivated_at",
    )
    list_filter = ("active", "notification_type", "push_type")
    search_fields = ("token", "=device__device_id", "deactivation_reason")
    list_select_related = ("device",)
    readonly_fields = ("device", "token", "deactivated_at", "deactivation_reason")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Registration]:
        return super().get_queryset(request).prefetch_related("preferences")

    @admin.display(description="preferences")
    def preference_names(self, registration: Registration) -> str:
        return ", ".join(preference.name for preference in registration.preferences.all())


@admin.register(DevicePush, site=site)
class DevicePushAdmin(LedgerAdmin):
    list_display = (
        "id",
        "event",
        "registration",
        "status",
        "attempts",
        "next_attempt_at",
        "sent_at",
    )
    list_filter = (
        "status",
        "registration__notification_type",
        ("created_at", admin.DateFieldListFilter),
    )
    search_fields = ("=event__id", "registration__token")
    date_hierarchy = "created_at"
    show_full_result_count = False
    list_select_related = ("event", "registration")
    readonly_fields = (
        "event",
        "registration",
        "status",
        "attempts",
        "next_attempt_at",
        "claimed_until",
        "created_at",
        "sent_at",
    )


@admin.register(PushAttempt, site=site)
class PushAttemptAdmin(LedgerAdmin):
    list_display = (
        "created_at",
        "reason",
        "status_code",
        "provider",
        "event_id",
        "device",
        "registration",
        "message_id",
    )
    list_filter = ("provider", "status_code", "reason", ("created_at", admin.DateFieldListFilter))
    date_hierarchy = "created_at"
    show_full_result_count = False
    search_fields = ("=event_id", "registration__token", "=device__device_id")
    list_select_related = ("device", "registration")
    readonly_fields = (
        "push",
        "device",
        "registration",
        "event_id",
        "provider",
        "status_code",
        "reason",
        "answer",
        "message_id",
        "created_at",
    )


site.register(Preference)
