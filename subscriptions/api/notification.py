"""The Notification API: subscriptions and paged, read-once notifications (keep this contract)."""

from datetime import timedelta

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from notifyhub import errors
from notifyhub.auth import request_token
from notifyhub.models import identifier_validator
from notifyhub.serializer_fields import UtcDateTimeField
from subscriptions.models import Recovery, Subscription
from subscriptions.redelivery import recovery_start, subscription_pause, subscription_resume
from subscriptions.selectors import (
    subscription_get_administered,
    subscription_get_visible,
    subscription_remaining,
)
from subscriptions.services import (
    ClaimedPage,
    notifications_claim_page,
    subscription_create,
    subscription_delete,
)
from subscriptions.webhooks import subscription_rotate_webhook_secret


class SubscriptionCreateInput(serializers.Serializer):
    event_type_ids = serializers.ListField(
        child=serializers.CharField(max_length=128),
        allow_empty=False,
        max_length=500,
        help_text="The list of events to subscribe for notifications (non-empty, unique).",
    )
    client_id = serializers.CharField(
        max_length=100,
        validators=[identifier_validator],
        help_text="The oauth2 client identifier issued to the client during the registration "
        "process, as indicated by OAuth RFC 6749.",
    )
    notification_url = serializers.URLField(
        required=False,
        allow_blank=True,
        allow_null=True,
        max_length=2000,
        help_text="An http(s) URL the hub POSTs each new notification to (Integration API push).",
    )
    notification_page_size = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=settings.NOTIFYHUB_MAX_PAGE_SIZE,
        help_text="Notifications per page of the paged pull.",
    )
    retention_hours = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=24 * 30,
        help_text="Hours each notification stays readable by the paged pull (6 by default).",
    )
    delivery_policy = serializers.ChoiceField(
        choices=Subscription.DeliveryPolicy.values,
        required=False,
        help_text="Webhook push: `once` (the Integration API's contract) or `retry`.",
    )

    def validate_event_type_ids(self, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise serializers.ValidationError("event type ids must be unique")
        return value


class SubscriptionDetailOutput(serializers.Serializer):
    client_id = serializers.CharField(
        help_text="The oauth2 client identifier issued to the client during the registration "
        "process, as indicated by OAuth RFC 6749."
    )
    event_type_ids = serializers.ListField(
        child=serializers.CharField(),
        help_text="The list of events the subscription notifies of.",
    )
    subscribed_by = serializers.CharField(help_text="The client id that created the subscription.")
    subscription_date = UtcDateTimeField(help_text="When the subscription was created.")
    notification_url = serializers.CharField(
        allow_blank=True, help_text="The push URL; empty when the hub does not push."
    )
    notification_page_size = serializers.IntegerField(
        help_text="Notifications per page of the paged pull."
    )


class SubscriptionStatusOutput(serializers.Serializer):
    last_request_date = UtcDateTimeField(
        help_text="When notifications were last retrieved (the subscription date before that)."
    )
    number_of_remaining_notifications = serializers.IntegerField(
        help_text="Notifications still readable; may change between two calls."
    )


class SubscriptionOutput(serializers.Serializer):
    id = serializers.CharField(help_text="Subscription id, used to get its notifications.")
    subscription = SubscriptionDetailOutput(help_text="The 'static' details of the subscription.")
    subscription_status = SubscriptionStatusOutput(
        help_text="The last time notifications were retrieved, and how many remain."
    )


class SubscriptionCreateOutput(SubscriptionOutput):
    webhook_secret = serializers.CharField(
        required=False,
        help_text="The webhook signing secret (whsec_...), only in this answer, only with a "
        "notification_url.",
    )


class WebhookSecretRotateOutput(serializers.Serializer):
    webhook_secret = serializers.CharField(
        help_text="The new webhook signing secret (whsec_...), only in this answer."
    )
    previous_secret_valid_until = UtcDateTimeField(
        help_text="Until when the previous secret keeps signing too."
    )


class NotificationItemOutput(serializers.Serializer):
    id = serializers.CharField(help_text="The event's id.")
    event_type_id = serializers.CharField(help_text="The id of the event's type.")
    created_at = UtcDateTimeField(help_text="When the notification was created.")
    expires_at = UtcDateTimeField(
        help_text="Until when the notification is kept (the subscription's retention: 6 hours "
        "by default)."
    )
    payload = serializers.JSONField(
        help_text="The event's data; its schema depends on the event type."
    )


class NotificationPageOutput(serializers.Serializer):
    page = serializers.IntegerField(
        help_text="How many pages the subscription has retrieved, this one included."
    )
    size = serializers.IntegerField(help_text="How many notifications `results` holds.")
    results = NotificationItemOutput(
        many=True,
        help_text="The notifications, oldest first; the schema of each depends on the event "
        "types the client has subscribed to.",
    )


# The contract's example bodies, its placeholders filled (its timestamps as it writes them).
SUBSCRIPTION_EXAMPLE = {
    "id": "3f0c6a8e-5b1d-4c2e-9f7a-1d2e3f4a5b6c",
    "subscription": {
        "client_id": "my-integration",
        "event_type_ids": ["order.accepted"],
        "subscribed_by": "notificationAdminApp",
        "subscription_date": "2018-01-23T04:56:22Z",
        "notification_url": "",
        "notification_page_size": 100,
    },
    "subscription_status": {
        "last_request_date": "2018-01-23T04:56:22Z",
        "number_of_remaining_notifications": 0,
    },
}
PAGE_EXAMPLE = {
    "page": 1,
    "size": 1,
    "results": [
        {
            "id": "01HZX3K1Q9V7N2D4T6B8C0EFGH",
            "event_type_id": "order.accepted",
            "created_at": "2018-01-23T04:56:22Z",
            "expires_at": "2018-01-23T10:56:22Z",
            "payload": {
                "order_id": "H1234567890",
                "orderUUID": "265cb601-a78a-4862-9e9d-d6b48d6a0a3f",
            },
        }
    ],
}


def notification_page_response(page: ClaimedPage) -> HttpResponse:
    """The page as NotificationPageOutput documents it, its results spliced in as the service
    rendered them: decoding and re-encoding every payload was most of a page's cost."""
    # DRF's JSONRenderer escapes these two (valid JSON, but not JavaScript); so do we.
    results = page.results_json.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    body = f'{{"page":{page.number},"size":{page.size},"results":{results}}}'
    return HttpResponse(body.encode(), content_type="application/json")


def subscription_output(subscription: Subscription) -> dict[str, object]:
    return SubscriptionOutput(
        {
            "id": str(subscription.id),
            "subscription": {
                "client_id": subscription.client_id,
                "event_type_ids": sorted(subscription.event_types.values_list("id", flat=True)),
                "subscribed_by": subscription.subscribed_by,
                "subscription_date": subscription.subscription_date,
                # The contract types both as strings: "" for no URL, and the subscription's
                # own date until the first read (a generated client refuses null there).
                "notification_url": subscription.notification_url,
                "notification_page_size": subscription.notification_page_size,
            },
            "subscription_status": {
                "last_request_date": subscription.last_request_date
                or subscription.subscription_date,
                "number_of_remaining_notifications": subscription_remaining(
                    subscription=subscription
                ),
            },
        }
    ).data


class SubscriptionCreateApi(APIView):
    openapi_tag = "Notification API"
    required_scopes = [settings.SCOPE_ADMINISTRATOR]

    @extend_schema(
        operation_id="subscriptions_create",
        summary="Create a subscription",
        description=(
            "Creates a new subscription for a list of event type ids and a client id: whenever "
            "an event of one of those types happens, it is available from the subscription's "
            "`notifications` endpoint (and POSTed to `notification_url`, when given). Needs "
            "the scope `notification:consent:administrator`."
        ),
        request=SubscriptionCreateInput,
        examples=[
            OpenApiExample(
                "The contract's request",
                value={"event_type_ids": ["order.accepted"], "client_id": "my-integration"},
                request_only=True,
            ),
            OpenApiExample(
                "The contract's answer",
                value=SUBSCRIPTION_EXAMPLE,
                response_only=True,
                status_codes=["201"],
            ),
        ],
        responses={
            201: SubscriptionCreateOutput,
            400: OpenApiResponse(description="Invalid body."),
        },
    )
    def post(self, request: Request) -> Response:
        if not isinstance(request.data, dict):
            raise errors.ValidationFailed("the body must be a JSON object")
        body = SubscriptionCreateInput(data=request.data)
        # The platform's exception handler renders the first field error as NOT000007.
        body.is_valid(raise_exception=True)
        data = body.validated_data
        retention_hours = data.get("retention_hours")
        token = request_token(request)
        created = subscription_create(
            reach=token.reach,
            client_id=data["client_id"],
            event_type_ids=data["event_type_ids"],
            subscribed_by=token.client_id,
            notification_url=data.get("notification_url") or "",
            notification_page_size=data.get("notification_page_size"),
            retention=timedelta(hours=retention_hours) if retention_hours else None,
            delivery_policy=data.get("delivery_policy") or Subscription.DeliveryPolicy.ONCE,
        )
        # Read back as the GET answers it (its event types, its counts).
        subscription = subscription_get_visible(
            client_id=created.client_id, subscription_id=str(created.id)
        )
        assert subscription is not None  # noqa: S101 - created above, in this transaction
        output = subscription_output(subscription)
        if created.webhook_secret:
            output["webhook_secret"] = created.webhook_secret
        return Response(output, status=201)


class SubscriptionDetailApi(APIView):
    """GET for the owning consumer; DELETE for administrators."""

    openapi_tag = "Notification API"

    @property
    def required_scopes(self) -> list[str]:
        if self.request.method == "DELETE":
            return [settings.SCOPE_ADMINISTRATOR]
        return [settings.SCOPE_CONSUMER]

    @extend_schema(
        operation_id="subscriptions_retrieve",
        summary="Get a subscription's details and status",
        description=(
            "The subscription's static details, the last time its notifications were retrieved "
            "and how many remain (a number that may change between two calls). Needs the scope "
            "`notification:consent:consumer` and a token of the subscription's own client."
        ),
        examples=[
            OpenApiExample(
                "The contract's answer",
                value=SUBSCRIPTION_EXAMPLE,
                response_only=True,
                status_codes=["200"],
            )
        ],
        responses={200: SubscriptionOutput},
    )
    def get(self, request: Request, subscription_id: str) -> Response:
        subscription = subscription_get_visible(
            client_id=request_token(request).client_id, subscription_id=subscription_id
        )
        if subscription is None:
            raise errors.NotFound("No such subscription.")
        return Response(subscription_output(subscription))

    @extend_schema(
        operation_id="subscriptions_destroy",
        summary="Unsubscribe",
        description="Deletes the subscription. Needs `notification:consent:administrator`.",
        responses={204: None},
    )
    def delete(self, request: Request, subscription_id: str) -> Response:
        subscription = subscription_get_administered(
            reach=request_token(request).reach, subscription_id=subscription_id
        )
        if subscription is None:
            raise errors.NotFound("No such subscription.")
        subscription_delete(subscription=subscription)
        return Response(status=204)


class NotificationPageApi(APIView):
    openapi_tag = "Notification API"
    required_scopes = [settings.SCOPE_CONSUMER]

    @extend_schema(
        operation_id="subscriptions_notifications_list",
        summary="Retrieve the next page of a subscription's notifications (read once)",
        description=(
            "Retrieves a set of notifications of the subscription, oldest first. Once "
            "retrieved, a notification cannot be retrieved again: this endpoint is not "
            "idempotent. Notifications are kept for the subscription's retention (6 hours by "
            "default): `expires_at` says until when. Needs `notification:consent:consumer` "
            "and a token of the subscription's own client."
        ),
        parameters=[OpenApiParameter("size", OpenApiTypes.INT, OpenApiParameter.QUERY)],
        examples=[
            OpenApiExample(
                "A page of one notification",
                value=PAGE_EXAMPLE,
                response_only=True,
                status_codes=["200"],
            )
        ],
        responses={200: NotificationPageOutput},
    )
    def get(self, request: Request, subscription_id: str) -> HttpResponse:
        client_id = request_token(request).client_id
        size = None
        raw_size = request.query_params.get("size")
        if raw_size is not None:
            # isdecimal, not isdigit: int() refuses digits such as '²'.
            if (
                not raw_size.isdecimal()
                or not 1 <= int(raw_size) <= settings.NOTIFYHUB_MAX_PAGE_SIZE
            ):
                # Only the owner learns that its size is wrong: to anyone else the subscription
                # does not exist, whatever the query string says.
                visible = subscription_get_visible(
                    client_id=client_id, subscription_id=subscription_id
                )
                if visible is None:
                    raise errors.NotFound("No such subscription.")
                raise errors.ValidationFailed(
                    f"size: an integer from 1 to {settings.NOTIFYHUB_MAX_PAGE_SIZE}", field="size"
                )
            size = int(raw_size)
        page = notifications_claim_page(
            client_id=client_id, subscription_id=subscription_id, size=size
        )
        if page is None:
            raise errors.NotFound("No such subscription.")
        return notification_page_response(page)


class WebhookSecretRotateInput(serializers.Serializer):
    previous_secret_grace_seconds = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=int(settings.NOTIFYHUB_WEBHOOK_SECRET_GRACE.total_seconds()),
        help_text="How long the previous secret keeps signing (NOTIFYHUB_WEBHOOK_SECRET_GRACE "
        "by default); 0 ends it at once, for a secret that leaked.",
    )


