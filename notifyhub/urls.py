"""Root URLs. Each app contributes the URLs of its own surfaces."""

import re

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from oauth2_provider import urls as oauth2_urls

from notifyhub import errors, health, metrics
from notifyhub.introspection import HubIntrospectTokenView
from notifyhub.landing import landing
from notifyhub.oauth import RateLimitedTokenView

urlpatterns = [
    path("", landing, name="landing"),
    path("admin/", admin.site.urls),
    # DOT's token endpoint with rate limits, ahead of DOT's own route to it.
    path("o/token/", RateLimitedTokenView.as_view()),
    # Before DOT's own URLs: introspection only for clients holding the `introspection` scope.
    path("o/introspect/", HubIntrospectTokenView.as_view(), name="introspect"),
    # OpenID Connect is off (OIDC_ENABLED): DOT's OIDC views then fail with a 500 (DEBUG on) or
    # an HTML 404. The hub serves no OIDC: its paths are the platform's JSON 404.
    re_path(r"^o/\.well-known/(?:openid-configuration/?|jwks\.json)$", errors.api_not_found),
    path("o/userinfo/", errors.api_not_found),
    path("o/logout/", errors.api_not_found),
    path("o/", include(oauth2_urls, namespace="oauth2_provider")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path(
        "api/redoc/",
        SpectacularRedocView.as_view(
            url_name="schema", template_name="drf_spectacular/redoc_offline.html"
        ),
        name="api-redoc",
    ),
    path("", include("events.urls")),
    path("", include("subscriptions.urls")),
    path("", include("streams.urls")),
    path("", include("devices.urls")),
    # Last: an API path nothing above matched is the platform's JSON 404 at once, with DEBUG on
    # too (Django's debug 404 is an HTML page), and never APPEND_SLASH's redirect, which a POST
    # cannot follow (with DEBUG on, Django answers such a POST with an HTML 500).
    re_path(
        "^(?:{})".format(
            "|".join(re.escape(prefix.lstrip("/")) for prefix in settings.NOTIFYHUB_API_PREFIXES)
        ),
        errors.api_not_found,
    ),
]

handler400 = "notifyhub.errors.handler400"
handler403 = "notifyhub.errors.handler403"
handler404 = "notifyhub.errors.handler404"
handler500 = "notifyhub.errors.handler500"
