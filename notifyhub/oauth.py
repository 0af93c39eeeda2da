"""django-oauth-toolkit seams: per-application allowed scopes."""

from typing import Any

from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.scopes import SettingsScopes


class ApplicationScopes(SettingsScopes):
    """DOT's scopes backend, narrowed to what each application was granted.

    DOT lets any application ask for any scope, and hands a token requested without `scope`
    its DEFAULT_SCOPES (`__all__`, every scope there is). Here both the available and the
    default scopes of an application are its own allowed scopes, so oauthlib refuses a wider
    request with `invalid_scope` and a request without `scope` gets exactly the allowed set.
    """

    def get_available_scopes(
        self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any
    ) -> list[str]:
        if application is None:
            return []
        return application.allowed_scope_list()

    def get_default_scopes(
        self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any
    ) -> list[str]:
        return self.get_available_scopes(application=application, request=request)


class HubOAuth2Validator(OAuth2Validator):
    """Refuses a token request that would carry no scope at all (an application granted none)."""

    def validate_scopes(
        self,
        client_id: str,
        scopes: list[str],
        client: Any,
        request: Any,
        *args: Any,
        **kwargs: Any,
    ) -> bool:
        if not scopes:
            return False
        return super().validate_scopes(client_id, scopes, client, request, *args, **kwargs)
