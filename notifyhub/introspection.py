"""RFC 7662 token introspection, for the clients the operator allowed it.

DOT's IntrospectTokenView lets any client that authenticates with its own credentials introspect
any token: a partner could learn another partner's token's scopes, user and expiry. Here a client
authenticating with its credentials must hold the `introspection` scope among its allowed scopes
(a bearer token needs that scope too, as DOT already requires).
"""

import base64
from typing import Any
from urllib.parse import unquote_plus

from django.http import HttpRequest, JsonResponse
from oauth2_provider.views import IntrospectTokenView

from notifyhub.models import Application

SCOPE_INTROSPECTION = "introspection"


def _client_id_of(request: HttpRequest) -> str | None:
    """The client id a request authenticated with: HTTP Basic first, then the form body, as
    DOT's validator reads them (both url-encoded, RFC 6749 2.3.1)."""
    scheme, _, encoded = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(encoded.strip()).decode("utf-8")
        except ValueError:
            return None
        return unquote_plus(decoded.partition(":")[0])
    return request.POST.get("client_id")


class HubIntrospectTokenView(IntrospectTokenView):
    """`/o/introspect/`: only for clients holding the `introspection` scope."""

    def authenticate_client(self, request: HttpRequest) -> Any:
        if not super().authenticate_client(request):
            return False
        client_id = _client_id_of(request)
        application = Application.objects.filter(client_id=client_id).first()
        # False falls back to DOT's bearer-token check, which refuses these credentials.
        return application is not None and SCOPE_INTROSPECTION in application.allowed_scope_list()

    def unauthenticated_response(self, request: HttpRequest, oauthlib_request: Any = None) -> Any:
        # DOT answers an empty 403; /o/ is an API path, so the refusal is JSON, in RFC 6749's
        # error style as the other OAuth endpoints answer.
        return JsonResponse(
            {
                "error": "access_denied",
                "error_description": "Introspection needs a client or token holding the "
                "introspection scope.",
            },
            status=403,
        )
