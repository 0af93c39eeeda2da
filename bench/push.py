"""Device push throughput: pushes/s through 2 real Celery worker processes to fake APNs and FCM.

Two provider behaviours (answer at once, answer after 50 ms) and two event shapes (one event fanned
out to many phones; many events for one phone each). Each figure is set against a baseline
measured in the same run: one blocking request per push on one connection, which is what a
sender without HTTP/2 multiplexing achieves.

The fake providers run in a process of their own (one per provider), so the figure is the push
path's and not the fakes' share of this process's interpreter lock.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/nh_devices_bench \\
    REDIS_URL=redis://127.0.0.1:6379/7 python bench/push.py
"""

import multiprocessing
import os
import ssl
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/nh_devices_bench"
)
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/7")
APP = "com.bench.phone"
DEVICES = int(os.environ.get("BENCH_PUSH_DEVICES", "1000"))  # half APNs, half FCM
FANOUT_EVENTS = int(os.environ.get("BENCH_PUSH_FANOUT_EVENTS", "5"))
SINGLE_EVENTS = int(os.environ.get("BENCH_PUSH_SINGLE_EVENTS", "2000"))
BASELINE_PUSHES = int(os.environ.get("BENCH_PUSH_BASELINE", "200"))

os.environ.update(
    {
        "DATABASE_URL": BENCH_DB,
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "NOTIFYHUB_REDIS_PREFIX": f"benchpush{os.getpid()}",
        "NOTIFYHUB_LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "notifyhub.settings",
    }
)


def recreate_database() -> None:
    name = BENCH_DB.rsplit("/", 1)[1]
    admin_url = BENCH_DB.rsplit("/", 1)[0] + "/postgres"
    for statement in (f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}"):
        subprocess.run(["psql", admin_url, "-qc", statement], check=True, capture_output=True)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True)


def _event_id(request: dict[str, Any]) -> str:
    """The event id a fake provider's recorded request carried (APNs payload, FCM data)."""
    if "payload" in request:
        return str(request["payload"]["event_id"])
    return str(request["message"]["data"]["event_id"])


def _serve_fakes(connection: Any, directory: Path, provider: str) -> None:
    """Child process: one fake provider, answering control calls from the bench over a pipe."""
    from tests.push_fakes import PushFakes

    fakes = PushFakes(directory, only=provider)
    fake = fakes.apns if provider == "apns" else fakes.fcm
    fake.keep_log = False
    connection.send(fakes.settings())
    while True:
        command, argument = connection.recv()
        if command == "delay":
            fake.delay = argument
        elif command == "reset_counts":
            fake.count = 0
            fake.rejected.clear()
        elif command == "counts":
            argument = {"answered": fake.count, "rejected": len(fake.rejected)}
        elif command == "keep_log":
            fake.keep_log = argument
        elif command == "event_ids":
            # What the phones got: "event id:token" -> times (bench/soak.py --faults).
            argument = Counter(
                f"{_event_id(request)}:{request['token']}" for request in fake.requests
            )
        elif command == "stop":
            fakes.stop()
            connection.send(None)
            return
        connection.send(argument)


class FakesProcess:
    """Fake APNs and fake FCM, each in a process of its own, sharing one TLS and key directory."""

    def __init__(self, directory: Path) -> None:
        from tests.push_fakes import PushFakes

        PushFakes.write_material(directory)
        context = multiprocessing.get_context("spawn")
        self.children = []
        self.settings: dict[str, Any] = {}
        for provider in ("apns", "fcm"):
            parent, child = context.Pipe()
            process = context.Process(
                target=_serve_fakes, args=(child, directory, provider), daemon=True
            )
            process.start()
            settings = parent.recv()
            self.settings.update(
                {k: v for k, v in settings.items() if k.startswith(f"NOTIFYHUB_{provider.upper()}")}
            )
            self.settings["NOTIFYHUB_PUSH_CA_FILE"] = settings["NOTIFYHUB_PUSH_CA_FILE"]
            self.children.append((process, parent))

    def call(self, command: str, argument: Any = None) -> Any:
        """Send a control command to both fakes; counts are summed."""
        answers = []
        for _, connection in self.children:
            connection.send((command, argument))
            answers.append(connection.recv())
        if command == "counts":
            return {key: sum(answer[key] for answer in answers) for key in answers[0]}
        if command == "event_ids":
            return sum(answers, Counter())
        return answers[0]

    def stop(self) -> None:
        self.call("stop")
        for process, _ in self.children:
            process.join(timeout=10)


