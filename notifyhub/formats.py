"""Wire formats shared by every surface."""

from datetime import UTC, datetime


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
