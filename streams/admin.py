"""Operator console for Push API streams: their sessions, and the live page of every event."""

import uuid
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from notifyhub import errors
from notifyhub.admin import site
from streams.connection import EventStreamResponse, feed_stream, release_request_connection
from streams.hub import StreamConnection
from streams.models import StreamSession
from streams.rules import stream_session_events
from streams.selectors import stream_holder_silent_before, stream_sessions_live_filter

# The live page shows every tenant's payloads: being staff is not enough, the operator must
# hold the permission the admin's own Event pages ask for.
LIVE_FEED_PERMISSION = "events.view_event"


async def admin_live_feed(request: HttpRequest) -> HttpResponseBase:
    """Every event as it is ingested, for a staff member's browser session allowed to view
    events (LIVE_FEED_PERMISSION)."""
    user = await request.auser()
    if not (user.is_authenticated and user.is_active and user.is_staff):
        await sync_to_async(release_request_connection)()
        return errors.json_error(errors.Forbidden("Log in to the admin as staff."))
    allowed = await user.ahas_perm(LIVE_FEED_PERMISSION)
    await sync_to_async(release_request_connection)()
    if not allowed:
        return errors.json_error(
            errors.Forbidden(f"The live feed needs the permission {LIVE_FEED_PERMISSION}.")
        )
    connection = StreamConnection(
        session_id=None,
        connection_id=uuid.uuid4(),
        session_key=request.session.session_key,
        user_id=user.pk,
    )
    return EventStreamResponse(feed_stream(request, connection))


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
    change_list_template = "admin/streams/streamsession/change_list.html"

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
        return TemplateResponse(request, "admin/streams/live.html", context)
