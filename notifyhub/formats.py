"""Wire formats shared by every surface."""

from datetime import UTC, datetime


def iso_utc(value: datetime) -> str:
    """A timestamp as DRF's DateTimeField renders it under USE_TZ/UTC: ISO 8601 ending in `Z`."""
    text = value.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
