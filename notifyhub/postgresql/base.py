"""Django's PostgreSQL backend, whose per-request health check asks the socket first.

With CONN_HEALTH_CHECKS, Django runs `SELECT 1` before the first query of every request on a
reused connection: a round trip per API request, and a tenth of an ingest's database time. A
connection the server has dropped (pg_terminate_backend, a restart, idle_session_timeout) has
the server's farewell and its end-of-file waiting on the socket, while an idle healthy one has
nothing to read. So the check looks for pending input on an idle connection without blocking,
and only then asks the server. A connection dropped silently (no FIN reaches us) is found by
the query that uses it, as it would be after a passing `SELECT 1`; the request then fails
cleanly and Django closes the connection.
"""

import select

from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        if self.connection is None:
            return False
        pgconn = self.connection.pgconn
        if pgconn.status != pq.ConnStatus.OK:
            return False
        if pgconn.transaction_status == pq.TransactionStatus.IDLE:
            poller = select.poll()  # Not select.select: a web process may hold fds over 1024.
            poller.register(pgconn.socket, select.POLLIN)
            if not poller.poll(0):
                return True
        return super().is_usable()
