"""The hub's own operational event types (events/operational.py), so an operator can subscribe."""

from django.db import migrations

SEED = {
    "notifyhub.delivery.exhausted": (
        "A webhook delivery failed for good (its last attempt, or a final refusal)."
    ),
    "notifyhub.subscription.push_disabled": (
        "A subscription's webhook push was disabled (410 Gone)."
    ),
    "notifyhub.provider.failing": (
        "A device push provider (APNs, FCM) is failing: not configured, or answering errors "
        "(at most one event per provider per NOTIFYHUB_PROVIDER_ALERT_INTERVAL)."
    ),
}


def seed(apps, schema_editor):
    event_type = apps.get_model("events", "EventType")
    for type_id, description in SEED.items():
        event_type.objects.get_or_create(id=type_id, defaults={"description": description})


def unseed(apps, schema_editor):
    apps.get_model("events", "EventType").objects.filter(id__in=SEED, events__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("events", "0005_api_key_tenant")]

    operations = [migrations.RunPython(seed, unseed)]
