"""WSGI entry point, for serving the synchronous API under a WSGI server (no streams)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifyhub.settings")

application = get_wsgi_application()
