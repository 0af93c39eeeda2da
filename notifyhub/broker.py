"""The Celery broker transport: kombu's Redis transport, with a channel that closes cleanly when
Redis vanished while the channel waited on BRPOP (settings.CELERY_BROKER_TRANSPORT).

Without it a worker dies when Redis goes away while it holds a task and still has a free pool
slot (a task running, its message unacknowledged under acks_late, BRPOP waiting for the next):
Celery's consumer first collects the broken connection, where the channel's close reads the
pending BRPOP, gets the connection error and stops before marking itself closed; the connection
then forgets its transport's settings, and the consumer's second close of the same channel tries
to give the unacknowledged message back through a client built from those settings, which raises
`AttributeError: 'NoneType' object has no attribute 'hostname'`, which nothing catches
("Unrecoverable error", the worker exits). Seen with kombu 5.7.0 and Celery 5.7.0;
tests/faults/test_worker_broker_loss.py reproduces it.
"""

from kombu.transport import redis


class Channel(redis.Channel):
    """Finishes closing when reading the pending BRPOP fails because the broker is gone."""

    def close(self) -> None:
        try:
            super().close()
        except self.connection_errors:
            if self.closed:
                raise
            # Reading the BRPOP ended the poll (kombu clears it in a `finally`), so a second
            # pass closes the rest now, while the connection still knows where Redis is. Giving
            # back the unacknowledged messages fails too while Redis is down; Redis's visibility
            # timeout (or, if Redis lost them, the beat's sweeps) brings them back instead.
            super().close()
            raise


class Transport(redis.Transport):
    """kombu's Redis transport with the channel above; everything else is kombu's."""

    Channel = Channel
