"""The hub's ASGI app plus the bare baseline endpoints of bench/urls.py (never in production)."""

import os

import django
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifyhub.settings")
django.setup()
settings.ROOT_URLCONF = "bench.urls"

from notifyhub.asgi import application  # noqa: E402, F401  (the same handlers as production)
