"""Signal receivers: a credential or a membership changes, and the streams it concerns follow.

Connected in StreamsConfig.ready(); each publishes on the bus after commit, so every web process
acts on it, not only the one that saved the change.
"""

from typing import Any

from django.db import transaction

from notifyhub.models import AccountMember
from streams.messages import bus_publish, logout_message, members_message
from streams.tickets import stream_tickets_revoke


def revoked_token_logout(sender: type, instance: Any, **kwargs: Any) -> None:
    """post_delete receiver for AccessToken: DOT revokes by deleting, so its tickets and streams
    end."""
    token_id = instance.pk

    def end() -> None:
        stream_tickets_revoke(token_id=token_id)
        bus_publish(logout_message(token_id=token_id))

    transaction.on_commit(end, robust=True)


def deactivated_user_logout(sender: type, instance: Any, **kwargs: Any) -> None:
    """post_save receiver for the user model: a deactivated user's streams end at once, in
    every process, whether opened with a token, a ticket or a browser session (the token
    cache forgets the user's tokens in notifyhub.auth). Published on every save of an inactive
    user: one bus message, and a repeat ends nothing that is not already ended."""
    if instance.is_active:
        return
    user_id = instance.pk
    transaction.on_commit(lambda: bus_publish(logout_message(user_id=user_id)), robust=True)


def account_membership_changed(sender: type, instance: AccountMember, **kwargs: Any) -> None:
    """post_save/post_delete receiver for AccountMember: the processes holding the principal's
    streams reload its accounts, so a member removed from an account stops receiving its
    events at once, and one added starts."""
    message = members_message(user_id=instance.user_id, application_id=instance.application_id)
    transaction.on_commit(lambda: bus_publish(message), robust=True)


def session_logout(sender: type, request: Any, user: Any, **kwargs: Any) -> None:
    """user_logged_out receiver: the browser session's tickets and streams end with it."""
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if session_key:
        stream_tickets_revoke(session_key=session_key)
        bus_publish(logout_message(session_key=session_key))
