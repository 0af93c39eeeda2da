"""Stream sessions moved to the `streams` app: the model leaves this app's state only.

The table keeps its name (`subscriptions_streamsession`, set on the model's Meta) and its rows;
`streams` 0001 takes the model over.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("subscriptions", "0007_stream_replay_from_event_log"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="StreamSession")],
        ),
    ]
