"""Who may act for an account: a user token as its user, a client token as its application."""

import pytest

from notifyhub.auth import token_validate
from notifyhub.models import AccountMember
from notifyhub.selectors import account_may_act, member_account_ids

pytestmark = pytest.mark.django_db


def test_a_member_user_may_act_for_the_account(member):
    assert account_may_act(token=token_validate(member.token), account_id="acme")


def test_an_outsider_may_not(member, outsider):
    assert not account_may_act(token=token_validate(outsider.token), account_id="acme")


def test_a_client_credentials_token_acts_as_its_application(member, consumer):
    token = token_validate(consumer.token)
    assert not account_may_act(token=token, account_id="acme")
    AccountMember.objects.create(account_id="acme", application=consumer.application)
    assert account_may_act(token=token, account_id="acme")
    assert member_account_ids(user_id=None, application_id=token.application_id) == {"acme"}
