"""Schemathesis against the real `/api/schema/` of a real daphne process, with valid tokens.

Every operation of the schema is generated from (valid and invalid data); every answer must be a
non-5xx, documented status with a documented content type and body. Size the run with
`NOTIFYHUB_FUZZ_EXAMPLES` (examples per operation; default 25).
"""

import contextlib
import os
from collections import Counter

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from events.models import EventType
from notifyhub.tenancy import HUB
from subscriptions.services import subscription_create

EXAMPLES = int(os.environ.get("NOTIFYHUB_FUZZ_EXAMPLES", "25"))

# Which persona's token each operation is called with; any operation not listed uses the
# administrator (administrator + consumer scopes). A new surface is a new row.
PERSONA_FOR = {
    "events_ingest": "producer",
}

# Operations whose success is an endless response (a server-sent event stream): a fuzzed
# request that succeeds would never return. tests/contract/test_push_api.py covers them.
ENDLESS = {"subscribe_for_push_notifications"}

CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(600)]


def strategy_of(operation) -> st.SearchStrategy:
    """Valid and invalid requests alike; an operation without inputs has no invalid ones."""
    strategies = [operation.as_strategy(GenerationMode.POSITIVE)]
    with contextlib.suppress(Exception):
        strategies.append(operation.as_strategy(GenerationMode.NEGATIVE))
    return st.one_of(strategies)


def schema_of(url: str):
    """The schema exactly as the running server publishes it."""
    response = httpx.get(f"{url}/api/schema/?format=json", timeout=10)
    response.raise_for_status()
    return schemathesis.openapi.from_dict(response.json())


def fuzz_operation(
    operation, *, url: str, headers: dict[str, str], statuses: Counter, live_subscription_id
) -> None:
    """Run one operation's examples; a failing check raises with the reproducing request."""

    @given(case=strategy_of(operation))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def fuzz(case: schemathesis.Case) -> None:
        statuses[
            case.call_and_validate(base_url=url, headers=headers, checks=CHECKS).status_code
        ] += 1
        if "subscription_id" in (case.path_parameters or {}):
            # A generated id is almost never a real one: send the same request to a live one.
            case.path_parameters["subscription_id"] = live_subscription_id()
            response = case.call_and_validate(base_url=url, headers=headers, checks=CHECKS)
            statuses[response.status_code] += 1

    fuzz()


def test_every_operation_answers_as_documented(daphne, administrator, producer):
    personas = {"administrator": administrator, "producer": producer}
    type_id = EventType.objects.order_by("id").values_list("id", flat=True).first()

    def live_subscription_id() -> str:
        subscription = subscription_create(
            reach=HUB,
            client_id=administrator.client_id,
            event_type_ids=[type_id],
            subscribed_by=administrator.client_id,
            notification_url="http://127.0.0.1:9/hook",
        )
        return str(subscription.id)

    failures: dict[str, str] = {}
    statuses: Counter[int] = Counter()
    operations = [result.ok() for result in schema_of(daphne.url).get_all_operations()]
    assert operations
    for operation in operations:
        operation_id = operation.definition.raw["operationId"]
        if operation_id in ENDLESS:
            continue
        persona = personas[PERSONA_FOR.get(operation_id, "administrator")]
        headers = {"Authorization": f"Bearer {persona.token}"}

        try:
            fuzz_operation(
                operation,
                url=daphne.url,
                headers=headers,
                statuses=statuses,
                live_subscription_id=live_subscription_id,
            )
        except (Exception, BaseExceptionGroup) as exc:
            failures[f"{operation.method.upper()} {operation.path}"] = str(exc)[:3000]
    requests = sum(statuses.values())
    print(f"schemathesis: {len(operations)} operations, {requests} requests, {dict(statuses)}")
    assert not failures, "\n\n".join(f"{name}:\n{text}" for name, text in failures.items())
