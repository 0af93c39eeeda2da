from django.urls import path

from subscriptions.api.integration import IntegrationNotificationNextApi, IntegrationReleaseApi
from subscriptions.api.notification import (
    NotificationPageApi,
    RecoveryCreateApi,
    RecoveryDetailApi,
    SubscriptionCreateApi,
    SubscriptionDetailApi,
    SubscriptionPauseApi,
    SubscriptionResumeApi,
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
        "notification/v1/subscriptions/<str:subscription_id>/pause",
        SubscriptionPauseApi.as_view(),
        name="subscription-pause",
    ),
    path(
        "notification/v1/subscriptions/<str:subscription_id>/resume",
        SubscriptionResumeApi.as_view(),
        name="subscription-resume",
    ),
    path(
        "notification/v1/subscriptions/<str:subscription_id>/recoveries",
        RecoveryCreateApi.as_view(),
        name="subscription-recoveries",
    ),
    path(
        "notification/v1/subscriptions/<str:subscription_id>/recoveries/<int:recovery_id>",
        RecoveryDetailApi.as_view(),
        name="subscription-recovery-detail",
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
