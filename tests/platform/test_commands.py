"""Management commands: createclient, addaccountmember, demosetup."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from notifyhub.models import AccountMember, Application
from notifyhub.services import demo_setup

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_createclient_prints_its_credentials_as_json():
    output = json.loads(
        run("createclient", "--name", "billing", "--scopes", "events:publish devices:manage")
    )
    assert set(output) == {"client_id", "client_secret", "scopes", "tenant", "hub_operator"}
    assert output["scopes"] == ["events:publish", "devices:manage"]
    application = Application.objects.get(client_id=output["client_id"])
    assert application.authorization_grant_type == Application.GRANT_CLIENT_CREDENTIALS
    assert application.allowed_scopes == "events:publish devices:manage"


def test_createclient_refuses_an_unknown_scope():
    with pytest.raises(CommandError, match="unknown scopes: everything"):
        run("createclient", "--name", "x", "--scopes", "everything")
    assert not Application.objects.exists()


def test_createclient_for_authorization_code_needs_a_redirect_uri(django_user_model):
    django_user_model.objects.create_user(username="ann")
    with pytest.raises(CommandError, match="redirect"):
        run(
            "createclient",
            "--name",
            "app",
            "--scopes",
            "devices:manage",
            "--grant",
            "authorization-code",
            "--user",
            "ann",
        )
    output = json.loads(
        run(
            "createclient",
            "--name",
            "app",
            "--scopes",
            "devices:manage",
            "--grant",
            "authorization-code",
            "--user",
            "ann",
            "--redirect-uri",
            "https://app.example.com/cb",
        )
    )
    application = Application.objects.get(client_id=output["client_id"])
    assert application.authorization_grant_type == Application.GRANT_AUTHORIZATION_CODE
    assert application.user.username == "ann"


def test_addaccountmember_creates_the_account_and_is_idempotent(django_user_model):
    django_user_model.objects.create_user(username="maria")
    run("addaccountmember", "--account", "acme", "--user", "maria")
    run("addaccountmember", "--account", "acme", "--user", "maria")
    assert AccountMember.objects.filter(account_id="acme", user__username="maria").count() == 1


def test_addaccountmember_adds_a_client():
    client = json.loads(run("createclient", "--name", "svc", "--scopes", "devices:manage"))
    run("addaccountmember", "--account", "acme", "--client", client["client_id"])
    assert AccountMember.objects.filter(
        account_id="acme", application__client_id=client["client_id"]
    ).exists()


def test_addaccountmember_refuses_an_unknown_user():
    with pytest.raises(CommandError, match="no user named"):
        run("addaccountmember", "--account", "acme", "--user", "ghost")


def test_demo_setup_runs_once_and_then_repeats_the_same_credentials(tmp_path):
    path = tmp_path / "demo.json"
    first = demo_setup(credentials_path=path)
    second = demo_setup(credentials_path=path)
    assert first == second
    assert Application.objects.count() == 4
    assert path.stat().st_mode & 0o077 == 0
