"""Stream sessions, taken over from the `subscriptions` app (its 0008) without touching the
table: the model's state is created here, the table is the one `subscriptions` made.

The content type moves too, so the permissions operators were given on stream sessions (and the
admin's log entries) follow the model instead of being orphaned.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps


def content_type_to_streams(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    content_types = apps.get_model("contenttypes", "ContentType").objects
    if not content_types.filter(app_label="streams", model="streamsession").exists():
        content_types.filter(app_label="subscriptions", model="streamsession").update(
            app_label="streams"
        )


def content_type_to_subscriptions(
    apps: StateApps, schema_editor: BaseDatabaseSchemaEditor
) -> None:
    content_types = apps.get_model("contenttypes", "ContentType").objects
    if not content_types.filter(app_label="subscriptions", model="streamsession").exists():
        content_types.filter(app_label="streams", model="streamsession").update(
            app_label="subscriptions"
        )


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("subscriptions", "0008_stream_sessions_to_streams"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        migrations.swappable_dependency(settings.OAUTH2_PROVIDER_APPLICATION_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="StreamSession",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "principal_kind",
                            models.CharField(
                                choices=[("user", "user"), ("client", "client")], max_length=6
                            ),
                        ),
                        (
                            "principal",
                            models.CharField(
                                help_text="Username, or an application's id.", max_length=150
                            ),
                        ),
                        ("client_id", models.CharField(max_length=200)),
                        ("kinds_csv", models.CharField(max_length=200)),
                        ("account_ids_csv", models.TextField(blank=True, default="")),
                        ("ticket_number", models.CharField(blank=True, default="", max_length=128)),
                        ("connection_id", models.UUIDField(blank=True, null=True)),
                        ("connected_at", models.DateTimeField(blank=True, null=True)),
                        ("disconnected_at", models.DateTimeField(blank=True, null=True)),
                        ("seen_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("last_sent_event_id", models.CharField(blank=True, default="", max_length=26)),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                        (
                            "principal_application",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to=settings.OAUTH2_PROVIDER_APPLICATION_MODEL,
                            ),
                        ),
                        (
                            "principal_user",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "subscriptions_streamsession",
                        "indexes": [
                            models.Index(
                                fields=["disconnected_at"], name="stream_session_disconnected"
                            )
                        ],
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("principal_kind", "principal", "client_id"),
                                name="stream_session_unique_client",
                            )
                        ],
                    },
                ),
            ],
        ),
        migrations.RunPython(content_type_to_streams, content_type_to_subscriptions),
    ]
