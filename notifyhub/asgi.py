"""ASGI entry point served by daphne: HTTP (including server-sent event streams)."""

import os

from channels.routing import ProtocolTypeRouter
from django.conf import settings
from django.core.asgi import get_asgi_application
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifyhub.settings")

django_asgi_app = get_asgi_application()


class StreamASGIHandler(ASGIHandler):
    """Django's handler for long-lived streams, without asgiref's per-request thread.

    The stock handler wraps each request in a ThreadSensitiveContext, which gives the request a
    thread of its own for its sync parts (middleware) and keeps it until the response ends: one
    idle thread per open stream. Here the sync parts run on asgiref's one shared thread and the
    stream views do their database work in short bursts on the shared pool.
    """

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        await self.handle(scope, receive, send)


stream_asgi_app = StreamASGIHandler()


async def http_application(scope, receive, send):  # type: ignore[no-untyped-def]
    """Streams to the thread-free handler; everything else to Django's usual one."""
    if scope["path"] in settings.NOTIFYHUB_STREAM_PATHS:
        await stream_asgi_app(scope, receive, send)
    else:
        await django_asgi_app(scope, receive, send)


application = ProtocolTypeRouter({"http": http_application})
