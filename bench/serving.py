"""Serving on every core, side by side in one run: the minimal authenticated DRF endpoint on
one daphne process, on `manage.py serve` (one daphne process per core on one socket), on the
ASGI servers that could replace daphne there (uvicorn with httptools and uvloop, granian), each
serving the same ASGI application, and on gunicorn with 2 sync workers (WSGI, no streams), the
baseline issue 19 sets.

After its load each ASGI server is probed on the same port for what `manage.py serve` must keep:
a stream opens and receives an event, a request head trickled a byte at a time is cut at the
head deadline (NOTIFYHUB_HTTP_HEAD_TIMEOUT, set to 2 s here; notifyhub/http_channel.py does it
under daphne), and a body declared over its path's limit is refused with 413 before it is sent
(notifyhub/asgi.py, `body_limited`).

    python bench/serving.py [--duration 20] [--concurrency 32]
"""

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness
from bench.summary import record

APP = "bench.asgi:application"
# Short, so the slow-head probe takes seconds; it changes nothing for connections under load.
HEAD_TIMEOUT = 2.0
BASELINE = "gunicorn, 2 sync workers (WSGI, no streams)"


@dataclass(frozen=True)
class Candidate:
    """One server command line (given its port), and whether it serves streams (ASGI)."""

    argv: Callable[[int], list[str]]
    asgi: bool = True


def candidates(cores: int) -> dict[str, Candidate]:
    python = str(harness.BIN / "python")
    daphne = f"daphne {version('daphne')}"
    uvicorn = (
        f"uvicorn {version('uvicorn')} (httptools {version('httptools')}, "
        f"uvloop {version('uvloop')}), 2 workers"
    )
    granian = f"granian {version('granian')} (ASGI, uvloop), 2 workers"
    return {
        f"one {daphne} process": Candidate(
            lambda port: [
                str(harness.BIN / "daphne"),
                *("-b", "127.0.0.1", "-p", str(port), "--verbosity", "0", APP),
            ]
        ),
        f"manage.py serve ({cores} {daphne} processes, SO_REUSEPORT)": Candidate(
            lambda port: [
                *(python, "manage.py", "serve", "--port", str(port)),
                *("--processes", str(cores), "--application", APP),
            ]
        ),
        uvicorn: Candidate(
            lambda port: [
                str(harness.BIN / "uvicorn"),
                *("--host", "127.0.0.1", "--port", str(port), "--workers", "2"),
                *("--loop", "uvloop", "--http", "httptools"),
                # ProtocolTypeRouter has no lifespan route; `auto` would log the refusal.
                *("--lifespan", "off", "--no-access-log", "--log-level", "warning", APP),
            ]
        ),
        granian: Candidate(
            lambda port: [
                str(harness.BIN / "granian"),
                # `asginl`: ASGI without lifespan, as for uvicorn above.
                *("--interface", "asginl", "--host", "127.0.0.1", "--port", str(port)),
                *("--workers", "2", "--loop", "uvloop", "--no-ws", "--log-level", "warning", APP),
            ]
        ),
        BASELINE: Candidate(
            lambda port: [
                str(harness.BIN / "gunicorn"),
                *("-w", "2", "-b", f"127.0.0.1:{port}", "bench.wsgi:application"),
            ],
            asgi=False,
        ),
    }


@dataclass(frozen=True)
class StreamTokens:
    """A consumer's token (with a user: streams listen as one) and a producer's."""

    consumer: str
    producer: str
    username: str


def stream_tokens(application: object) -> StreamTokens:
    from django.conf import settings
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("bench-stream")
    return StreamTokens(
        consumer=harness.access_token(application, [settings.SCOPE_CONSUMER], user=user),
        producer=harness.access_token(application, [settings.SCOPE_PUBLISH]),
        username=user.username,
    )


