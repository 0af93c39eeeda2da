"""notifyhub settings: one module, every value read once from the environment.

A bad value raises ImproperlyConfigured naming the variable. Development defaults exist only
when DEBUG is on. Every NOTIFYHUB_* variable is documented in the README's settings table.
"""

import ipaddress
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from notifyhub.formats import DATETIME_FORMAT

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("NOTIFYHUB_VAR_DIR", BASE_DIR / "var"))


# --- Typed environment helpers ---

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_seconds(name: str, default: int) -> timedelta:
    """A duration given in seconds."""
    return timedelta(seconds=env_int(name, default, minimum=1))


# --- Core ---

# `make run` leaves this file in the var directory of a development checkout: there, any shell
# (a second one for `manage.py createclient`, say) gets DEBUG on without exporting it, as the
# processes `make run` started have. Elsewhere DEBUG is off unless set; DEBUG in the
# environment always wins. It is a file of its own, not the var directory itself, because a
# production machine has a var directory too (static files, the beat schedule).
DEVELOPMENT_MARKER = VAR_DIR / "development-checkout"
DEBUG = env_bool("DEBUG", DEVELOPMENT_MARKER.exists())


def env_required(name: str, development_default: str) -> str:
    """A production requirement: with DEBUG off a missing value stops the process, rather than
    quietly pointing a deployment at a local file or server."""
    value = os.environ.get(name, "").strip()
    if value:
        return value
    if not DEBUG:
        raise ImproperlyConfigured(f"{name} must be set when DEBUG is off")
    return development_default


SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    # Development only: DEBUG is on, so this key never signs anything in production.
    SECRET_KEY = "dev-only-insecure-notifyhub-key-do-not-use-in-production"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "notifyhub.admin_site.HubAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "oauth2_provider",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "notifyhub",
    "events",
    "subscriptions",
    "streams",
    "devices",
]

MIDDLEWARE = [
    "notifyhub.middleware.RequestIdMiddleware",
    "notifyhub.middleware.ApiRequestCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # The web process serves /static/ itself (admin, API docs, landing page): no CDN, no proxy.
    "notifyhub.static_files.StaticFilesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "notifyhub.middleware.ApiErrorMiddleware",
]

ROOT_URLCONF = "notifyhub.urls"
CSRF_FAILURE_VIEW = "notifyhub.errors.csrf_failure"
ASGI_APPLICATION = "notifyhub.asgi.application"
WSGI_APPLICATION = "notifyhub.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Web serving ---

# Threads per web process that run the synchronous parts of API requests (views, middleware).
# Django's own ASGI handler starts and joins a new thread for every request; these live as long
# as the process (see notifyhub/asgi.py). More threads overlap more database and Redis waits
# (the default is the best ingest rate measured on 2 cores; fewer left the GIL idle while
# threads waited: docs/benchmarks.md).
NOTIFYHUB_WEB_THREADS = env_int("NOTIFYHUB_WEB_THREADS", 4, minimum=1)
# A web thread keeps its database connection between requests (no new connection per request)
# and closes it once it has served nothing for this long, so an idle hub holds no connection.
NOTIFYHUB_WEB_DB_IDLE = env_float("NOTIFYHUB_WEB_DB_IDLE", 5.0, minimum=0.0)
# Threads (each with its database connection while busy, as the web threads) for the short
# database bursts of the streams: opening one, replaying its missed events, recording its end.
NOTIFYHUB_STREAM_DB_THREADS = env_int("NOTIFYHUB_STREAM_DB_THREADS", 2, minimum=1)
# Seconds a connection has to send a complete request head, from its opening or the end of its
# previous response: a slow-loris client, or an idle keep-alive connection, is closed then
# (notifyhub/http_channel.py; it never cuts a response in progress, streams included).
NOTIFYHUB_HTTP_HEAD_TIMEOUT = env_float("NOTIFYHUB_HTTP_HEAD_TIMEOUT", 10.0, minimum=0.1)

# --- Database ---

