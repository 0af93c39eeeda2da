"""Whether each push provider is configured. A push to one that is not fails at once, with the
missing settings named on its attempt row, rather than raising on every try until its lease
runs out; the process warns once per provider, not once per push."""

import logging

from django.conf import settings

logger = logging.getLogger(__name__)

NOT_CONFIGURED = "provider not configured"
_REQUIRED = {
    "apns": ("NOTIFYHUB_APNS_KEY_FILE", "NOTIFYHUB_APNS_KEY_ID", "NOTIFYHUB_APNS_TEAM_ID"),
    "fcm": ("NOTIFYHUB_FCM_CREDENTIALS_FILE",),
}
_warned: set[str] = set()


def provider_missing(provider: str) -> str:
    """What the settings lack for `provider`, as a sentence; empty when it is configured."""
    missing = [name for name in _REQUIRED.get(provider, ()) if not getattr(settings, name)]
    if provider not in _REQUIRED:
        return f"unknown push provider {provider!r}"
    return f"{', '.join(missing)} not set; cannot push to {provider.upper()}" if missing else ""


def provider_unusable(provider: str) -> str:
    """`provider_missing`, warned about once per process and provider (a configuration error
    is not news on its thousandth push)."""
    missing = provider_missing(provider)
    if missing and provider not in _warned:
        _warned.add(provider)
        logger.warning("push provider %s is not configured: %s", provider, missing)
    return missing


def providers_status() -> dict[str, dict[str, str]]:
    """Each provider as /readyz's detail and the admin index show it."""
    status: dict[str, dict[str, str]] = {}
    for provider in _REQUIRED:
        missing = provider_missing(provider)
        status[provider] = (
            {"status": NOT_CONFIGURED, "detail": missing}
            if missing
            else {"status": "ok", "detail": "configured"}
        )
    return status
