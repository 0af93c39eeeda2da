"""Request body limits: the largest body each path may send, enforced while the body arrives.

Every path has a limit: `NOTIFYHUB_MAX_BODY_BYTES`, or a smaller one that the app owning a
surface registers for its paths in its `AppConfig.ready()` (the Events API's
`NOTIFYHUB_MAX_EVENT_BYTES`, the Kazoo device API's 64 KiB), with the body its refusal carries
on that surface. Two guards in `notifyhub/asgi.py` apply the table before any view runs: the web
server's request (daphne buffers a whole body before the application sees any of it, so the
limit must hold there) and the ASGI application (for any other ASGI server).
"""

import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from notifyhub import errors


@dataclass(frozen=True)
class TooLarge:
    """A request refused for the size of its body, as a refusal's renderer sees it."""

    path: str
    headers: Mapping[str, str]  # names in lower case
    request_id: str
    limit: int


# Renders the JSON body of a 413 on one surface.
RefusalBody = Callable[[TooLarge], dict[str, Any]]


@dataclass(frozen=True)
class BodyLimit:
    """The limit of the paths under `prefix`, read when asked (tests change settings)."""

    prefix: str
    max_bytes: Callable[[], int]
    refusal: RefusalBody


def platform_refusal(refused: TooLarge) -> dict[str, Any]:
    """The platform's error body: NOT000006."""
    return errors.PayloadTooLarge(
        f"Request bodies are limited to {refused.limit} bytes here."
    ).body()


_limits: list[BodyLimit] = []


def body_limit_register(
    *, prefix: str, max_bytes: Callable[[], int], refusal: RefusalBody = platform_refusal
) -> None:
    """Give the paths under `prefix` their own limit (the longest matching prefix wins)."""
    _limits[:] = [limit for limit in _limits if limit.prefix != prefix]
    _limits.append(BodyLimit(prefix=prefix, max_bytes=max_bytes, refusal=refusal))
    _limits.sort(key=lambda limit: len(limit.prefix), reverse=True)


def body_limit_for(path: str) -> tuple[int, RefusalBody]:
    """The largest body `path` may receive, and how its refusal reads."""
    for limit in _limits:
        if path.startswith(limit.prefix):
            return limit.max_bytes(), limit.refusal
    return settings.NOTIFYHUB_MAX_BODY_BYTES, platform_refusal


# What `notifyhub.middleware` echoes as X-Request-ID (a caller's id only if short and plain).
_ACCEPTABLE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}\Z")


def too_large_answer(path: str, headers: Mapping[str, str]) -> tuple[list[tuple[str, str]], bytes]:
    """The headers and body of the 413 for a body over `path`'s limit: the surface's JSON on an
    API path, a line of text elsewhere (the admin console)."""
    incoming = headers.get("x-request-id", "")
    request_id = incoming if _ACCEPTABLE_ID.match(incoming) else uuid.uuid4().hex
    limit, refusal = body_limit_for(path)
    answer_headers = [("X-Request-ID", request_id), ("Connection", "close")]
    if errors.is_api_path(path):
        refused = TooLarge(path=path, headers=headers, request_id=request_id, limit=limit)
        body = json.dumps(refusal(refused)).encode()
        answer_headers.append(("Content-Type", "application/json"))
    else:
        body = f"Request body too large: at most {limit} bytes.\n".encode()
        answer_headers.append(("Content-Type", "text/plain; charset=utf-8"))
    answer_headers.append(("Content-Length", str(len(body))))
    return answer_headers, body