# Under ASGI a request may run on any thread, so connections are not kept between requests by
# default (CONN_MAX_AGE=0); API requests run on the long-lived web threads, which keep theirs
# while busy (NOTIFYHUB_WEB_DB_IDLE). Celery workers set NOTIFYHUB_DB_CONN_MAX_AGE to keep theirs.
_default_db = f"sqlite:///{VAR_DIR / 'notifyhub.sqlite3'}"
try:
    DATABASES = {
        "default": dj_database_url.parse(
            env_required("DATABASE_URL", _default_db),
            conn_max_age=env_int("NOTIFYHUB_DB_CONN_MAX_AGE", 0),
            conn_health_checks=True,
        )
    }
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
if (
    DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    and DATABASES["default"]["CONN_MAX_AGE"] == 0
    and env_bool("NOTIFYHUB_DB_POOL", False)
):
    # Opt-in: psycopg's pool lends each request a connection checked before use, so requests do
    # not pay a new PostgreSQL connection each. Off by default because its idle connections
    # outlive a burst (up to max_size per process for minutes), and an idle hub should hold
    # none: the Push API promises that idle streams hold no database connection.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": env_int("NOTIFYHUB_DB_POOL_MAX_SIZE", 16, minimum=1),
        "timeout": 10,
    }  # CONN_HEALTH_CHECKS makes Django pass psycopg's connection check to the pool.
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool(
    "NOTIFYHUB_DB_PREPARED_STATEMENTS", True
):
    # Parameters travel apart from the SQL (server-side binding) and a statement a connection
    # has run five times is prepared: PostgreSQL then plans the hot statements (the ingest's
    # one statement, the claims, the token look-up) once per connection instead of every time,
    # which took a large share off each ingest (docs/benchmarks.md). Turn it off behind a proxy
    # that pools connections by transaction and cannot carry prepared statements.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"server_side_binding": True, "prepare_threshold": 5}
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend with a health check that reads the socket before it asks the server.
    DATABASES["default"]["ENGINE"] = "notifyhub.postgresql"
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, worker, beat) share one file: wait for locks instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    )
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-notifyhub.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis and cache ---

REDIS_URL = env_required("REDIS_URL", "redis://127.0.0.1:6379/0")
# Every Redis key and pub/sub channel of this deployment starts with this prefix, so two
# deployments (or two test runs) on one Redis never see each other's messages.
NOTIFYHUB_REDIS_PREFIX = os.environ.get("NOTIFYHUB_REDIS_PREFIX", "notifyhub")

CACHES = {
    "default": {
        "BACKEND": "notifyhub.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": NOTIFYHUB_REDIS_PREFIX,
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}

# --- Celery ---

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
# A task is acknowledged only once it finished, and given back to the queue if its worker dies;
# each task claims its database row first, so a redelivered task cannot run its work twice.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker (and beat) outlives Redis going away: it reconnects, and keeps trying for as long as
# Redis is gone (None: Celery's default gives up after 100 tries, about an hour, and exits).
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# kombu's Redis transport with one fix: without it a worker holding a task with a pool slot free
# dies when Redis goes away (notifyhub/broker.py says how).
CELERY_BROKER_TRANSPORT = "notifyhub.broker:Transport"
# Tasks running when the broker connection drops run to the end (their acknowledgement may fail
# and is then logged; Redis redelivers the message after the visibility timeout, and the claim
# makes the rerun a no-op). Cancelling them instead (Celery 6's planned default) would cut
# webhook sends off mid-request, leaving those deliveries `unknown` and never resent.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Longer than the longest task (webhook and push timeouts are seconds), but minutes, not the
    # one-hour default, so a task lost with its worker runs again soon.
    "visibility_timeout": env_int("NOTIFYHUB_CELERY_VISIBILITY_TIMEOUT", 300, minimum=30),
    "global_keyprefix": f"{NOTIFYHUB_REDIS_PREFIX}:celery:",
}
CELERY_TASK_DEFAULT_QUEUE = "notifyhub"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = "UTC"
# Exactly one beat per deployment: it holds a Redis lock of this lifetime, renewed every third
# of it; a second beat exits at start-up, and a killed beat's lock lapses after it
# (notifyhub/beat_lock.py).
NOTIFYHUB_BEAT_LOCK_TTL = env_int("NOTIFYHUB_BEAT_LOCK_TTL", 30, minimum=3)
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "expire-idempotency-keys": {
        "task": "events.tasks.idempotency_keys_expire_task",
        "schedule": 600,
    },
    "purge-expired-notifications": {
        "task": "subscriptions.tasks.notifications_purge_expired_task",
        "schedule": 60,
    },
    "sweep-webhook-deliveries": {
        "task": "subscriptions.tasks.deliveries_sweep_task",
        "schedule": 15,
    },
    "purge-delivery-ledger": {
        "task": "subscriptions.tasks.deliveries_purge_ledger_task",
        "schedule": 3600,
    },
    "trim-stream-sessions": {
        "task": "streams.tasks.stream_sessions_trim_task",
        "schedule": 60,
    },
    "sweep-device-pushes": {
        "task": "devices.tasks.device_pushes_sweep_task",
        "schedule": 30,
    },
}

