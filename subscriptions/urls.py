from django.urls import path

from subscriptions.api.integration import IntegrationNotificationNextApi, IntegrationReleaseApi
from subscriptions.api.notification import (
    NotificationPageApi,
    SubscriptionCreateApi,
    SubscriptionDetailApi,
    WebhookSecretRotateApi,
)

urlpatterns = [
    path("notification/v1/subscriptions", SubscriptionCreateApi.as_view(), name="subscriptions"),
    path(
        "notification/v1/subscriptions/<str:subscription_id>",
        SubscriptionDetailApi.as_view(),
        name="subscription-detail",
    ),
    path(
        "notification/v1/subscriptions/<str:subscription_id>/notifications",
        NotificationPageApi.as_view(),
        name="subscription-notifications",
    ),
    path(
        "notification/v1/subscriptions/<str:subscription_id>/webhook-secret",
        WebhookSecretRotateApi.as_view(),
        name="subscription-webhook-secret",
    ),
    path(
        "api/v3/integration/notifications/release",
        IntegrationReleaseApi.as_view(),
        name="integration-notifications-release",
    ),
    path(
        "api/v3/integration/notifications",
        IntegrationNotificationNextApi.as_view(),
        name="integration-notifications",
    ),
]
