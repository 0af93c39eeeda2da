"""A minimal Django project serving django-eventstream's stock view, as the benchmark baseline:
DjangoModelStorage on PostgreSQL and EVENTSTREAM_REDIS for cross-process delivery, as its README
and our research notes recommend."""

import os
from urllib.parse import urlparse

import dj_database_url

SECRET_KEY = "bench-only-not-secret"  # noqa: S105
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "django_eventstream"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "bench.eventstream_app.urls"
ASGI_APPLICATION = "bench.eventstream_app.asgi.application"
DATABASES = {"default": dj_database_url.parse(os.environ["BENCH_STOCK_DATABASE_URL"])}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
EVENTSTREAM_STORAGE_CLASS = "django_eventstream.storage.DjangoModelStorage"
_redis = urlparse(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
EVENTSTREAM_REDIS = {
    "host": _redis.hostname or "127.0.0.1",
    "port": _redis.port or 6379,
    "db": int((_redis.path or "/0").lstrip("/") or 0),
}
LOGGING = {"version": 1, "root": {"level": "WARNING"}}
