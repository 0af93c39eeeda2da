"""Wire formats shared by every surface."""

import re
from datetime import UTC, datetime
from typing import Any

# What no stored text can hold: NUL (PostgreSQL's text and jsonb refuse it) and unpaired
# surrogates (UTF-8 cannot encode them; JSON's "\ud800" escape decodes to one).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_MESSAGE = "text may not contain NUL characters or unpaired surrogates"


# RFC 3339 in UTC, whole seconds, `Z`: the one timestamp format of every surface, as the
# Notification API's contract shows it (`2018-01-23T04:56:22Z`). A client parsing with a fixed
# format reads every timestamp the hub writes; ids, not timestamps, order events.
DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def iso_utc(value: datetime) -> str:
    """A timestamp as every surface writes it: `2018-01-23T04:56:22Z` (fractions dropped)."""
    # isoformat, not strftime: glibc's %Y writes the year 38 as `38`, not `0038`.
    return value.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def iso_utc_sql(column: str) -> str:
    """`iso_utc` as a PostgreSQL expression over a timestamptz `column`, for statements that
    render JSON themselves (to_char drops the fraction, as strftime does)."""
    # Taken in UTC, so neither the session's time zone nor a zone's sub-minute historical
    # offset can move the second boundary.
    return f"""to_char((({column}) AT TIME ZONE 'UTC'), 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""


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
