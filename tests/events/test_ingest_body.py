"""The ingest body is checked by hand (parse_event_body) for speed; it must say exactly what the
documented serializer (EventIngestInput) would, field and message, for good and bad bodies."""

import pytest

from events.api.ingest import EventIngestInput, parse_event_body
from events.services import IngestRefused
from notifyhub import errors

BODIES = [
    {},
    {"other": 1},
    {"event": None},
    {"event": "order"},
    {"event": [1]},
    {"event": {}},
    {"event": {"type": "t"}},
    {"event": {"payload": {}}},
    {"event": {"type": None, "payload": {}}},
    {"event": {"type": True, "payload": {}}},
    {"event": {"type": ["t"], "payload": {}}},
    {"event": {"type": "", "payload": {}}},
    {"event": {"type": "   ", "payload": {}}},
    {"event": {"type": "x" * 129, "payload": {}}},
    {"event": {"type": 5, "payload": {}}},
    {"event": {"type": 1.5, "payload": {}}},
    {"event": {"type": "  padded  ", "payload": {}}},
    {"event": {"type": "t", "payload": None}},
    {"event": {"type": "t", "payload": "text"}},
    {"event": {"type": "t", "payload": [1]}},
    {"event": {"type": "t", "payload": 3}},
    {"event": {"type": "t", "payload": {}}},
    {"event": {"type": "t", "payload": {"a": [1, {"b": None}], "ü": "ß"}}},
    {"event": {"type": "t", "payload": {}, "id": None}},
    {"event": {"type": "t", "payload": {}, "id": ""}},
    {"event": {"type": "t", "payload": {}, "id": 7}},
    {"event": {"type": "t", "payload": {}, "id": "k" * 256}},
    {"event": {"type": "t", "payload": {}, "id": " key-1 "}},
    {"event": {"type": "t", "payload": {}, "extra": 1}},
    # Text no database can store: DRF's CharField refuses NUL and unpaired surrogates.
    {"event": {"type": "t\x00", "payload": {}}},
    {"event": {"type": "t\ud800x", "payload": {}}},
    {"event": {"type": "t", "payload": {}, "id": "k\x00"}},
    {"event": {"type": "t", "payload": {}, "id": "\udfff"}},
    # Several errors: the first in field order (id, type, payload) is the one named.
    {"event": {"id": "", "type": None}},
    {"event": {"id": None, "payload": 1}},
    {"event": {"type": "", "payload": "x"}},
    {"event": {"type": "t" * 200}},
]


@pytest.mark.parametrize("body", BODIES)
def test_the_hand_check_agrees_with_the_documented_serializer(body):
    serializer = EventIngestInput(data=body)
    if serializer.is_valid():
        parsed = parse_event_body(body)
        expected = serializer.validated_data["event"]
        assert (parsed.type, parsed.payload, parsed.id) == (
            expected["type"],
            expected["payload"],
            expected.get("id"),
        )
    else:
        field, message = errors.first_message(serializer.errors)
        with pytest.raises(IngestRefused) as refused:
            parse_event_body(body)
        assert refused.value.field == field
        assert refused.value.description == f"{field}: {message}"
