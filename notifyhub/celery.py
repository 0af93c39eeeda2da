"""The Celery app. Workers keep their database connection across tasks (checked, not reopened);
beat runs once per deployment (a Redis lock, notifyhub/beat_lock.py)."""

import os

from celery import Celery
from celery.signals import beat_init, task_postrun, task_prerun

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
