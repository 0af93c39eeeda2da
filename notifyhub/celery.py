"""The Celery app. Workers keep their database connection across tasks (checked, not reopened);
beat runs once per deployment (a Redis lock, notifyhub/beat_lock.py); workers and beat write
heartbeats; each task's log lines carry its task id."""

import os
import socket
from typing import Any

from celery import Celery
from celery.signals import (
    beat_init,
    task_postrun,
    task_prerun,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifyhub.settings")

app = Celery("notifyhub")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Celery's Django fixup closes every database connection before and after each task unless this
# is set; reopening a PostgreSQL connection per task costs more than most of our tasks. With it
# set, our own handlers below keep the connection and drop it only when it is broken.
app.conf.CELERY_DB_REUSE_MAX = 1_000_000
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _drop_broken_db_connections(**kwargs: object) -> None:
    """Django's per-request hygiene, per task: close a connection that is unusable or too old."""
    from django.db import close_old_connections

    close_old_connections()


@beat_init.connect
def _hold_beat_lock(**kwargs: object) -> None:
    """A second beat would enqueue every sweep twice: it exits here instead. The SystemExit it
    raises passes Celery's signal dispatch (which catches only Exception) and ends beat."""
    from notifyhub.beat_lock import beat_lock_hold

    beat_lock_hold()


@task_prerun.connect
def _log_as_task(task_id: str | None = None, **kwargs: object) -> None:
    """A task's log lines name its task id where a request's name its request id."""
    from notifyhub.logs import request_id

    request_id.set(task_id or "-")


@task_postrun.connect
def _log_as_nothing(**kwargs: object) -> None:
    from notifyhub.logs import request_id

    request_id.set("-")


_heartbeats: dict[str, Any] = {}


def _heartbeat_start(role: str, name: str) -> None:
    from notifyhub.heartbeats import HeartbeatThread

    thread = HeartbeatThread(role=role, name=name)
    _heartbeats[role] = thread
    thread.start()


@worker_ready.connect
def _worker_heartbeat_start(sender: Any = None, **kwargs: object) -> None:
    """The worker's main process beats while its consumer runs (the pool's children do not)."""
    _heartbeat_start("worker", str(getattr(sender, "hostname", None) or socket.gethostname()))


@worker_shutdown.connect
def _worker_heartbeat_stop(**kwargs: object) -> None:
    thread = _heartbeats.pop("worker", None)
    if thread is not None:
        thread.stop()


@beat_init.connect
def _beat_heartbeat_start(**kwargs: object) -> None:
    """Beat beats too: a dead beat stops every sweep, and nothing else would notice."""
    _heartbeat_start("beat", f"{socket.gethostname()}:{os.getpid()}")


@worker_process_shutdown.connect
def _metrics_process_dead(**kwargs: object) -> None:
    """A pool process that exits takes its live gauges with it."""
    from notifyhub.metrics import process_dead

    process_dead(os.getpid())


def queue_lengths() -> dict[tuple[str, ...], float]:
    """Messages waiting in each of this deployment's Celery queues (Redis LLEN at scrape)."""
    from notifyhub.redis import redis_client

    prefix = app.conf.broker_transport_options.get("global_keyprefix", "")
    queues = sorted({app.conf.task_default_queue, "notifyhub"})
    pipe = redis_client().pipeline(transaction=False)
    for queue in queues:
        pipe.llen(f"{prefix}{queue}")
    return {(queue,): float(length) for queue, length in zip(queues, pipe.execute(), strict=True)}
