from django.urls import path

from streams.api import PushTicketCreateApi, push_subscribe

urlpatterns = [
    path("api/push/subscribe", push_subscribe, name="push-subscribe"),
    path("api/push/tickets", PushTicketCreateApi.as_view(), name="push-tickets"),
]
