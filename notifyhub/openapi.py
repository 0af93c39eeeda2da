"""drf-spectacular seams: how the hub's authentication classes appear in the OpenAPI schema."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """OAuth 2.0 access tokens in `Authorization: Bearer`."""

    target_class = "notifyhub.auth.BearerTokenAuthentication"
    name = "oauth2"

    def get_security_definition(self, auto_schema: object) -> dict[str, object]:
        return {
            "type": "oauth2",
            "flows": {
                "clientCredentials": {"tokenUrl": "/o/token/", "scopes": {}},
                "authorizationCode": {
                    "authorizationUrl": "/o/authorize/",
                    "tokenUrl": "/o/token/",
                    "scopes": {},
                },
            },
        }
