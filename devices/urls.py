from django.urls import re_path

from devices.api.kazoo import KazooNotFoundApi, PushNotificationSubscriptionApi

urlpatterns = [
    re_path(
        r"^v2/accounts/(?P<account_id>[^/]+)/push_notification_subscriptions/"
        r"(?P<app_name>[^/]+)/(?P<device_id>[^/]+)/?$",
        PushNotificationSubscriptionApi.as_view(),
        name="kazoo-push-subscription",
    ),
    # Last: any other /v2/ path answers Kazoo's 404 in Kazoo's envelope.
    re_path(r"^v2/", KazooNotFoundApi.as_view(), name="kazoo-not-found"),
]
