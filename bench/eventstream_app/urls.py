import django_eventstream
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt
from django_eventstream import send_event


@csrf_exempt
def send(request: HttpRequest) -> JsonResponse:
    """The baseline's ingest: store and publish one event on the `bench` channel."""
    send_event("bench", "message", {"seq": int(request.GET["seq"])})
    return JsonResponse({"ok": True})


urlpatterns = [
    path("events/", include(django_eventstream.urls), {"channels": ["bench"]}),
    path("send", send),
]
