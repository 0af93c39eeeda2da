"""The PostgreSQL health check of notifyhub.postgresql: no round trip for a healthy connection,
a dropped one is found before a request uses it."""

import psycopg
import pytest
from django.conf import settings
from django.db import connection

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def other_connection() -> psycopg.Connection:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, autocommit=True)


def last_query_of(pid: int) -> str:
    with other_connection() as other:
        row = other.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid])
        return row.fetchone()[0]


def test_the_hub_uses_its_backend():
    assert settings.DATABASES["default"]["ENGINE"] == "notifyhub.postgresql"


def test_a_healthy_idle_connection_is_usable_without_asking_the_server():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 42 AS marker")
        pid = connection.connection.info.backend_pid
    assert connection.is_usable()
    assert last_query_of(pid) == "SELECT 42 AS marker"  # No SELECT 1 reached the server.


def test_a_connection_the_server_dropped_is_unusable_and_replaced_before_use():
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    with other_connection() as other:
        # Waits for the backend to exit (5 s at most), so its farewell has been sent.
        assert other.execute("SELECT pg_terminate_backend(%s, 5000)", [pid]).fetchone()[0]
    assert not connection.is_usable()
    # As at the start of a request: the health check closes it, the next query reconnects.
    connection.health_check_done = False
    connection.close_if_health_check_failed()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
    assert connection.connection.info.backend_pid != pid
