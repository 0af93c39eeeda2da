"""Personas and shared fixtures.

Alice's integration is the administrator client; the consumer client reads its own data; Charlie
is a second consumer who must see nothing of the first; the producer posts events; Maria is a
member of account `acme`; Oscar is an outsider.
"""

import importlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from oauth2_provider.models import AccessToken, set_token_value
from oauthlib.common import generate_token
from rest_framework.test import APIClient

from events.models import EventType
from events.selectors import event_type_cache_clear
from notifyhub.celery import app as celery_app
from notifyhub.models import Account, AccountMember, Application
from notifyhub.services import client_create
from tests import servers

ADMIN = settings.SCOPE_ADMINISTRATOR
CONSUMER = settings.SCOPE_CONSUMER
PUBLISH = settings.SCOPE_PUBLISH
DEVICES = settings.SCOPE_DEVICES
# Every persona belongs to Acme unless a test says otherwise; Globex is the other company.
TENANT = "acme-co"
OTHER_TENANT = "globex"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        skip = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://...")
        for item in items:
            if "postgres" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def _fresh_event_type_cache() -> None:
    """Each test sees the catalogue as it is now, not as a previous test left it."""
    event_type_cache_clear()


def _uses_transactions(request: pytest.FixtureRequest) -> bool:
    marker = request.node.get_closest_marker("django_db")
    return "transactional_db" in request.fixturenames or bool(
        marker and marker.kwargs.get("transaction")
    )


@pytest.fixture(autouse=True)
def _seeded_event_types(request: pytest.FixtureRequest) -> None:
    """Transactional tests flush the database after each test, data migrations included:
    put the seeded event types back so every test starts from the migrated state."""
    if not _uses_transactions(request):
        return
    request.getfixturevalue("transactional_db")
    seed = {
        **importlib.import_module("events.migrations.0002_seed_event_types").SEED,
        **importlib.import_module("events.migrations.0004_seed_contract_example_types").SEED,
        **importlib.import_module("events.migrations.0006_seed_operational_types").SEED,
    }
    for type_id, description in seed.items():
        EventType.objects.get_or_create(id=type_id, defaults={"description": description})


@dataclass
class Persona:
    """An OAuth client (and maybe its user) with a live access token."""

    application: Application
    secret: str
    token: str
    user: object | None = None

    @property
    def client_id(self) -> str:
        return self.application.client_id

    def api(self) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.token}")
        return client


def issue_token(
    application: Application, *, scopes: list[str], user: object = None, expires_in: int = 3600
) -> str:
    """A real DOT access token row, as /o/token/ would create it."""
    raw = generate_token()
    token = AccessToken(
        application=application,
        user=user,
        scope=" ".join(scopes),
        expires=timezone.now() + timedelta(seconds=expires_in),
    )
    set_token_value(token, raw)
    token.save()
    return raw


@pytest.fixture
def make_persona(db):
    def make(
        name: str,
        scopes: list[str],
        *,
        username: str | None = None,
        tenant: str | None = TENANT,
        hub_operator: bool = False,
    ) -> Persona:
        user = None
        if username:
            user = get_user_model().objects.create_user(username=username, password="pw-" + name)
        created = client_create(
            name=name, scopes=scopes, tenant_id=tenant, hub_operator=hub_operator
        )
        if user is not None:
            created.application.user = user
            created.application.save(update_fields=["user"])
        token = issue_token(created.application, scopes=scopes, user=user)
        return Persona(created.application, created.client_secret, token, user)

    return make


@pytest.fixture
def administrator(make_persona) -> Persona:
    return make_persona("alice-admin", [ADMIN, CONSUMER])


@pytest.fixture
def consumer(make_persona) -> Persona:
    return make_persona("consumer", [CONSUMER])


@pytest.fixture
def charlie(make_persona) -> Persona:
    return make_persona("charlie", [CONSUMER])


@pytest.fixture
def producer(make_persona) -> Persona:
    return make_persona("producer", [PUBLISH])


@pytest.fixture
def member(make_persona) -> Persona:
    """Maria: a user of account `acme`, with a token acting for her."""
    persona = make_persona("maria-app", [CONSUMER, DEVICES], username="maria")
    account = Account.objects.create(id="acme", name="Acme", tenant_id=TENANT)
    AccountMember.objects.create(account=account, user=persona.user)
    return persona


@pytest.fixture
def outsider(make_persona) -> Persona:
    """Oscar: a user with the same scopes as Maria but no account."""
    return make_persona("oscar-app", [CONSUMER, DEVICES], username="oscar")


@pytest.fixture
def bob(make_persona) -> Persona:
    """Bob: administrator of another tenant (Globex), who must reach nothing of Acme's."""
    return make_persona("bob-admin", [ADMIN, CONSUMER, DEVICES], tenant=OTHER_TENANT)


@pytest.fixture
def globex_producer(make_persona) -> Persona:
    """A producer of Globex, who may address none of Acme's accounts or users."""
    return make_persona("globex-producer", [PUBLISH], tenant=OTHER_TENANT)


@pytest.fixture
def hub_operator(make_persona) -> Persona:
    """The hub operator's own client: acts for every tenant, by an explicit grant."""
    return make_persona("hub-operator", [ADMIN, CONSUMER, DEVICES, PUBLISH], hub_operator=True)


@pytest.fixture
def anonymous() -> APIClient:
    return APIClient()


# --- Real processes ---


@pytest.fixture(scope="session", autouse=True)
def celery_queue(worker_id: str) -> str:
    """A queue of this test process's own, so parallel test processes never take each other's
    tasks. Autouse and session-wide: Celery fixes its routing at the first enqueue, so the
    queue must be named before any test enqueues anything."""
    queue = f"notifyhub-test-{os.getpid()}-{worker_id}"
    celery_app.conf.task_default_queue = queue
    return queue


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path / "logs"


@pytest.fixture
def celery_worker(transactional_db, celery_queue: str, log_dir: Path) -> Iterator[servers.Process]:
    process = servers.start_worker(log_dir, queue=celery_queue)
    yield process
    process.stop()


@pytest.fixture
def daphne(transactional_db, log_dir: Path) -> Iterator[servers.Process]:
    process = servers.start_daphne(log_dir)
    yield process
    process.stop()