class WebhookSecretRotateApi(APIView):
    """A new webhook signing secret; the previous one keeps signing for the grace period."""

    openapi_tag = "Notification API"
    required_scopes = [settings.SCOPE_ADMINISTRATOR]

    @extend_schema(
        operation_id="subscriptions_webhook_secret_rotate",
        summary="Rotate a subscription's webhook signing secret",
        request=WebhookSecretRotateInput,
        responses={
            200: WebhookSecretRotateOutput,
            400: OpenApiResponse(description="The subscription has no notification_url."),
        },
    )
    def post(self, request: Request, subscription_id: str) -> Response:
        subscription = subscription_get_administered(
            reach=request_token(request).reach, subscription_id=subscription_id
        )
        if subscription is None:
            raise errors.NotFound("No such subscription.")
        body = WebhookSecretRotateInput(data=request.data if request.data else {})
        body.is_valid(raise_exception=True)
        if not subscription.notification_url:
            raise errors.ValidationFailed("This subscription has no notification_url.")
        grace = body.validated_data.get("previous_secret_grace_seconds")
        secret = subscription_rotate_webhook_secret(
            subscription=subscription, grace=None if grace is None else timedelta(seconds=grace)
        )
        return Response(
            WebhookSecretRotateOutput(
                {
                    "webhook_secret": secret,
                    "previous_secret_valid_until": subscription.webhook_secret_previous_until,
                }
            ).data
        )


