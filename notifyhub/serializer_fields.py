"""DRF fields every surface shares."""

from datetime import datetime

from rest_framework import serializers

from notifyhub.formats import iso_utc


class UtcDateTimeField(serializers.DateTimeField):
    """A timestamp written as every surface writes it (`notifyhub.formats.iso_utc`), for any
    year: DRF's strftime-based output writes the year 38 as `38`, which no RFC 3339 parser
    reads, and a client may send such a time (a recovery `since`) to have it echoed."""

    def to_representation(self, value: datetime | None) -> str | None:  # type: ignore[override]  # DRF's stub types value as Any
        if value is None:
            return None
        return iso_utc(value)