# --- Auth and OAuth 2.0 ---

# Django's hashers for user passwords (PBKDF2 first, as Django ships them), then the one DOT uses
# for client secrets only (notifyhub/client_secrets.py: long random secrets need no stretching).
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
    "notifyhub.client_secrets.ClientSecretHasher",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "admin:login"

SCOPE_ADMINISTRATOR = "notification:consent:administrator"
SCOPE_CONSUMER = "notification:consent:consumer"
SCOPE_PUBLISH = "events:publish"
SCOPE_DEVICES = "devices:manage"

NOTIFYHUB_ACCESS_TOKEN_TTL = env_int("NOTIFYHUB_ACCESS_TOKEN_TTL", 3600, minimum=60)
# How long a validated token may be answered from Redis before the database is asked again.
# Revocation deletes the cached entry at once, so this only bounds natural expiry drift.
NOTIFYHUB_TOKEN_CACHE_TTL = env_int("NOTIFYHUB_TOKEN_CACHE_TTL", 60)

# /o/token/ requests per window for one client id and for one remote address (the address
# daphne sees: run it with --proxy-headers behind a proxy, see docs/security.md).
NOTIFYHUB_TOKEN_RATE_WINDOW = env_int("NOTIFYHUB_TOKEN_RATE_WINDOW", 60, minimum=1)
NOTIFYHUB_TOKEN_RATE_PER_CLIENT = env_int("NOTIFYHUB_TOKEN_RATE_PER_CLIENT", 30, minimum=1)
NOTIFYHUB_TOKEN_RATE_PER_ADDRESS = env_int("NOTIFYHUB_TOKEN_RATE_PER_ADDRESS", 120, minimum=1)

OAUTH2_PROVIDER_APPLICATION_MODEL = "notifyhub.Application"
OAUTH2_PROVIDER = {
    "SCOPES": {
        SCOPE_ADMINISTRATOR: "Create and delete subscriptions, release deliveries, manage the hub",
        SCOPE_CONSUMER: "Read own subscriptions and notifications, open streams",
        SCOPE_PUBLISH: "Post events",
        SCOPE_DEVICES: "Register devices for accounts the token may act for",
        "introspection": "Introspect other clients' tokens (RFC 7662; the operator's own)",
    },
    # Per-application allowed scopes: a token never carries a scope its application was not
    # granted, and a request without `scope` gets exactly the application's allowed scopes.
    "SCOPES_BACKEND_CLASS": "notifyhub.oauth.ApplicationScopes",
    "OAUTH2_VALIDATOR_CLASS": "notifyhub.oauth.HubOAuth2Validator",
    # Client secrets are long and random: one salted HMAC, not PBKDF2's million rounds.
    "CLIENT_SECRET_HASHER": "client_secret_hmac_sha256",
    "ACCESS_TOKEN_EXPIRE_SECONDS": NOTIFYHUB_ACCESS_TOKEN_TTL,
    "PKCE_REQUIRED": True,
    # RFC 9700 (OAuth 2.0 Security BCP): tokens stored only as checksums, no implicit or
    # password grants, S256 PKCE only, no tokens in query strings, refresh-token replay revokes
    # the whole family; the config gates make a non-compliant setting an error at deploy time.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": not DEBUG,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https", "http"] if DEBUG else ["https"],
}