# --- Operations on a subscription's webhook deliveries (notifyhub's own, for administrators) ---


class SubscriptionPauseOutput(serializers.Serializer):
    paused_at = UtcDateTimeField(
        allow_null=True, help_text="When deliveries were paused (null: they are not)."
    )
    deliveries = serializers.IntegerField(
        help_text="Pause: deliveries held now. Resume: deliveries queued to be sent, in order."
    )


class RecoveryInput(serializers.Serializer):
    since = UtcDateTimeField(help_text="Resend deliveries written from this time on.")
    scope = serializers.ChoiceField(
        choices=Recovery.Scope.choices,
        default=Recovery.Scope.FAILED,
        help_text="`failed`: failed and unknown deliveries; `all`: delivered ones too.",
    )


class RecoveryOutput(serializers.Serializer):
    id = serializers.IntegerField(help_text="The recovery's id.")
    subscription_id = serializers.UUIDField(
        help_text="The subscription whose deliveries it resends."
    )
    since = UtcDateTimeField(help_text="Deliveries written from this time on are resent.")
    scope = serializers.CharField(help_text="`failed` or `all`, as requested.")
    status = serializers.ChoiceField(
        choices=Recovery.Status.choices, help_text="`queued`, `running` or `done`."
    )
    total = serializers.IntegerField(help_text="Deliveries written since `since`.")
    resent = serializers.IntegerField(help_text="Queued to be sent again so far.")
    skipped = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Deliveries left as they were, counted by the reason why.",
    )
    created_at = UtcDateTimeField(help_text="When the recovery was requested.")
    finished_at = UtcDateTimeField(
        allow_null=True, help_text="When it finished (null: it has not)."
    )


