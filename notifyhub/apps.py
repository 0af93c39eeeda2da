import functools

from django.apps import AppConfig


class NotifyhubConfig(AppConfig):
    """The platform: OAuth applications, accounts, and the plumbing every surface shares."""

    name = "notifyhub"
    verbose_name = "Platform"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_delete, post_save
        from oauth2_provider.models import get_access_token_model, get_application_model

        import notifyhub.openapi  # noqa: F401 - registers the schema extensions
        from notifyhub.auth import (
            forget_changed_application,
            forget_changed_token,
            forget_changed_user,
        )
        from notifyhub.dashboard import counter_register
        from notifyhub.selectors import live_token_count

        # DOT revokes an access token by deleting its row, and the admin edits its scope and
        # expiry in place; these are the seams that make either count on the next request in
        # every process (the cache is shared). A client's tenant or operator grant, and a
        # user's deactivation, change what its tokens may do: they are read again too.
        for signal in (post_save, post_delete):
            signal.connect(
                forget_changed_token,
                sender=get_access_token_model(),
                dispatch_uid=f"notifyhub.forget_changed_token.{signal is post_save}",
            )
        post_save.connect(
            forget_changed_application,
            sender=get_application_model(),
            dispatch_uid="notifyhub.forget_changed_application",
        )
        post_save.connect(
            forget_changed_user,
            sender=get_user_model(),
            dispatch_uid="notifyhub.forget_changed_user",
        )
        counter_register(
            label="Live access tokens",
            compute=live_token_count,
            url="/admin/oauth2_provider/accesstoken/",
        )
        _register_liveness()


def _liveness_described(role: str) -> str:
    from notifyhub.heartbeats import liveness_read

    return liveness_read()[role].describe()


def _register_liveness() -> None:
    """Workers' and beat's heartbeats and the Celery queues: on the admin index and in metrics."""
    from notifyhub.celery import queue_lengths
    from notifyhub.dashboard import counter_register
    from notifyhub.heartbeats import ROLES, liveness_read
    from notifyhub.metrics import scrape_gauge_register

    for role in ROLES:
        counter_register(
            label=f"{role.capitalize()} heartbeat",
            compute=functools.partial(_liveness_described, role),
        )

    def heartbeat_ages() -> dict[tuple[str, ...], float]:
        return {
            (role,): liveness.age
            for role, liveness in liveness_read().items()
            if liveness.age is not None
        }

    def alive() -> dict[tuple[str, ...], float]:
        return {(role,): float(liveness.alive) for role, liveness in liveness_read().items()}

    scrape_gauge_register(
        name="notifyhub_heartbeat_age_seconds",
        documentation="Seconds since the newest heartbeat of any worker / beat process.",
        compute=heartbeat_ages,
        labels=("role",),
    )
    scrape_gauge_register(
        name="notifyhub_heartbeat_processes_alive",
        documentation="Worker / beat processes whose heartbeat is recent.",
        compute=alive,
        labels=("role",),
    )
    scrape_gauge_register(
        name="notifyhub_celery_queue_length",
        documentation="Messages waiting in a Celery queue (Redis LLEN at scrape time).",
        compute=queue_lengths,
        labels=("queue",),
    )
