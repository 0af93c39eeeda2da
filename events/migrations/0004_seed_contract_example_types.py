"""The event types the contracts' own examples send, so a fresh hub accepts them as written."""

from django.db import migrations

# /work/shared/contracts/events-ingestion.md posts `order.accepted`; the other contracts' example
# types (Push API kinds, Device API preferences) are seeded by 0002.
SEED = {
    "order.accepted": "An order was accepted (the Events API contract's example).",
}


def seed(apps, schema_editor):
    event_type = apps.get_model("events", "EventType")
    for type_id, description in SEED.items():
        event_type.objects.get_or_create(id=type_id, defaults={"description": description})


def unseed(apps, schema_editor):
    apps.get_model("events", "EventType").objects.filter(id__in=SEED, events__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("events", "0003_identifier_letters_only")]

    operations = [migrations.RunPython(seed, unseed)]
