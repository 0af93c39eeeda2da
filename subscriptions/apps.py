from django.apps import AppConfig


class SubscriptionsConfig(AppConfig):
    """Subscriptions, their notification queues, webhook deliveries and stream sessions."""

    name = "subscriptions"

    def ready(self) -> None:
        from events.channels import channel_register
        from notifyhub.dashboard import counter_register
        from subscriptions.channels import PullChannel, WebhookChannel
        from subscriptions.selectors import deliveries_failed_count, notifications_pending_count

        channel_register(PullChannel())
        channel_register(WebhookChannel())
        self._ready_streams()
        counter_register(
            label="Queued notifications",
            compute=notifications_pending_count,
            url="/admin/subscriptions/notification/?expired=no",
        )
        counter_register(
            label="Failed deliveries",
            compute=deliveries_failed_count,
            url="/admin/subscriptions/delivery/?status__in=failed,unknown",
        )

    def _ready_streams(self) -> None:
        """The Push API: its delivery channel, its logout hooks and its admin counter."""
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_out
        from django.db.models.signals import post_delete, post_save
        from oauth2_provider.models import get_access_token_model

        from events.channels import channel_register
        from notifyhub.dashboard import counter_register
        from notifyhub.models import AccountMember
        from subscriptions.streams import (
            StreamChannel,
            account_membership_changed,
            deactivated_user_logout,
            revoked_token_logout,
            session_logout,
            stream_sessions_connected_count,
        )

        channel_register(StreamChannel())
        # DOT revokes an access token by deleting its row; its streams end in every process.
        post_delete.connect(
            revoked_token_logout,
            sender=get_access_token_model(),
            dispatch_uid="subscriptions.revoked_token_logout",
        )
        user_logged_out.connect(session_logout, dispatch_uid="subscriptions.session_logout")
        post_save.connect(
            deactivated_user_logout,
            sender=get_user_model(),
            dispatch_uid="subscriptions.deactivated_user_logout",
        )
        # Open streams match events in memory against their principal's accounts: reload them.
        for signal in (post_save, post_delete):
            signal.connect(
                account_membership_changed,
                sender=AccountMember,
                dispatch_uid=f"subscriptions.account_membership_changed.{signal is post_save}",
            )
        counter_register(
            label="Live streams",
            compute=stream_sessions_connected_count,
            url="/admin/subscriptions/streamsession/?connected=yes",
        )
