"""Stream sessions moved from `subscriptions` to `streams` without touching their table: an
upgraded database keeps its sessions, and the content type (with the permissions granted on it)
follows the model."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

# Unapplying subscriptions 0008 unapplies streams 0001, which depends on it.
BEFORE = [("subscriptions", "0007_stream_replay_from_event_log")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_an_upgraded_database_keeps_its_sessions_and_their_permissions():
    apps = migrate(BEFORE)
    old = apps.get_model("subscriptions", "StreamSession")
    old.objects.create(principal_kind="user", principal="maria", client_id="web", kinds_csv=",a,")
    # As the database had it before the move: the content type and a permission on it, given.
    ContentType.objects.filter(app_label="streams", model="streamsession").delete()
    old_type, _ = ContentType.objects.get_or_create(
        app_label="subscriptions", model="streamsession"
    )
    view, _ = Permission.objects.get_or_create(
        content_type=old_type, codename="view_streamsession", defaults={"name": "Can view"}
    )
    operators = Group.objects.create(name="operators")
    operators.permissions.add(view)

    apps = migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    moved = apps.get_model("streams", "StreamSession")
    assert list(moved.objects.values_list("principal", "client_id")) == [("maria", "web")]
    assert ContentType.objects.get(pk=old_type.pk).app_label == "streams"
    assert operators.permissions.get().content_type.app_label == "streams"
    ContentType.objects.clear_cache()
