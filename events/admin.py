"""Operator console for the event catalogue, API keys and ingested events."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from events.models import ApiKey, Event, EventType
from events.selectors import event_type_cache_clear
from events.services import api_key_create, api_key_revoke
from notifyhub.admin import LedgerAdmin, site


@admin.register(EventType, site=site)
class EventTypeAdmin(admin.ModelAdmin):
    list_display = ("id", "enabled", "description", "has_schema")
    list_filter = ("enabled",)
    search_fields = ("id", "description")

    def save_model(self, request: HttpRequest, obj: EventType, form: object, change: bool) -> None:
        super().save_model(request, obj, form, change)
        event_type_cache_clear()  # Other processes pick the change up within seconds.

    @admin.display(boolean=True, description="schema")
    def has_schema(self, event_type: EventType) -> bool:
        return event_type.schema is not None


@admin.register(ApiKey, site=site)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "hint", "tenant", "any_account", "created_at", "revoked_at")
    list_filter = ("revoked_at", "any_account", "tenant")
    search_fields = ("name", "hint")
    list_select_related = ("tenant",)
    readonly_fields = ("hint", "created_at", "revoked_at")
    fields = ("name", "tenant", "any_account", "hint", "created_at", "revoked_at")
    actions = ["revoke"]

    def save_model(self, request: HttpRequest, obj: ApiKey, form: object, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        created = api_key_create(
            name=obj.name, tenant_id=obj.tenant_id, any_account=obj.any_account
        )
        obj.pk = created.api_key.pk
        messages.warning(request, f"The key is shown only now: {created.raw_key}")

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        api_key_revoke(api_key_ids=list(queryset.values_list("pk", flat=True)))


@admin.register(Event, site=site)
class EventAdmin(LedgerAdmin):
    list_display = ("id", "type", "producer", "account_id", "created_at")
    list_filter = ("type", ("created_at", admin.DateFieldListFilter))
    search_fields = ("=id", "type__id", "account_id", "user_id", "ticket_number")
    list_select_related = ("type",)
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in Event._meta.fields]
    show_full_result_count = False
