"""Wire formats shared by every surface."""

import re
from datetime import UTC, datetime
from typing import Any

# What no stored text can hold: NUL (PostgreSQL's text and jsonb refuse it) and unpaired
# surrogates (UTF-8 cannot encode them; JSON's "\ud800" escape decodes to one).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_MESSAGE = "text may not contain NUL characters or unpaired surrogates"


def iso_utc(value: datetime) -> str:
    """A timestamp as DRF's DateTimeField renders it under USE_TZ/UTC: ISO 8601 ending in `Z`."""
    text = value.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def iso_utc_sql(column: str) -> str:
    """`iso_utc` as a PostgreSQL expression over a timestamptz `column`, for statements that
    render JSON themselves: the six digits of microseconds appear only when they are not all
    zero, as `datetime.isoformat` writes them."""
    # Taken in UTC before truncating, so neither the session's time zone nor a zone's
    # sub-minute historical offset can move the second boundary.
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (
        f"to_char({utc}, CASE WHEN date_trunc('second', {utc}) = {utc}"
        """ THEN 'YYYY-MM-DD"T"HH24:MI:SS"Z"' ELSE 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"' END)"""
    )


def unstorable_char(text: str) -> str | None:
    """The first character of `text` that no database can store, as `U+XXXX`; else None."""
    match = _UNSTORABLE.search(text)
    return None if match is None else f"U+{ord(match.group()):04X}"


def unstorable_path(value: Any, path: str) -> str | None:
    """Where in a decoded JSON value (`path` naming the value itself, members joined with `.`)
    the first key or string holds a character no database can store; None if nowhere."""
    if isinstance(value, str):
        return path if _UNSTORABLE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if _UNSTORABLE.search(key):
                return path
            found = unstorable_path(item, f"{path}.{key}")
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = unstorable_path(item, f"{path}.{index}")
            if found is not None:
                return found
    return None
