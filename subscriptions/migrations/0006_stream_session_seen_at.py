"""Stream sessions record their holder's last heartbeat.

Existing rows get the migration's time: a session connected now has a full stale period for its
(new) process to start heartbeating before it would count as disconnected.
"""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('subscriptions', '0005_merge_identifier_letters'),
    ]

    operations = [
        migrations.AddField(
            model_name='streamsession',
            name='seen_at',
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
    ]