# --- REST framework and OpenAPI ---

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["notifyhub.auth.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["notifyhub.auth.HasRequiredScope"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # DRF's JSONParser let `1e999` and deep nesting through to server errors (json_bodies.py).
    "DEFAULT_PARSER_CLASSES": ["notifyhub.json_bodies.HubJSONParser"],
    "EXCEPTION_HANDLER": "notifyhub.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "notifyhub.openapi.HubAutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Every surface writes timestamps one way (notifyhub.formats.iso_utc).
    "DATETIME_FORMAT": DATETIME_FORMAT,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "notifyhub",
    "DESCRIPTION": "Self-hosted notification hub: events in, notifications out.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # The Push API's stream is an async Django view, not a DRF one: this adds its operation.
    "PREPROCESSING_HOOKS": ["streams.api.push_subscribe_schema_endpoint"],
    # The Kazoo path as its contract writes it (no trailing slash); the first is the default.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "devices.api.kazoo.kazoo_paths_as_the_contract_writes_them",
    ],
}

# --- Events, subscriptions and retention ---

NOTIFYHUB_MAX_EVENT_BYTES = env_int("NOTIFYHUB_MAX_EVENT_BYTES", 256 * 1024, minimum=1024)
# An idempotency key is remembered at least this long (the sweep frees older keys).
NOTIFYHUB_IDEMPOTENCY_WINDOW = env_seconds("NOTIFYHUB_IDEMPOTENCY_WINDOW", 24 * 3600)
# How long a queued notification stays readable by the paged pull unless its subscription says
# otherwise (the Notification API's contract: configurable, 6 hours by default).
NOTIFYHUB_RETENTION = env_seconds("NOTIFYHUB_RETENTION", 6 * 3600)
# How long the Integration API (FIFO pull, webhook push and release) keeps a notification at
# least, whatever its subscription's retention (that contract: 72 hours).
NOTIFYHUB_INTEGRATION_RETENTION = env_seconds("NOTIFYHUB_INTEGRATION_RETENTION", 72 * 3600)
NOTIFYHUB_PAGE_SIZE = env_int("NOTIFYHUB_PAGE_SIZE", 100, minimum=1)
NOTIFYHUB_MAX_PAGE_SIZE = 1000

# --- Push API streams (server-sent events) ---

# How long a disconnected stream session keeps its missed events for a lossless reconnect.
NOTIFYHUB_STREAM_RECONNECT_WINDOW = env_seconds("NOTIFYHUB_STREAM_RECONNECT_WINDOW", 300)
# Seconds between a web process's heartbeats for the streams it holds (one short UPDATE for all
# of them). A connection whose process missed three heartbeats counts as disconnected since its
# last one: a killed process records nothing else. Keep it well below the reconnect window.
NOTIFYHUB_STREAM_HEARTBEAT = env_float("NOTIFYHUB_STREAM_HEARTBEAT", 30.0, minimum=0.05)
# How long a session past its window is remembered (replaying nothing), so that its client,
# coming back even without Last-Event-ID, is told with `reset` that its position is lost.
NOTIFYHUB_STREAM_SESSION_RETENTION = env_seconds("NOTIFYHUB_STREAM_SESSION_RETENTION", 86400)
# Seconds between keep-alive comments on an idle stream (proxies drop silent connections).
NOTIFYHUB_STREAM_KEEPALIVE = env_float("NOTIFYHUB_STREAM_KEEPALIVE", 15.0, minimum=0.05)
# The `retry:` hint sent to clients: milliseconds before an EventSource reconnects.
NOTIFYHUB_STREAM_RETRY_MS = env_int("NOTIFYHUB_STREAM_RETRY_MS", 2000, minimum=0)
# How long a `?ticket=` from POST /api/push/tickets may wait for its first use (it then lives as
# long as the token or browser session it came from, bound to that clientId).
NOTIFYHUB_STREAM_TICKET_TTL = env_int("NOTIFYHUB_STREAM_TICKET_TTL", 60, minimum=1)
# A stream whose client has not taken this many bytes yet (held in the web process) is closed;
# its client reconnects and replays what it missed (notifyhub/http_channel.py).
NOTIFYHUB_STREAM_MAX_UNSENT_BYTES = env_int(
    "NOTIFYHUB_STREAM_MAX_UNSENT_BYTES", 1024 * 1024, minimum=64 * 1024
)
# Open streams, and stream sessions kept (connected or within their retention), per principal
# (a user, or an application token's client): over either, a new one is refused with 429.
NOTIFYHUB_STREAM_MAX_PER_PRINCIPAL = env_int("NOTIFYHUB_STREAM_MAX_PER_PRINCIPAL", 20, minimum=1)
NOTIFYHUB_STREAM_MAX_SESSIONS_PER_PRINCIPAL = env_int(
    "NOTIFYHUB_STREAM_MAX_SESSIONS_PER_PRINCIPAL", 100, minimum=1
)
# Paths served without a thread of their own per request (see notifyhub/asgi.py).
NOTIFYHUB_STREAM_PATHS = ("/api/push/subscribe", "/admin/streams/streamsession/live/feed")