async def stream_receives_event(url: str, tokens: StreamTokens, run: str) -> str:
    """Open `GET /api/push/subscribe` as bench/streams.py does, ingest one event for its user on
    the same port, and say how long the event took to arrive (or what went wrong)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            f"GET /api/push/subscribe?kinds=newMessage&clientId=serving-{run} HTTP/1.1\r\n"
            f"Host: {host}\r\nAccept: text/event-stream\r\n"
            f"Authorization: Bearer {tokens.consumer}\r\n\r\n".encode()
        )
        async with asyncio.timeout(10):
            head = await reader.readuntil(b"\r\n\r\n")
            status = head.split(b"\r\n", 1)[0].decode()
            if " 200 " not in status:
                return f"refused: {status}"
            await reader.read(1)  # The first frame has started: the stream is open.
        marker = f"serving-{run}-{time.monotonic_ns()}"
        async with httpx.AsyncClient(timeout=10) as client:
            sent = time.perf_counter()
            answer = await client.post(
                f"{url}/v1/notifications",
                json={
                    "event": {
                        "type": "newMessage",
                        "payload": {"user_id": tokens.username, "marker": marker},
                    }
                },
                headers={"Authorization": f"Bearer {tokens.producer}", "Api-Version": "3.0"},
            )
        if answer.status_code >= 300:
            return f"ingest answered {answer.status_code}"
        received = b""
        async with asyncio.timeout(10):
            while marker.encode() not in received:
                chunk = await reader.read(65536)
                if not chunk:
                    return "stream closed before the event"
                received = received[-4096:] + chunk
        return f"event in {(time.perf_counter() - sent) * 1000:.0f} ms"
    except TimeoutError:
        return "timed out"
    finally:
        writer.close()


async def slow_head_cut(url: str) -> str:
    """Trickle a request head a byte every 0.25 s for three head deadlines: is it cut?"""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    started = time.monotonic()
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 1000
    try:
        for byte in head:
            if time.monotonic() - started > 3 * HEAD_TIMEOUT:
                return f"not cut after {time.monotonic() - started:.1f} s"
            writer.write(bytes([byte]))
            await writer.drain()
            try:
                async with asyncio.timeout(0.25):
                    if await reader.read(1024) == b"":
                        return f"cut after {time.monotonic() - started:.1f} s"
            except TimeoutError:
                continue
        return "head sent in full"
    except OSError:
        return f"cut after {time.monotonic() - started:.1f} s"
    finally:
        writer.close()


async def oversized_body_refused(url: str) -> str:
    """Declare a 300 MB body on the ingest path and send none of it: answered at once?"""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            f"POST /v1/notifications HTTP/1.1\r\nHost: {host}\r\n"
            "Content-Type: application/json\r\nContent-Length: 300000000\r\n\r\n".encode()
        )
        async with asyncio.timeout(5):
            head = await reader.readuntil(b"\r\n")
        return head.decode().strip().removeprefix("HTTP/1.1 ")
    except (TimeoutError, asyncio.IncompleteReadError):
        return "no answer"
    finally:
        writer.close()


def probe(url: str, tokens: StreamTokens, run: str) -> dict[str, str]:
    async def all_three() -> dict[str, str]:
        return {
            "stream": await stream_receives_event(url, tokens, run),
            "slow head": await slow_head_cut(url),
            "300 MB body declared": await oversized_body_refused(url),
        }

    return asyncio.run(all_three())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()

    harness.setup_django()
    objects = harness.prepare_objects(subscriptions=1)
    tokens = stream_tokens(objects.application)
    bearer = {"Authorization": f"Bearer {objects.token}"}
    cores = os.cpu_count() or 1
    results = {}
    probes = {}
    for index, (name, candidate) in enumerate(candidates(cores).items()):
        with harness.server(candidate.argv, NOTIFYHUB_HTTP_HEAD_TIMEOUT=str(HEAD_TIMEOUT)) as url:
            harness.load(f"{url}/bench/minimal", headers=bearer, duration=3)  # warm-up
            results[name] = harness.load(
                f"{url}/bench/minimal",
                headers=bearer,
                duration=args.duration,
                concurrency=args.concurrency,
            )
            if candidate.asgi:
                probes[name] = probe(url, tokens, f"{os.getpid()}-{index}")

    gunicorn = results[BASELINE].rate
    print(f"# serving — {harness.machine()}")
    print(
        f"GET /bench/minimal (bearer token, scope check), concurrency {args.concurrency}, "
        f"{args.duration:.0f} s each, load from {results[BASELINE].generator}\n"
    )
    print(harness.TABLE_HEADER.replace("ratio to baseline", "ratio to gunicorn"))
    for name, result in results.items():
        print(harness.row(name, result, baseline=None if name == BASELINE else gunicorn))
    print(
        f"\nOn the same port, after the load (head deadline {HEAD_TIMEOUT:.0f} s; "
        "daphne's is notifyhub/http_channel.py's):\n"
    )
    checks = list(next(iter(probes.values())))
    print("| server | " + " | ".join(checks) + " |")
    print("|---|" + "---|" * len(checks))
    for name, found in probes.items():
        print(f"| {name} | " + " | ".join(found[check] for check in checks) + " |")
    print("\nBENCH-JSON " + json.dumps({name: r.rate for name, r in results.items()}))

    served = next(r for name, r in results.items() if name.startswith("manage.py serve")).rate
    record(
        "minimal endpoint, manage.py serve (all cores)",
        served,
        "req/s",
        baseline_name="gunicorn, 2 sync workers",
        baseline=gunicorn,
        target="≈ 1.00x",
    )
    for name, result in results.items():
        if name.startswith(("uvicorn", "granian")):
            record(
                f"minimal endpoint, {name}",
                result.rate,
                "req/s",
                baseline_name="gunicorn, 2 sync workers",
                baseline=gunicorn,
            )


if __name__ == "__main__":
    main()
