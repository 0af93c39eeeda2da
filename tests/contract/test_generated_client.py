"""A client generated from the hub's own `/api/schema/` (openapi-python-client, as a user would
run it) works against a real daphne: it creates a subscription, publishes, pulls (FIFO and
paged), releases and subscribes to a stream, and parses every answer into its typed models.
A schema that left an operation out, typed a field wrongly (a `null` where it promised a
string) or named the wrong media type fails here."""

import importlib
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from notifyhub.redis import redis_client, redis_key
from tests.servers import BIN

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def generated(daphne, tmp_path: Path) -> Iterator[ModuleType]:
    """The client package generated from the served schema, imported under a fresh name."""
    schema = httpx.get(f"{daphne.url}/api/schema/", params={"format": "json"}, timeout=30)
    assert schema.status_code == 200
    (tmp_path / "schema.json").write_text(json.dumps(schema.json()))
    (tmp_path / "config.yml").write_text("post_hooks: []\n")
    name = f"hub_client_{uuid.uuid4().hex[:8]}"
    result = subprocess.run(
        [
            str(BIN / "openapi-python-client"),
            "generate",
            "--path",
            str(tmp_path / "schema.json"),
            "--config",
            str(tmp_path / "config.yml"),
            "--meta",
            "none",
            "--output-path",
            str(tmp_path / name),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout, result.stdout
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(name)
    finally:
        sys.path.remove(str(tmp_path))
        for module in [module for module in sys.modules if module.startswith(name)]:
            del sys.modules[module]


def api(package: ModuleType, path: str) -> ModuleType:
    return importlib.import_module(f"{package.__name__}.api.{path}")


def model(package: ModuleType, name: str) -> type:
    return getattr(importlib.import_module(f"{package.__name__}.models"), name)


def test_a_generated_client_subscribes_publishes_pulls_and_releases(
    generated, daphne, administrator, consumer, producer
):
    def client(persona):
        return generated.AuthenticatedClient(base_url=daphne.url, token=persona.token)

    with client(administrator) as admin, client(producer) as shop, client(consumer) as reader:
        created = api(generated, "notification_api.subscriptions_create").sync(
            client=admin,
            body=model(generated, "SubscriptionCreateInputRequest")(
                event_type_ids=["order.accepted"],
                client_id=consumer.client_id,
                notification_url="https://hooks.example.com/in",
            ),
        )
        assert isinstance(created, model(generated, "SubscriptionCreateOutput"))
        assert created.subscription.notification_url == "https://hooks.example.com/in"
        status = created.subscription_status
        assert status.last_request_date == created.subscription.subscription_date

        for order_id in ("H1234567890", "H1234567891"):
            published = api(generated, "events_api.events_ingest").sync_detailed(
                client=shop,
                api_version=model(generated, "EventsIngestApiVersion")("3.0"),
                body=model(generated, "EventIngestInputRequest")(
                    event=model(generated, "EventInputRequest")(
                        type_="order.accepted",
                        payload=model(generated, "EventInputRequestPayload").from_dict(
                            {"order_id": order_id}
                        ),
                    )
                ),
            )
            assert published.status_code == 200, published.content

        pulled = api(generated, "integration_api.pull_notification").sync(client=reader)
        assert isinstance(pulled, model(generated, "IntegrationNotificationOutput"))
        assert (pulled.name, pulled.data) == ("order.accepted", {"order_id": "H1234567890"})

        page = api(generated, "notification_api.subscriptions_notifications_list").sync(
            client=reader, subscription_id=created.id
        )
        assert isinstance(page, model(generated, "NotificationPageOutput"))
        assert [item.payload for item in page.results] == [{"order_id": "H1234567891"}]

        redis_client().delete(redis_key("release", consumer.client_id))
        released = api(generated, "integration_api.release_notifications").sync_detailed(
            client=reader
        )
        assert released.status_code == 202
        assert released.parsed.released == 0
        redis_client().delete(redis_key("release", consumer.client_id))


def test_a_generated_client_opens_a_stream_and_reads_the_producers_payload(
    generated, daphne, consumer, producer
):
    """The generated operation builds the request (parameter names, array encoding, the
    Last-Event-ID header); a stream never ends, so the test reads it frame by frame rather than
    through the generated `sync`, which would wait for the end of the body."""
    operation = api(generated, "push_api.subscribe_for_push_notifications")
    kind = model(generated, "SubscribeForPushNotificationsKindsItem")
    request = operation._get_kwargs(client_id="tab-1", kinds=[kind("newMessage"), kind("ticket")])
    payload = {"id": "msg-42", "type": "sms", "created_at": "2020-01-01", "user_id": None}

    with generated.AuthenticatedClient(base_url=daphne.url, token=consumer.token) as reader:
        stream = reader.get_httpx_client().stream(**request, timeout=10)
        with stream as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.iter_lines()
            payload["user_id"] = consumer.client_id
            published = httpx.post(
                f"{daphne.url}/v1/notifications",
                headers={"Authorization": f"Bearer {producer.token}", "Api-Version": "3.0"},
                json={"event": {"type": "newMessage", "payload": payload}},
            )
            assert published.status_code == 200
            frame = {}
            for line in lines:
                if line.startswith(("id:", "event:", "data:")):
                    name, _, value = line.partition(":")
                    frame[name] = value.strip()
                if frame.get("event") == "newMessage" and "data" in frame:
                    break

    assert frame["id"] == published.json()["id"]
    assert json.loads(frame["data"]) == payload