class _AdministeredSubscriptionApi(APIView):
    openapi_tag = "Notification API"
    required_scopes = [settings.SCOPE_ADMINISTRATOR]

    def administered(self, request: Request, subscription_id: str) -> Subscription:
        subscription = subscription_get_administered(
            reach=request_token(request).reach, subscription_id=subscription_id
        )
        if subscription is None:
            raise errors.NotFound("No such subscription.")
        return subscription


class SubscriptionPauseApi(_AdministeredSubscriptionApi):
    """Pause a subscription's webhook deliveries: they keep being written, and wait."""

    @extend_schema(
        operation_id="subscriptions_pause",
        summary="Pause a subscription's webhook deliveries (nothing is lost)",
        request=None,
        responses={200: SubscriptionPauseOutput},
    )
    def post(self, request: Request, subscription_id: str) -> Response:
        subscription = self.administered(request, subscription_id)
        held = subscription_pause(subscription=subscription)
        return Response(
            SubscriptionPauseOutput({"paused_at": subscription.paused_at, "deliveries": held}).data
        )


class SubscriptionResumeApi(_AdministeredSubscriptionApi):
    """Resume a paused subscription: what it held is sent, in the order it was written."""

    @extend_schema(
        operation_id="subscriptions_resume",
        summary="Resume a subscription's webhook deliveries",
        request=None,
        responses={200: SubscriptionPauseOutput},
    )
    def post(self, request: Request, subscription_id: str) -> Response:
        subscription = self.administered(request, subscription_id)
        queued = subscription_resume(subscription=subscription)
        return Response(SubscriptionPauseOutput({"paused_at": None, "deliveries": queued}).data)


