"""Platform rules that write: OAuth clients and account membership."""

import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from oauth2_provider.generators import generate_client_secret

from notifyhub import errors
from notifyhub.models import Account, AccountMember, Application, Tenant, identifier_validator

GRANTS = {
    "client-credentials": Application.GRANT_CLIENT_CREDENTIALS,
    "authorization-code": Application.GRANT_AUTHORIZATION_CODE,
}


@dataclass(frozen=True)
class ClientCredentials:
    """A new OAuth client and its secret, which is shown this once and stored only hashed."""

    application: Application
    client_secret: str


def client_create(
    *,
    name: str,
    scopes: list[str],
    grant: str = "client-credentials",
    username: str | None = None,
    redirect_uris: str = "",
    tenant_id: str | None = None,
    hub_operator: bool = False,
) -> ClientCredentials:
    """Create an OAuth application allowed exactly `scopes`, in tenant `tenant_id` (created if
    new) or as a hub operator acting for every tenant; its secret is returned once."""
    known = cast(dict[str, str], settings.OAUTH2_PROVIDER["SCOPES"])
    unknown = [scope for scope in scopes if scope not in known]
    if unknown:
        raise errors.ValidationFailed(f"unknown scopes: {' '.join(unknown)}", field="scopes")
    if not scopes:
        raise errors.ValidationFailed("at least one scope is required", field="scopes")
    if grant not in GRANTS:
        raise errors.ValidationFailed(f"grant must be one of {', '.join(GRANTS)}", field="grant")
    user = None
    if username:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise errors.ValidationFailed(f"no user named {username!r}", field="user")
    if GRANTS[grant] == Application.GRANT_AUTHORIZATION_CODE and not redirect_uris:
        raise errors.ValidationFailed(
            "the authorization-code grant needs a redirect URI", field="redirect_uri"
        )
    secret = generate_client_secret()
    application = Application.objects.create(
        name=name,
        user=user,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=GRANTS[grant],
        client_secret=secret,
        redirect_uris=redirect_uris,
        allowed_scopes=" ".join(scopes),
        algorithm="",
        tenant=tenant_ensure(tenant_id=tenant_id) if tenant_id else None,
        hub_operator=hub_operator,
    )
    return ClientCredentials(application=application, client_secret=secret)


def tenant_ensure(*, tenant_id: str) -> Tenant:
    """The tenant `tenant_id`, created if new."""
    try:
        identifier_validator(tenant_id)
    except ValidationError as exc:
        raise errors.ValidationFailed(f"tenant: {exc.messages[0]}", field="tenant") from exc
    tenant, _ = Tenant.objects.get_or_create(id=tenant_id)
    return tenant


@transaction.atomic
def account_member_add(
    *,
    account_id: str,
    username: str | None = None,
    client_id: str | None = None,
    tenant_id: str | None = None,
) -> AccountMember:
    """Make a user or an OAuth application a member of an account, creating the account (in
    tenant `tenant_id`) if new."""
    if (username is None) == (client_id is None):
        raise errors.ValidationFailed("name exactly one of a user or a client")
    tenant = tenant_ensure(tenant_id=tenant_id) if tenant_id else None
    account, _ = Account.objects.get_or_create(id=account_id, defaults={"tenant": tenant})
    if tenant is not None and account.tenant_id != tenant.id:
        raise errors.ValidationFailed(
            f"account {account_id!r} belongs to another tenant", field="tenant"
        )
    if username is not None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise errors.ValidationFailed(f"no user named {username!r}", field="user")
        member, _ = AccountMember.objects.get_or_create(account=account, user=user)
        return member
    application = Application.objects.filter(client_id=client_id).first()
    if application is None:
        raise errors.ValidationFailed(f"no client with id {client_id!r}", field="client")
    member, _ = AccountMember.objects.get_or_create(account=account, application=application)
    return member


DEMO_TENANT = "demo"
DEMO_ACCOUNT = "demo"
DEMO_CLIENTS = {
    "demo-administrator": [settings.SCOPE_ADMINISTRATOR, settings.SCOPE_CONSUMER],
    "demo-consumer": [settings.SCOPE_CONSUMER],
    "demo-producer": [settings.SCOPE_PUBLISH],
    "demo-devices": [settings.SCOPE_DEVICES],
}


def demo_setup(*, credentials_path: Path) -> dict[str, Any]:
    """Create, once, an admin user and one demo client per role; return their credentials.

    Secrets are stored only hashed, so the first run writes them to `credentials_path` (a
    git-ignored, owner-only file) and later runs read them back instead of creating more.
    """
    if credentials_path.exists():
        known: dict[str, Any] = json.loads(credentials_path.read_text())
        client_ids = [client["client_id"] for client in known["clients"].values()]
        # The file may describe another database (DATABASE_URL changed): trust it only if
        # every client it names exists here.
        if Application.objects.filter(client_id__in=client_ids).count() == len(client_ids):
            return known
    user_model = get_user_model()
    password = secrets.token_urlsafe(12)
    admin = user_model.objects.filter(username="admin").first()
    if admin is None:
        user_model.objects.create_superuser("admin", "admin@localhost", password)
    else:
        admin.set_password(password)
        admin.save(update_fields=["password"])
    clients = {}
    for name, scopes in DEMO_CLIENTS.items():
        Application.objects.filter(name=name).delete()
        created = client_create(name=name, scopes=scopes, tenant_id=DEMO_TENANT)
        clients[name] = {
            "client_id": created.application.client_id,
            "client_secret": created.client_secret,
            "scopes": scopes,
        }
    # The demo devices client registers phones in the demo tenant's account `demo`.
    account_member_add(
        account_id=DEMO_ACCOUNT,
        client_id=clients["demo-devices"]["client_id"],
        tenant_id=DEMO_TENANT,
    )
    credentials = {
        "admin": {"username": "admin", "password": password},
        "tenant": DEMO_TENANT,
        "account": DEMO_ACCOUNT,
        "clients": clients,
    }
    credentials_path.parent.mkdir(parents=True, exist_ok=True)
    credentials_path.touch(mode=0o600)
    credentials_path.write_text(json.dumps(credentials, indent=2))
    return credentials