# --- Request limits ---

# The largest request body any path accepts (the Events API and the Kazoo device API have their
# own, smaller limits); refused with 413 while it arrives, before any view runs.
NOTIFYHUB_MAX_BODY_BYTES = env_int("NOTIFYHUB_MAX_BODY_BYTES", 1024 * 1024, minimum=1024)

# Paths whose errors are always JSON in the platform's error body, never an HTML page.
NOTIFYHUB_API_PREFIXES = (
    "/api/",
    "/v1/",
    "/v2/",
    "/notification/",
    "/o/",
    "/healthz",
    "/readyz",
    "/metrics",
)

# --- Webhooks ---

NOTIFYHUB_WEBHOOK_CONNECT_TIMEOUT = env_float("NOTIFYHUB_WEBHOOK_CONNECT_TIMEOUT", 3.0, minimum=0.1)
# The whole exchange (connect, send, answer) of one delivery attempt.
NOTIFYHUB_WEBHOOK_TIMEOUT = env_float("NOTIFYHUB_WEBHOOK_TIMEOUT", 10.0, minimum=0.5)
NOTIFYHUB_WEBHOOK_MAX_RESPONSE_BYTES = env_int(
    "NOTIFYHUB_WEBHOOK_MAX_RESPONSE_BYTES", 64 * 1024, minimum=0
)
# Sends in flight at once per worker process, and per subscription within it (so one slow
# receiver can hold at most that many of the process's slots).
NOTIFYHUB_WEBHOOK_CONCURRENCY = env_int("NOTIFYHUB_WEBHOOK_CONCURRENCY", 32, minimum=1)
NOTIFYHUB_WEBHOOK_PER_SUBSCRIPTION = env_int("NOTIFYHUB_WEBHOOK_PER_SUBSCRIPTION", 16, minimum=1)
# Networks a webhook may reach although they are not public (e.g. "127.0.0.0/8" in development).
NOTIFYHUB_WEBHOOK_ALLOWED_NETWORKS = env_list("NOTIFYHUB_WEBHOOK_ALLOWED_NETWORKS", [])
for _network in NOTIFYHUB_WEBHOOK_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"NOTIFYHUB_WEBHOOK_ALLOWED_NETWORKS: {_network!r} is not a network (CIDR)"
        ) from None
