"""JSON request bodies as every surface reads them: one parser, refusing what cannot be stored.

Python's `json` turns `1e999` into infinity (which no database column takes: a server error at
the save) and recurses once per nesting level (about 935 levels exhaust the stack: a
`RecursionError`, another server error, and every recursive step after the parse, a validator or
a canonical encoding, is at risk long before that). Here both are the client's error: a number
beyond a double and nesting past MAX_JSON_DEPTH are refused as `JsonUnprocessable`.
"""

import json
import math
from collections.abc import Mapping
from typing import IO, Any

from rest_framework.parsers import JSONParser

from notifyhub import errors

# How deep a body's objects and arrays may nest (the body itself is level 1).
MAX_JSON_DEPTH = 100


class JsonUnprocessable(errors.ValidationFailed):
    """Well-formed JSON the hub cannot hold: a number beyond a double, nesting too deep."""


def json_body_loads(raw: bytes | str) -> Any:
    """Decode a request body: `errors.MalformedJson` for what is not JSON (NaN and Infinity
    included), `JsonUnprocessable` for what is JSON but cannot be stored."""
    try:
        data = json.loads(raw, parse_float=_finite_float, parse_constant=_no_constant)
    except RecursionError:
        raise _too_deep() from None
    except JsonUnprocessable:
        raise
    except ValueError as exc:  # UnicodeDecodeError included
        raise errors.MalformedJson(f"The request body is not valid JSON: {exc}") from None
    # Counting brackets is cheap; the walk runs only for bodies that might be too deep.
    if isinstance(raw, str):
        brackets = raw.count("{") + raw.count("[")
    else:
        brackets = raw.count(b"{") + raw.count(b"[")
    if brackets > MAX_JSON_DEPTH and json_depth(data) > MAX_JSON_DEPTH:
        raise _too_deep()
    return data


def json_depth(value: Any) -> int:
    """How deep a decoded JSON value nests (a scalar is 0), walked without recursion."""
    deepest = 0
    pending = [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        deepest = max(deepest, level)
        pending.extend((child, level + 1) for child in item)
    return deepest


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonUnprocessable(
            f"The number {text[:40]} is out of range: numbers must fit a double."
        )
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _too_deep() -> JsonUnprocessable:
    return JsonUnprocessable(
        f"The body nests objects and arrays deeper than {MAX_JSON_DEPTH} levels."
    )


class HubJSONParser(JSONParser):
    """DRF's JSON parser seam, reading bodies with `json_body_loads` (every DRF surface). A
    JSONParser subclass, so that DRF reads the body through `request.body`, which holds it to
    DATA_UPLOAD_MAX_MEMORY_SIZE."""

    def parse(
        self,
        stream: IO[bytes] | None,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        return json_body_loads(stream.read() if stream is not None else b"")
