"""The hub's URLs plus two probe views, so platform rules can be tested before any surface."""

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from notifyhub.urls import handler400, handler403, handler404, handler500
from notifyhub.urls import urlpatterns as hub_urlpatterns

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]


class AdminOnlyProbe(APIView):
    required_scopes = ["notification:consent:administrator"]

    def get(self, request: Request) -> Response:
        return Response({"client_id": request.auth.client_id})

    def post(self, request: Request) -> Response:
        return Response({"received": request.data})


class UndeclaredProbe(APIView):
    """Declares no scope: must be closed to every token."""

    def get(self, request: Request) -> Response:
        return Response({})


class CrashingProbe(APIView):
    required_scopes = ["notification:consent:administrator"]

    def get(self, request: Request) -> Response:
        raise RuntimeError("a bug")


urlpatterns = [
    path("api/probe/admin", AdminOnlyProbe.as_view()),
    path("api/probe/undeclared", UndeclaredProbe.as_view()),
    path("api/probe/crash", CrashingProbe.as_view()),
    *hub_urlpatterns,  # Last: it ends with the catch-all of unknown API paths.
]
