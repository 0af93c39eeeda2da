"""The operator console: the notifyhub admin site, OAuth applications and accounts."""

from typing import Any

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from oauth2_provider.admin import ApplicationAdmin as DotApplicationAdmin
from oauth2_provider.models import AccessToken, Grant, IDToken, RefreshToken

from notifyhub.models import Account, AccountMember, Application, Tenant

# Every app registers on the default site, which is HubAdminSite (see HubAdminConfig).
site = admin.site

# django-oauth-toolkit registers its models with plain admins; these replace them.
for _model in (Application, AccessToken, RefreshToken, Grant, IDToken):
    if site.is_registered(_model):
        site.unregister(_model)


@admin.register(Tenant, site=site)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "created_at")
    search_fields = ("id", "name")


@admin.register(Application, site=site)
class ApplicationAdmin(DotApplicationAdmin):
    list_display = (
        "name",
        "client_id",
        "tenant",
        "hub_operator",
        "authorization_grant_type",
        "allowed_scopes",
        "user",
    )
    list_filter = ("hub_operator", "tenant", "authorization_grant_type", "client_type")
    search_fields = ("name", "client_id", "allowed_scopes")
    list_select_related = ("user", "tenant")
    raw_id_fields = ("user",)


@admin.register(AccessToken, site=site)
class AccessTokenAdmin(admin.ModelAdmin):
    list_display = ("id", "application", "user", "scope", "expires")
    list_filter = ("application",)
    search_fields = ("application__name", "application__client_id", "user__username")
    list_select_related = ("application", "user")
    raw_id_fields = ("user", "source_refresh_token", "id_token", "application")
    exclude = ("token", "token_checksum")
    actions = ["revoke"]

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        for token in queryset:
            token.revoke()


@admin.register(RefreshToken, site=site)
class RefreshTokenAdmin(admin.ModelAdmin):
    list_display = ("id", "application", "user", "revoked")
    list_select_related = ("application", "user")
    raw_id_fields = ("user", "access_token", "application")
    exclude = ("token", "token_checksum")


for model in (Grant, IDToken):
    site.register(model)


class AccountMemberInline(admin.TabularInline):
    model = AccountMember
    extra = 0
    raw_id_fields = ("user", "application")


@admin.register(Account, site=site)
class AccountAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "tenant", "member_count", "created_at")
    list_filter = ("tenant",)
    search_fields = ("id", "name")
    list_select_related = ("tenant",)
    inlines = [AccountMemberInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Account]:
        return super().get_queryset(request).annotate(members_total=Count("members"))

    @admin.display(description="members", ordering="members_total")
    def member_count(self, account: Account) -> int:
        return account.members_total  # type: ignore[attr-defined]  # get_queryset's annotation


class LedgerAdmin(admin.ModelAdmin):
    """An admin page for a record: listed and viewed, never added, edited or deleted there
    (its rows are written by the hub as things happen, and forgotten by its retention)."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
