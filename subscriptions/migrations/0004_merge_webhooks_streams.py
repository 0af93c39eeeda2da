"""Webhook deliveries and stream sessions were built side by side; both follow 0002."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("subscriptions", "0003_stream_sessions"),
        ("subscriptions", "0003_webhook_deliveries"),
    ]

    operations = []
