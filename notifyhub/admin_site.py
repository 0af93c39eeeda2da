"""The admin site titled notifyhub, whose index shows the hub's state at a glance."""

from typing import Any

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest
from django.template.response import TemplateResponse

from notifyhub.dashboard import charts_read, counters_read


class HubAdminSite(admin.AdminSite):
    """Django's admin, titled notifyhub, with the registered counters and charts on its index."""

    site_header = "notifyhub"
    site_title = "notifyhub"
    index_title = "Operator console"

    def index(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> TemplateResponse:
        extra_context = {
            **(extra_context or {}),
            "hub_counters": counters_read(),
            "hub_charts": charts_read(),
        }
        return super().index(request, extra_context)


class HubAdminConfig(AdminConfig):
    """Makes HubAdminSite the default site, so every app's admin.py registers on it."""

    default_site = "notifyhub.admin_site.HubAdminSite"