# A delivery still `sending` this long after its claim had a worker die under it: it becomes
# `unknown`. Longer than the timeout, so a live send is never judged dead.
NOTIFYHUB_WEBHOOK_LEASE = env_seconds("NOTIFYHUB_WEBHOOK_LEASE", 120)
# The `retry` policy: attempts in all, and the first backoff (doubled each time, with jitter).
NOTIFYHUB_WEBHOOK_MAX_ATTEMPTS = env_int("NOTIFYHUB_WEBHOOK_MAX_ATTEMPTS", 8, minimum=1)
NOTIFYHUB_WEBHOOK_RETRY_BASE = env_seconds("NOTIFYHUB_WEBHOOK_RETRY_BASE", 30)
# How long the previous secret still signs after a rotation.
# How long finished webhook deliveries and their attempts are kept (the ledger), also after
# their subscription is deleted.
NOTIFYHUB_LEDGER_RETENTION = env_seconds("NOTIFYHUB_LEDGER_RETENTION", 30 * 24 * 3600)
NOTIFYHUB_WEBHOOK_SECRET_GRACE = env_seconds("NOTIFYHUB_WEBHOOK_SECRET_GRACE", 24 * 3600)
# How often a client may release its failed deliveries.
NOTIFYHUB_RELEASE_INTERVAL = env_seconds("NOTIFYHUB_RELEASE_INTERVAL", 3600)
# --- Device push (APNs, FCM) ---


def env_https_url(name: str, default: str) -> str:
    value = os.environ.get(name, default).strip()
    if not value.startswith("https://"):
        raise ImproperlyConfigured(f"{name} must be an https:// URL, got {value!r}")
    return value


NOTIFYHUB_APNS_URL = env_https_url("NOTIFYHUB_APNS_URL", "https://api.push.apple.com")
NOTIFYHUB_APNS_KEY_ID = os.environ.get("NOTIFYHUB_APNS_KEY_ID", "")
NOTIFYHUB_APNS_TEAM_ID = os.environ.get("NOTIFYHUB_APNS_TEAM_ID", "")
# The .p8 signing key (PEM, ES256) from the Apple developer account.
NOTIFYHUB_APNS_KEY_FILE = os.environ.get("NOTIFYHUB_APNS_KEY_FILE", "")
# The apns-topic (bundle id); empty means the subscription's app name is the bundle id.
NOTIFYHUB_APNS_TOPIC = os.environ.get("NOTIFYHUB_APNS_TOPIC", "")
NOTIFYHUB_FCM_URL = env_https_url("NOTIFYHUB_FCM_URL", "https://fcm.googleapis.com")
NOTIFYHUB_FCM_TOKEN_URI = env_https_url(
    "NOTIFYHUB_FCM_TOKEN_URI", "https://oauth2.googleapis.com/token"
)
# The Firebase service-account JSON (client_email, private_key, project_id).
NOTIFYHUB_FCM_CREDENTIALS_FILE = os.environ.get("NOTIFYHUB_FCM_CREDENTIALS_FILE", "")
NOTIFYHUB_FCM_PROJECT_ID = os.environ.get("NOTIFYHUB_FCM_PROJECT_ID", "")
# Extra CA bundle for the providers' TLS (empty: the system's); tests trust their fakes here.
NOTIFYHUB_PUSH_CA_FILE = os.environ.get("NOTIFYHUB_PUSH_CA_FILE", "")
# At most one notifyhub.provider.failing event per provider in this many seconds.
NOTIFYHUB_PROVIDER_ALERT_INTERVAL = env_int("NOTIFYHUB_PROVIDER_ALERT_INTERVAL", 300, minimum=1)
NOTIFYHUB_PUSH_TIMEOUT = env_float("NOTIFYHUB_PUSH_TIMEOUT", 10.0, minimum=0.1)
# Pushes per task: all of a task's pushes are in flight at once on one HTTP/2 connection.
NOTIFYHUB_PUSH_BATCH = env_int("NOTIFYHUB_PUSH_BATCH", 500, minimum=1)
NOTIFYHUB_PUSH_MAX_ATTEMPTS = env_int("NOTIFYHUB_PUSH_MAX_ATTEMPTS", 8, minimum=1)
# First retry delay in seconds; doubled per attempt, never shorter than the Retry-After asked.
NOTIFYHUB_PUSH_BACKOFF = env_float("NOTIFYHUB_PUSH_BACKOFF", 10.0, minimum=0.0)
NOTIFYHUB_PUSH_LEASE = env_seconds("NOTIFYHUB_PUSH_LEASE", 120)
NOTIFYHUB_PUSH_SWEEP_GRACE = env_seconds("NOTIFYHUB_PUSH_SWEEP_GRACE", 60)

