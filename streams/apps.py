from django.apps import AppConfig


class StreamsConfig(AppConfig):
    """Push API streams: stream sessions, the bus and the hub each web process runs, the
    server-sent event surface and its tickets."""

    name = "streams"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_out
        from django.db.models.signals import post_delete, post_save
        from oauth2_provider.models import get_access_token_model

        from events.channels import channel_register
        from notifyhub.dashboard import counter_register
        from notifyhub.models import AccountMember
        from streams.channels import StreamChannel
        from streams.receivers import (
            account_membership_changed,
            deactivated_user_logout,
            revoked_token_logout,
            session_logout,
        )
        from streams.selectors import stream_sessions_connected_count

        channel_register(StreamChannel())
        # DOT revokes an access token by deleting its row; its streams end in every process.
        post_delete.connect(
            revoked_token_logout,
            sender=get_access_token_model(),
            dispatch_uid="streams.revoked_token_logout",
        )
        user_logged_out.connect(session_logout, dispatch_uid="streams.session_logout")
        post_save.connect(
            deactivated_user_logout,
            sender=get_user_model(),
            dispatch_uid="streams.deactivated_user_logout",
        )
        # Open streams match events in memory against their principal's accounts: reload them.
        for signal in (post_save, post_delete):
            signal.connect(
                account_membership_changed,
                sender=AccountMember,
                dispatch_uid=f"streams.account_membership_changed.{signal is post_save}",
            )
        counter_register(
            label="Live streams",
            compute=stream_sessions_connected_count,
            url="/admin/streams/streamsession/?connected=yes",
        )
