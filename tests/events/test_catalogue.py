"""The event-type catalogue: seeded types and GET /notification/v1/event-types."""

import pytest

from events.models import EventType

pytestmark = pytest.mark.django_db

SEEDED = {
    "accountStatus",
    "loggedOut",
    "newMessage",
    "newNotification",
    "ticket",
    "chat",
    "incoming_call",
    "new_voicemail",
    "new_unowned_voicemail",
    "order.accepted",
}


def test_the_surfaces_types_are_seeded():
    assert set(EventType.objects.values_list("id", flat=True)) >= SEEDED


@pytest.mark.parametrize("persona", ["consumer", "administrator"])
def test_consumers_and_administrators_list_the_types(request, persona):
    response = request.getfixturevalue(persona).api().get("/notification/v1/event-types")
    assert response.status_code == 200
    ids = {item["id"] for item in response.json()}
    assert ids >= SEEDED
    assert set(response.json()[0]) == {"id", "description", "enabled", "schema"}


def test_a_producer_token_may_not_list_them(producer):
    assert producer.api().get("/notification/v1/event-types").status_code == 403


def test_an_invalid_schema_is_refused_by_the_model():
    from django.core.exceptions import ValidationError

    event_type = EventType(id="x", schema={"type": "nonsense"})
    with pytest.raises(ValidationError):
        event_type.full_clean()


def test_type_ids_allow_letters_of_any_script_digits_dots_and_dashes():
    from django.core.exceptions import ValidationError

    EventType(id="commande.acceptée-2_b").full_clean()
    with pytest.raises(ValidationError):
        EventType(id="has space").full_clean()
