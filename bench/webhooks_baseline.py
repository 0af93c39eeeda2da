"""The benchmark's baseline: a bare Celery task POSTing one body with a pooled client, no ledger."""

import httpx
from celery import shared_task

_client: httpx.Client | None = None


@shared_task(name="bench.webhooks.post")
def post(url: str, body: str, bench_id: str) -> int:
    """POST `body` once; nothing recorded, nothing signed, nothing checked."""
    global _client
    if _client is None:
        _client = httpx.Client(limits=httpx.Limits(max_connections=8), timeout=10)
    response = _client.post(
        url, content=body, headers={"content-type": "application/json", "x-bench-id": bench_id}
    )
    return response.status_code