# --- Internationalization and static files ---

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# `manage.py collectstatic` fills it in production; with DEBUG on, files are served straight from
# the apps (WhiteNoise's finders), so development needs no collectstatic.
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Gzip copies (and Brotli ones, where that package is installed) written next to each file
    # by collectstatic, without hashed names: a manifest would make every page that links a
    # static file fail until collectstatic ran, tests and fresh checkouts included. WhiteNoise
    # revalidates unhashed files after a minute.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Security (production) ---

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("NOTIFYHUB_SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env_int("NOTIFYHUB_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
X_FRAME_OPTIONS = "DENY"
# The admin shows a new client secret or API key once, in a message: kept in the server-side
# session (its cookie holds only the session key), never in Django's default message cookie,
# where the secret would travel and sit unencrypted in the browser.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

# --- Logging ---

# `plain` (one line of text) or `json` (one JSON object per line, for a log collector).
NOTIFYHUB_LOG_FORMAT = os.environ.get("NOTIFYHUB_LOG_FORMAT", "plain").strip().lower()
if NOTIFYHUB_LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured(
        f"NOTIFYHUB_LOG_FORMAT must be plain or json, got {NOTIFYHUB_LOG_FORMAT!r}"
    )

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "notifyhub.logs.RequestIdLogFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "notifyhub.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id"],
            "formatter": NOTIFYHUB_LOG_FORMAT,
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("NOTIFYHUB_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # httpx logs every request at INFO: one line per push would drown the worker's log.
        "httpx": {"level": "WARNING"},
        # Celery's routine lines: "Task ... received", "Task ... succeeded", and beat's
        # "Sending due task" for every sweep, every 15 to 600 s. A task's failure (an exception)
        # is still logged at ERROR, and an attempt's failure by our own WARNING line.
        "celery.app.trace": {"level": "WARNING"},
        "celery.worker.strategy": {"level": "WARNING"},
        "celery.beat": {"level": "WARNING"},
    },
}

# --- Metrics and liveness ---

# /metrics answers only requests from these networks (CIDR; empty: from anywhere) and, when a
# token is set, only those carrying `Authorization: Bearer <token>`. At least one must be set.
NOTIFYHUB_METRICS_TOKEN = os.environ.get("NOTIFYHUB_METRICS_TOKEN", "")
NOTIFYHUB_METRICS_ALLOW = env_list("NOTIFYHUB_METRICS_ALLOW", ["127.0.0.0/8", "::1/128"])
for _network in NOTIFYHUB_METRICS_ALLOW:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"NOTIFYHUB_METRICS_ALLOW: {_network!r} is not a network (CIDR)"
        ) from None
if not NOTIFYHUB_METRICS_ALLOW and not NOTIFYHUB_METRICS_TOKEN:
    raise ImproperlyConfigured(
        "NOTIFYHUB_METRICS_ALLOW is empty and NOTIFYHUB_METRICS_TOKEN unset: /metrics would be "
        "open to anyone; set a token, or networks"
    )
# Every process of this deployment on this machine (web, worker, beat) writes its counters to
# files in this directory, and a scrape of any web process adds them all up (prometheus_client's
# multiprocess mode). prometheus_client reads the variable when it is first imported, so it is
# set here, before any module imports it. Empty it before the deployment starts (docs/metrics.md).
NOTIFYHUB_METRICS_DIR = Path(
    os.environ.get("PROMETHEUS_MULTIPROC_DIR") or VAR_DIR / "metrics" / NOTIFYHUB_REDIS_PREFIX
)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(NOTIFYHUB_METRICS_DIR)
# Seconds between the heartbeats workers and beat write to Redis; one missing for three of
# these shows that process as down (admin index, /readyz detail, metrics).
NOTIFYHUB_HEARTBEAT_INTERVAL = env_float("NOTIFYHUB_HEARTBEAT_INTERVAL", 10.0, minimum=0.1)
