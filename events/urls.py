from django.urls import path

from events.api.catalogue import EventTypeListApi
from events.api.ingest import EventIngestApi

urlpatterns = [
    path("v1/notifications", EventIngestApi.as_view(), name="events-ingest"),
    path("notification/v1/event-types", EventTypeListApi.as_view(), name="event-types"),
]
