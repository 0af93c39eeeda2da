"""The event type of the admin's "send test push"."""

from django.db import migrations


def seed(apps, schema_editor):
    apps.get_model("events", "EventType").objects.get_or_create(
        id="device_test",
        defaults={"description": "A test push sent from the admin to every token of a device."},
    )


def unseed(apps, schema_editor):
    apps.get_model("events", "EventType").objects.filter(
        id="device_test", events__isnull=True
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("devices", "0001_initial"), ("events", "0002_seed_event_types")]

    operations = [migrations.RunPython(seed, unseed)]
