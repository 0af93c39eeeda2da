"""Platform reads: may this token act for that account?"""

from django.db.models import Q
from django.utils import timezone
from oauth2_provider.models import get_access_token_model

from notifyhub.auth import TokenInfo
from notifyhub.models import AccountMember


def account_may_act(*, token: TokenInfo, account_id: str) -> bool:
    """Whether the token's principal is a member of the account.

    A user token acts as its user; a client-credentials token acts as its application.
    """
    principal = (
        Q(user_id=token.user_id)
        if token.user_id is not None
        else Q(application_id=token.application_id)
    )
    return AccountMember.objects.filter(principal, account_id=account_id).exists()


def account_ids_for(*, token: TokenInfo) -> set[str]:
    """Every account the token's principal is a member of."""
    principal = (
        Q(user_id=token.user_id)
        if token.user_id is not None
        else Q(application_id=token.application_id)
    )
    return set(AccountMember.objects.filter(principal).values_list("account_id", flat=True))


def live_token_count() -> int:
    """Access tokens that have not expired (revoked ones are deleted)."""
    return get_access_token_model().objects.filter(expires__gt=timezone.now()).count()
