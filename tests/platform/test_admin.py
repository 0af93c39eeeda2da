"""The operator console: titled notifyhub, OAuth applications with their allowed scopes."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client, django_user_model):
    user = django_user_model.objects.create_superuser("op", "op@example.com", "pw")
    client.force_login(user)
    return client


def test_admin_index_is_titled_notifyhub_and_shows_the_hub_state(operator):
    response = operator.get("/admin/")
    assert response.status_code == 200
    content = response.content.decode()
    assert "<title>Operator console | notifyhub</title>" in content
    assert (
        'id="hub-state"' in content
        or "Hub state" in content
        or "Site administration" not in content
    )


@pytest.mark.parametrize(
    "path",
    [
        "/admin/notifyhub/application/",
        "/admin/notifyhub/application/add/",
        "/admin/notifyhub/account/",
        "/admin/oauth2_provider/accesstoken/",
        "/admin/auth/user/",
    ],
)
def test_admin_pages_render(operator, administrator, member, path):
    assert operator.get(path).status_code == 200


def test_application_list_shows_allowed_scopes(operator, administrator):
    content = operator.get("/admin/notifyhub/application/").content.decode()
    assert "notification:consent:administrator" in content


def test_revoke_action_revokes_tokens(operator, administrator):
    from oauth2_provider.models import AccessToken

    token = AccessToken.objects.get(application=administrator.application)
    response = operator.post(
        "/admin/oauth2_provider/accesstoken/",
        {"action": "revoke", "_selected_action": [token.pk]},
    )
    assert response.status_code == 302
    assert not AccessToken.objects.filter(pk=token.pk).exists()
