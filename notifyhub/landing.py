"""The page at `/`: where an operator finds the console, the API docs and the probes."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET


@require_GET
def landing(request: HttpRequest) -> HttpResponse:
    """A static page of links; it reads nothing and needs no login."""
    return render(request, "landing.html")
