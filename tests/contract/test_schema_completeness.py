"""The published schema documents every contract surface completely: a client generated from
`/api/schema/` gets a summary for each operation, a description for each field it reads or
sends, the contracts' example bodies, and the paths as the contracts write them."""

import re
from collections.abc import Iterator

import pytest

pytestmark = pytest.mark.django_db

METHODS = ("get", "put", "post", "delete", "patch")
SURFACES = {"Push API", "Integration API", "Events API", "Notification API", "Device API"}
WHOLE_SECONDS_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
TIMESTAMP_KEYS = {"created_at", "expires_at", "subscription_date", "last_request_date"}


@pytest.fixture
def schema(client) -> dict:
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def operations(schema: dict) -> Iterator[tuple[str, str, dict]]:
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def components_used(schema: dict, node: object, seen: set[str] | None = None) -> set[str]:
    """The names of the component schemas `node` refers to, directly or through others."""
    seen = set() if seen is None else seen
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and value.startswith("#/components/schemas/"):
                name = value.rsplit("/", 1)[1]
                if name not in seen:
                    seen.add(name)
                    components_used(schema, schema["components"]["schemas"][name], seen)
            else:
                components_used(schema, value, seen)
    elif isinstance(node, list):
        for value in node:
            components_used(schema, value, seen)
    return seen


def timestamps(value: object) -> Iterator[str]:
    if isinstance(value, dict):
        for key, member in value.items():
            if key in TIMESTAMP_KEYS:
                yield member
            yield from timestamps(member)
    elif isinstance(value, list):
        for member in value:
            yield from timestamps(member)


def test_every_operation_belongs_to_a_surface_and_has_a_summary(schema):
    for path, method, operation in operations(schema):
        assert set(operation["tags"]) <= SURFACES, (path, method)
        assert operation.get("summary", "").strip(), f"{method.upper()} {path} has no summary"


def test_every_field_of_every_body_a_surface_uses_has_a_description(schema):
    used = components_used(schema, schema["paths"])
    assert {
        "IntegrationNotificationOutput",
        "NotificationItemOutput",
        "NotificationPageOutput",
        "SubscriptionDetailOutput",
        "DeviceOutput",
        "RegistrationOutput",
        "DeviceEnvelopeOutput",
        "DeletedEnvelopeOutput",
        "ErrorEnvelopeOutput",
        "EventTypeOutput",
    } <= used
    undescribed = [
        f"{name}.{field}"
        for name in sorted(used)
        for field, definition in schema["components"]["schemas"][name].get("properties", {}).items()
        if not definition.get("description", "").strip()
    ]
    assert undescribed == []


@pytest.mark.parametrize(
    ("path", "method", "status"),
    [
        ("/notification/v1/subscriptions", "post", "201"),
        ("/notification/v1/subscriptions/{subscription_id}", "get", "200"),
        ("/notification/v1/subscriptions/{subscription_id}/notifications", "get", "200"),
    ],
)
def test_the_notification_apis_answers_carry_the_contracts_examples(schema, path, method, status):
    content = schema["paths"][path][method]["responses"][status]["content"]["application/json"]
    examples = [example["value"] for example in content["examples"].values()]
    assert examples
    body = schema["components"]["schemas"][content["schema"]["$ref"].rsplit("/", 1)[1]]
    for example in examples:
        assert set(body["required"]) <= set(example) <= set(body["properties"])
        written = list(timestamps(example))
        assert written
        assert all(WHOLE_SECONDS_UTC.match(value) for value in written), written


def test_the_kazoo_path_is_published_as_its_contract_writes_it(schema):
    kazoo = [path for path in schema["paths"] if path.startswith("/v2/")]
    assert kazoo == [
        "/v2/accounts/{account_id}/push_notification_subscriptions/{app_name}/{device_id}"
    ]
