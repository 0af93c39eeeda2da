"""drf-spectacular seams: how the hub's authentication classes appear in the OpenAPI schema."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import Direction
from rest_framework import serializers


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


class ErrorOutput(serializers.Serializer[Any]):
    """The platform's error body (notifyhub.errors.HubError.body)."""

    code = serializers.CharField(help_text="A stable code listed in docs/errors.md.")
    description = serializers.CharField(help_text="What went wrong, in words.")
    field = serializers.CharField(required=False, help_text="The request field at fault.")


class HubAutoSchema(AutoSchema):
    """Documents the error answers every API view can give, each with the platform's error body.

    Schemathesis found operations answering 400/401/403/404/406/415 that the schema did not list;
    the exception handler gives them to every view alike, so they are documented here once.
    """

    def _error_statuses(self) -> dict[str, str]:
        statuses = {
            "401": "Missing, unknown, expired or revoked token.",
            "403": "The token lacks the required scope.",
            "406": "The Accept header excludes application/json.",
        }
        has_body = self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer()
        has_query = any(parameter["in"] == "query" for parameter in self._get_parameters())
        if has_body or has_query:
            statuses["400"] = "Invalid request; `field` names the culprit."
        if has_body:
            statuses["415"] = "The body is not application/json."
        if getattr(self.view, "client_errors_are_422", False):
            # A surface whose contract answers every refusal of its data with a 422 (the Events
            # API) documents that 422 itself.
            for status in ("400", "406", "415"):
                statuses.pop(status, None)
        if "{" in self.path:
            statuses["404"] = "No such object, or not one the caller may see."
        return statuses

    def get_tags(self) -> list[str]:
        """One tag per surface (a view's `openapi_tag`), so a generated client groups by API."""
        return [getattr(self.view, "openapi_tag", "platform")]

    def _get_response_bodies(self, direction: Direction = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        if not self.view.get_authenticators():
            return responses
        # A surface with an envelope of its own (the Kazoo device API) names it on the view;
        # one with error media types of its own maps each to its body (`error_bodies`).
        body = getattr(self.view, "error_body_schema", ErrorOutput)
        error = self._get_response_for_code(body, "400", direction=direction)
        bodies = getattr(self.view, "error_bodies", None)
        if bodies:
            error["content"] = {
                media_type: next(
                    iter(
                        self._get_response_for_code(serializer, "400", direction=direction)[
                            "content"
                        ].values()
                    )
                )
                for media_type, serializer in bodies.items()
            }
        for status, description in self._error_statuses().items():
            responses.setdefault(status, {**error, "description": description})
        for status, response in responses.items():
            if status[0] in "45" and not response.get("content"):
                response["content"] = error["content"]
        return responses
