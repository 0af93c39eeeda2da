"""The identifier validator change and the webhook/stream merge were made side by side."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("subscriptions", "0004_identifier_letters_only"),
        ("subscriptions", "0004_merge_webhooks_streams"),
    ]

    operations = []
