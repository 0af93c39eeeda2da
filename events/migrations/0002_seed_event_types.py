"""The event types the surfaces name (Push API kinds and Device API preferences)."""

from django.db import migrations

SEED = {
    "accountStatus": "An account's status changed (Push API).",
    "loggedOut": "A principal was logged out (Push API).",
    "newMessage": "A new message (Push API).",
    "newNotification": "A new notification (Push API).",
    "ticket": "A ticket changed (Push API; filter by ticket_number).",
    "chat": "A chat message (Device API preference).",
    "incoming_call": "An incoming call (Device API preference; high priority).",
    "new_voicemail": "A new voicemail (Device API preference).",
    "new_unowned_voicemail": "A new voicemail on a shared box (Device API preference).",
}


def seed(apps, schema_editor):
    event_type = apps.get_model("events", "EventType")
    for type_id, description in SEED.items():
        event_type.objects.get_or_create(id=type_id, defaults={"description": description})


def unseed(apps, schema_editor):
    apps.get_model("events", "EventType").objects.filter(id__in=SEED, events__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("events", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
