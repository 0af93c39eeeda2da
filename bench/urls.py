"""Baselines served by the same daphne as the hub, so ratios compare like with like.

- `bench/minimal`: the cheapest authenticated DRF endpoint (bearer token, scope check, JSON).
- `bench/bare-insert`: the naive ingest: one event row and a 10-row bulk insert, no validation,
  no idempotency.
- `bench/bare-claim`: claim and delete 100 queued rows with FOR UPDATE SKIP LOCKED, no
  visibility rules, no serializers.
"""

from django.conf import settings
from django.db import connection, transaction
from django.urls import path
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from events.models import Event, new_event_id
from notifyhub.urls import urlpatterns as hub_urlpatterns
from subscriptions.models import Notification, Subscription


class MinimalApi(APIView):
    required_scopes = [settings.SCOPE_CONSUMER, settings.SCOPE_PUBLISH]

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class BareInsertApi(APIView):
    required_scopes = [settings.SCOPE_PUBLISH]

    def post(self, request: Request) -> Response:
        now = timezone.now()
        subscription_ids = list(Subscription.objects.values_list("id", flat=True)[:10])
        with transaction.atomic():
            event = Event.objects.create(
                id=new_event_id(),
                type_id=request.data["event"]["type"],
                payload=request.data["event"]["payload"],
                producer="bench",
                payload_hash="-",
                created_at=now,
            )
            Notification.objects.bulk_create(
                Notification(subscription_id=sid, event=event, created_at=now, expires_at=now)
                for sid in subscription_ids
            )
        return Response({"id": event.id, "status": "processed"})


class BareClaimApi(APIView):
    required_scopes = [settings.SCOPE_CONSUMER]

    def get(self, request: Request, subscription_id: str) -> Response:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM subscriptions_notification WHERE id IN ("
                " SELECT id FROM subscriptions_notification WHERE subscription_id = %s"
                " ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED) RETURNING id, event_id",
                [subscription_id],
            )
            rows = cursor.fetchall()
        return Response({"results": [{"id": row[1]} for row in rows]})


urlpatterns = [
    *hub_urlpatterns,
    path("bench/minimal", MinimalApi.as_view()),
    path("bench/bare-insert", BareInsertApi.as_view()),
    path("bench/bare-claim/<str:subscription_id>", BareClaimApi.as_view()),
]