class RecoveryCreateApi(_AdministeredSubscriptionApi):
    """ "Recover since T": resend a subscription's deliveries from a time, in the background."""

    @extend_schema(
        operation_id="subscriptions_recoveries_create",
        summary="Resend a subscription's webhook deliveries since a time",
        request=RecoveryInput,
        responses={202: RecoveryOutput},
    )
    def post(self, request: Request, subscription_id: str) -> Response:
        subscription = self.administered(request, subscription_id)
        body = RecoveryInput(data=request.data)
        body.is_valid(raise_exception=True)
        recovery = recovery_start(
            subscription=subscription,
            since=body.validated_data["since"],
            scope=body.validated_data["scope"],
            requested_by=request_token(request).client_id,
        )
        return Response(RecoveryOutput(recovery).data, status=202)


class RecoveryDetailApi(_AdministeredSubscriptionApi):
    """A recovery's progress."""

    @extend_schema(
        operation_id="subscriptions_recoveries_retrieve",
        summary="A recovery's progress",
        responses={200: RecoveryOutput},
    )
    def get(self, request: Request, subscription_id: str, recovery_id: int) -> Response:
        subscription = self.administered(request, subscription_id)
        recovery = subscription.recoveries.filter(pk=recovery_id).first()
        if recovery is None:
            raise errors.NotFound("No such recovery.")
        return Response(RecoveryOutput(recovery).data)
