from django.apps import AppConfig


class NotifyhubConfig(AppConfig):
    """The platform: OAuth applications, accounts, and the plumbing every surface shares."""

    name = "notifyhub"
    verbose_name = "Platform"

    def ready(self) -> None:
        from django.db.models.signals import post_delete
        from oauth2_provider.models import get_access_token_model

        import notifyhub.openapi  # noqa: F401 - registers the schema extensions
        from notifyhub.auth import forget_deleted_token
        from notifyhub.dashboard import counter_register
        from notifyhub.selectors import live_token_count

        # DOT revokes an access token by deleting its row; this is the seam that makes a
        # revocation count on the next request in every process (the cache is shared).
        post_delete.connect(
            forget_deleted_token,
            sender=get_access_token_model(),
            dispatch_uid="notifyhub.forget_deleted_token",
        )
        counter_register(
            label="Live access tokens",
            compute=live_token_count,
            url="/admin/oauth2_provider/accesstoken/",
        )
