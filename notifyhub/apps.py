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
