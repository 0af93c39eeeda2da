"""Platform reads: may this token act for that account, what does a credential reach?"""

from django.db.models import QuerySet
from django.utils import timezone
from oauth2_provider.models import get_access_token_model

from notifyhub.auth import TokenInfo
from notifyhub.models import Account, AccountMember, Application
from notifyhub.tenancy import Reach


def memberships_of(*, user_id: int | None, application_id: int | None) -> QuerySet[AccountMember]:
    """A principal's account memberships: a user's, or an application's acting as itself (a
    user token acts as its user; a client-credentials token as its application)."""
    if user_id is not None:
        return AccountMember.objects.filter(user_id=user_id)
    if application_id is None:  # a principal is one or the other; neither belongs anywhere
        return AccountMember.objects.none()
    return AccountMember.objects.filter(user__isnull=True, application_id=application_id)


def member_account_ids(*, user_id: int | None, application_id: int | None) -> frozenset[str]:
    """Every account the principal is a member of."""
    memberships = memberships_of(user_id=user_id, application_id=application_id)
    return frozenset(memberships.values_list("account_id", flat=True))


def account_may_act(*, token: TokenInfo, account_id: str) -> bool:
    """Whether the token's principal is a member of the account (or a hub operator).

    Being a tenant's administrator is not enough: only members register devices in an account.
    """
    if token.hub_operator:
        return True
    memberships = memberships_of(user_id=token.user_id, application_id=token.application_id)
    return memberships.filter(account_id=account_id).exists()


def clients_in_reach(*, reach: Reach) -> QuerySet[Application]:
    """The OAuth clients a credential may administer: its tenant's, or all for an operator."""
    # DOT's models are untyped, so their managers are Any to mypy.
    clients: QuerySet[Application] = Application.objects.all()
    if reach.everywhere:
        return clients
    return clients.filter(tenant_id=reach.tenant_id, tenant_id__isnull=False)


def account_in_reach(*, reach: Reach, account_id: str) -> bool:
    """Whether a producer may address the account: one of its tenant's (any, for an operator)."""
    if reach.everywhere:
        return True
    return Account.objects.filter(
        id=account_id, tenant_id=reach.tenant_id, tenant_id__isnull=False
    ).exists()


def principal_in_reach(*, reach: Reach, principal: str) -> bool:
    """Whether a producer may address a stream principal (an event's `user_id`): a user who is
    a member of one of its tenant's accounts, or one of its tenant's clients by client id."""
    if reach.everywhere:
        return True
    if reach.tenant_id is None:
        return False
    return (
        AccountMember.objects.filter(
            account__tenant_id=reach.tenant_id, user__username=principal
        ).exists()
        or Application.objects.filter(tenant_id=reach.tenant_id, client_id=principal).exists()
    )


def live_token_count() -> int:
    """Access tokens that have not expired (revoked ones are deleted)."""
    count: int = get_access_token_model().objects.filter(expires__gt=timezone.now()).count()
    return count