def main() -> None:
    recreate_database()
    import django

    django.setup()
    import httpx
    from django.db import transaction

    from devices.models import Device, DevicePush, Preference, Registration
    from events.services import event_ingest
    from notifyhub.celery import app as celery_app
    from notifyhub.models import Account
    from notifyhub.tenancy import HUB
    from tests import servers

    queue = f"bench-push-{os.getpid()}"
    celery_app.conf.task_default_queue = queue
    work = Path(tempfile.mkdtemp(prefix="bench-push-"))
    fakes = FakesProcess(work / "tls")
    from django.conf import settings

    for name, value in fakes.settings.items():  # For the baseline's provider token.
        setattr(settings, name, value)

    account = Account.objects.create(id="bench")
    devices = Device.objects.bulk_create(
        Device(
            account=account,
            app_name=APP,
            device_id=f"d{i}",
            mobile_device_id=f"m{i}",
            platform="ios" if i % 2 == 0 else "android",
            sip_proxy_server="sip.bench",
            revision="1-bench",
        )
        for i in range(DEVICES)
    )
    registrations = Registration.objects.bulk_create(
        Registration(
            device=device,
            token=f"{i:064x}" if i % 2 == 0 else f"fcm:bench-{i}",
            notification_type="apns" if i % 2 == 0 else "fcm",
        )
        for i, device in enumerate(devices)
    )
    Preference.objects.bulk_create(
        Preference(device_id=r.device_id, registration=r, name="incoming_call")
        for r in registrations
    )

    worker = servers.start_worker(
        work / "logs",
        queue=queue,
        concurrency=2,
        NOTIFYHUB_LOG_LEVEL="WARNING",
        **{name: str(value) for name, value in fakes.settings.items()},
    )

    def run(label: str, payloads: list[dict]) -> float:
        DevicePush.objects.all().delete()
        fakes.call("reset_counts")
        # One transaction: every send task is enqueued at commit, so the clock starts with all
        # work available at once and measures the push path, not this process's ingest loop.
        with transaction.atomic():
            for index, payload in enumerate(payloads):
                event_ingest(
                    producer="bench",
                    reach=HUB,
                    type_id="incoming_call",
                    payload=payload,
                    idempotency_key=f"{label}-{index}-{time.monotonic_ns()}",
                )
            expected = DevicePush.objects.count()
            started = time.perf_counter()
        deadline = time.monotonic() + 600
        while DevicePush.objects.filter(status="sent").count() < expected:
            if time.monotonic() > deadline:
                raise TimeoutError(worker.output()[-3000:])
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        counts = fakes.call("counts")
        assert counts["rejected"] == 0, f"providers refused pushes: {counts}"
        # At least one request per push; more when a provider request had to be retried.
        assert counts["answered"] >= expected, counts
        return expected / elapsed

    def baseline() -> float:
        """One blocking request per push on one connection (no streams in flight)."""
        from devices.providers.apns import ApnsProvider

        token_maker = ApnsProvider(client=None)  # type: ignore[arg-type]
        with httpx.Client(
            http2=True,
            verify=ssl.create_default_context(cafile=fakes.settings["NOTIFYHUB_PUSH_CA_FILE"]),
        ) as client:
            started = time.perf_counter()
            for i in range(BASELINE_PUSHES):
                response = client.post(
                    f"{fakes.settings['NOTIFYHUB_APNS_URL']}/3/device/{i * 2:064x}",
                    content=b'{"aps":{}}',
                    headers={
                        "authorization": f"bearer {token_maker.provider_token()}",
                        "apns-topic": APP,
                        "apns-push-type": "alert",
                    },
                )
                assert response.status_code == 200, response.text
            return BASELINE_PUSHES / (time.perf_counter() - started)

    fanout = [{"account_id": "bench"}] * FANOUT_EVENTS
    single = [{"account_id": "bench", "device_id": f"d{i % DEVICES}"} for i in range(SINGLE_EVENTS)]
    rows = []
    try:
        for delay in (0.0, 0.05):
            fakes.call("delay", delay)
            base = baseline()
            for shape, payloads in (
                (f"{FANOUT_EVENTS} events x {DEVICES} phones", fanout),
                (f"{SINGLE_EVENTS} events x 1 phone", single),
            ):
                rate = run(shape, payloads)
                rows.append((f"{int(delay * 1000)} ms", shape, rate, base))
                print(
                    f"provider answers after {int(delay * 1000):>2} ms | {shape:<26} | "
                    f"{rate:8.0f} pushes/s | baseline {base:6.0f}/s | x{rate / base:.1f}",
                    flush=True,
                )
    finally:
        worker.stop()
        fakes.stop()
    from bench.summary import record

    for latency, shape, rate, base in rows:
        record(
            f"device pushes, {latency} provider, {shape}",
            rate,
            "pushes/s",
            baseline_name="one request at a time",
            baseline=base,
            target="≥ 500/s",
        )
    print("\n| provider latency | events | pushes/s (2 workers) | one-at-a-time baseline | ratio |")
    print("|---|---|---|---|---|")
    for latency, shape, rate, base in rows:
        print(f"| {latency} | {shape} | {rate:.0f} | {base:.0f} | x{rate / base:.1f} |")


if __name__ == "__main__":
    main()
