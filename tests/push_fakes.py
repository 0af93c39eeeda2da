"""Fake APNs and FCM: real HTTP/2-over-TLS servers on loopback that check what the real ones check.

APNs: HTTP/2 only, an ES256 provider token signed by the configured key (kid, iss, iat), an
`apns-topic`, a known push type and priority, a UUID `apns-id`, a JSON payload with `aps` of at
most 4 KiB (5 KiB for VoIP). FCM: a JWT-bearer token grant signed by the service account (aud,
iss, scope), then `messages:send` with that access token, string-only `data` of at most 4 KiB.
Both record every request and answer from a per-token script (default: success).
"""

import asyncio
import json
import secrets
import socket
import ssl
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypercorn.asyncio import serve
from hypercorn.config import Config

APNS_KEY_ID = "ABC123DEFG"
APNS_TEAM_ID = "TEAM123456"
FCM_PROJECT = "notifyhub-test"
FCM_CLIENT_EMAIL = "pusher@notifyhub-test.iam.gserviceaccount.com"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


@dataclass
class Answer:
    """One scripted provider answer."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


async def _read_body(receive: Any) -> bytes | None:
    """The request body, or None when the client went away before sending all of it (a sender
    killed mid-request): a real provider never sees such a request, so neither does a fake."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(send: Any, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
    raw = json.dumps(body).encode() if body else b""
    head = [(k.encode(), v.encode()) for k, v in headers.items()]
    if raw:
        head.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": raw})


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class FakeProvider:
    """What both fakes share: a request log, per-token scripts and an answer delay."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.rejected: list[dict[str, Any]] = []
        self.scripts: dict[str, list[Answer]] = defaultdict(list)
        self.delay = 0.0
        self.count = 0

    def reset(self) -> None:
        self.requests.clear()
        self.rejected.clear()
        self.scripts.clear()
        self.delay = 0.0
        self.count = 0

    def script(self, token: str, *answers: Answer) -> None:
        self.scripts[token].extend(answers)

    def _scripted(self, token: str) -> Answer | None:
        queue = self.scripts.get(token)
        return queue.pop(0) if queue else None

    def _reject(self, record: dict[str, Any], status: int, reason: str) -> tuple[int, dict]:
        self.rejected.append({**record, "status": status, "reason": reason})
        return status, {"reason": reason}


class FakeApns(FakeProvider):
    def __init__(self, public_key_pem: bytes) -> None:
        super().__init__()
        self.public_key_pem = public_key_pem
        self.keep_log = True
        self.verified: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        status, answer, extra = self._check(scope, headers, body)
        if self.delay:
            await asyncio.sleep(self.delay)
        self.count += 1
        await _respond(send, status, answer, extra)

    def _check(
        self, scope: dict[str, Any], headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        record: dict[str, Any] = {"http_version": scope["http_version"], "headers": headers}
        apns_id = headers.get("apns-id") or str(uuid.uuid4())
        out = {"apns-id": apns_id}
        if scope["http_version"] != "2":
            return (*self._reject(record, 505, "HTTP2Required"), out)
        path = scope["path"]
        if scope["method"] != "POST":
            return (*self._reject(record, 405, "MethodNotAllowed"), out)
        if not path.startswith("/3/device/"):
            return (*self._reject(record, 404, "BadPath"), out)
        token = path.removeprefix("/3/device/")
        record["token"] = token
        auth = headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            return (*self._reject(record, 403, "MissingProviderToken"), out)
        raw_jwt = auth.split(" ", 1)[1]
        verified = self.verified.get(raw_jwt)
        if verified is None:
            # Each distinct provider token is verified once, as APNs does: senders reuse one
            # token for up to an hour, so re-checking the signature per push would only make
            # the fake slower than the real service.
            try:
                verified = (
                    jwt.get_unverified_header(raw_jwt),
                    jwt.decode(
                        raw_jwt,
                        self.public_key_pem,
                        algorithms=["ES256"],
                        options={"require": ["iat"]},
                    ),
                )
            except jwt.PyJWTError:
                return (*self._reject(record, 403, "InvalidProviderToken"), out)
            self.verified[raw_jwt] = verified
        header, claims = verified
        if header.get("kid") != APNS_KEY_ID or claims.get("iss") != APNS_TEAM_ID:
            return (*self._reject(record, 403, "InvalidProviderToken"), out)
        if time.time() - claims["iat"] > 3600:
            return (*self._reject(record, 403, "ExpiredProviderToken"), out)
        record["jwt"] = claims
        topic = headers.get("apns-topic")
        push_type = headers.get("apns-push-type")
        if not topic:
            return (*self._reject(record, 400, "MissingTopic"), out)
        if push_type not in {"alert", "background", "voip"}:
            return (*self._reject(record, 400, "InvalidPushType"), out)
        if push_type == "voip" and not topic.endswith(".voip"):
            return (*self._reject(record, 400, "TopicDisallowed"), out)
        if headers.get("apns-priority", "10") not in {"5", "10"}:
            return (*self._reject(record, 400, "BadPriority"), out)
        try:
            uuid.UUID(apns_id)
        except ValueError:
            return (*self._reject(record, 400, "BadMessageId"), out)
        if len(headers.get("apns-collapse-id", "").encode()) > 64:
            return (*self._reject(record, 400, "BadCollapseId"), out)
        limit = 5120 if push_type == "voip" else 4096
        if len(body) > limit:
            return (*self._reject(record, 413, "PayloadTooLarge"), out)
        try:
            payload = json.loads(body)
        except ValueError:
            return (*self._reject(record, 400, "PayloadEmpty"), out)
        if not isinstance(payload, dict) or not isinstance(payload.get("aps"), dict):
            return (*self._reject(record, 400, "PayloadEmpty"), out)
        if len(token) != 64 or any(c not in "0123456789abcdef" for c in token):
            return (*self._reject(record, 400, "BadDeviceToken"), out)
        record["payload"] = payload
        if self.keep_log:
            self.requests.append(record)
        scripted = self._scripted(token)
        if scripted is not None:
            return scripted.status, scripted.body, {**out, **scripted.headers}
        return 200, {}, out


class FakeFcm(FakeProvider):
    def __init__(self, public_key_pem: bytes, token_uri: str) -> None:
        super().__init__()
        self.public_key_pem = public_key_pem
        self.token_uri = token_uri
        self.access_tokens: set[str] = set()
        self.token_requests = 0
        self.keep_log = True

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        if scope["path"] == "/token":
            status, answer, extra = self._token(body), {}, {}
            status, answer = status
        else:
            status, answer, extra = self._send(scope, headers, body)
            if self.delay:
                await asyncio.sleep(self.delay)
            self.count += 1
        await _respond(send, status, answer, extra)

    def _token(self, body: bytes) -> tuple[int, dict[str, Any]]:
        self.token_requests += 1
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return 400, {"error": "unsupported_grant_type"}
        try:
            claims = jwt.decode(
                form.get("assertion", ""),
                self.public_key_pem,
                algorithms=["RS256"],
                audience=self.token_uri,
                options={"require": ["iat", "exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            return 400, {"error": "invalid_grant", "error_description": str(exc)}
        if claims["iss"] != FCM_CLIENT_EMAIL or FCM_SCOPE not in claims.get("scope", "").split():
            return 400, {"error": "invalid_scope"}
        if claims["exp"] - claims["iat"] > 3600:
            return 400, {"error": "invalid_grant", "error_description": "lifetime over 1h"}
        token = "ya29." + secrets.token_urlsafe(24)
        self.access_tokens.add(token)
        return 200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    def _error(
        self, record: dict[str, Any], status: int, code: str, message: str
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        self.rejected.append({**record, "status": status, "reason": code})
        return status, {"error": {"code": status, "message": message, "status": code}}, {}

    def _send(
        self, scope: dict[str, Any], headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        record: dict[str, Any] = {"http_version": scope["http_version"], "headers": headers}
        if scope["path"] != f"/v1/projects/{FCM_PROJECT}/messages:send":
            return self._error(record, 404, "NOT_FOUND", "unknown path")
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.access_tokens:
            return self._error(record, 401, "UNAUTHENTICATED", "invalid access token")
        try:
            message = json.loads(body)["message"]
        except (ValueError, KeyError, TypeError):
            return self._error(record, 400, "INVALID_ARGUMENT", "invalid JSON payload")
        record["message"] = message
        data = message.get("data", {})
        if not isinstance(data, dict) or any(not isinstance(v, str) for v in data.values()):
            return self._error(record, 400, "INVALID_ARGUMENT", "data values must be strings")
        if len(json.dumps(data).encode()) > 4096:
            return self._error(record, 400, "INVALID_ARGUMENT", "Message is too big")
        priority = message.get("android", {}).get("priority", "NORMAL")
        if priority not in {"HIGH", "NORMAL"}:
            return self._error(record, 400, "INVALID_ARGUMENT", "bad android.priority")
        token = message.get("token", "")
        record["token"] = token
        if self.keep_log:
            self.requests.append(record)
        scripted = self._scripted(token)
        if scripted is not None:
            return scripted.status, scripted.body, scripted.headers
        name = f"projects/{FCM_PROJECT}/messages/{secrets.token_hex(8)}"
        return 200, {"name": name}, {}


def _private_pem(key: Any) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _public_pem(private_key: Any) -> bytes:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def fcm_error(status: int, code: str, error_code: str | None = None, message: str = "") -> Answer:
    """A scripted FCM error, with the FcmError detail real FCM adds."""
    details = (
        [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": error_code}]
        if error_code
        else []
    )
    return Answer(
        status, {"error": {"code": status, "message": message, "status": code, "details": details}}
    )


def _ignore_disconnects(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A client killed or gone mid-connection (the fault tests kill workers) ends its connection
    task with a cancellation, a reset, a TLS error or a TLS shutdown it never answers ("SSL
    shutdown timed out"): expected here, so not logged. Anything else goes to asyncio's
    default handler."""
    disconnects = (asyncio.CancelledError, ConnectionError, ssl.SSLError, TimeoutError)
    if isinstance(context.get("exception"), disconnects):
        return
    loop.default_exception_handler(context)


class TlsServer:
    """A hypercorn server on a loopback port, HTTP/2 over TLS, in a thread of this process."""

    def __init__(self, app: Any, certfile: Path, keyfile: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"https://127.0.0.1:{self.port}"
        config = Config()
        config.bind = [f"127.0.0.1:{self.port}"]
        config.certfile = str(certfile)
        config.keyfile = str(keyfile)
        config.alpn_protocols = ["h2", "http/1.1"]
        config.h2_max_concurrent_streams = 1000
        config.keep_alive_timeout = 600
        # Apple and Google keep a sender's connection for hours; hypercorn's default would end it
        # after 1000 requests, which real providers never do.
        config.keep_alive_max_requests = 2**31
        config.graceful_timeout = 1
        config.accesslog = None
        config.errorlog = None
        self.loop = asyncio.new_event_loop()
        self.stopping: asyncio.Event | None = None

        async def main() -> None:
            self.stopping = asyncio.Event()
            asyncio.get_running_loop().set_exception_handler(_ignore_disconnects)
            await serve(app, config, shutdown_trigger=self.stopping.wait)
            # Clients keep their HTTP/2 connections open: end them before the loop goes, quietly
            # (cancelled connection tasks are the expected end here, not errors).
            asyncio.get_running_loop().set_exception_handler(lambda loop, context: None)
            others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        self.thread = threading.Thread(
            target=self.loop.run_until_complete, args=(main(),), daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("fake provider did not start")

    def stop(self) -> None:
        if self.stopping is not None:
            self.loop.call_soon_threadsafe(self.stopping.set)
        self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()


class PushFakes:
    """Both fakes, their TLS material and signing keys, and the settings that point at them.

    The material lives in `directory`; a process that finds it there reuses it, so fakes started
    in separate processes (`only="apns"`, `only="fcm"`) share one CA and one set of keys.
    """

    def __init__(self, directory: Path, only: str | None = None) -> None:
        if not (directory / "ca.pem").exists():
            self.write_material(directory)
        self.ca_file = directory / "ca.pem"
        certfile, keyfile = directory / "server.pem", directory / "server.key"
        self.apns_key_file = directory / "AuthKey.p8"
        self.fcm_credentials_file = directory / "service-account.json"
        apns_key = serialization.load_pem_private_key(self.apns_key_file.read_bytes(), None)
        fcm_key = serialization.load_pem_private_key(
            json.loads(self.fcm_credentials_file.read_text())["private_key"].encode(), None
        )
        self.apns = FakeApns(_public_pem(apns_key))
        # The FCM fake serves the token endpoint too; its URI is a setting like the real one.
        self.fcm = FakeFcm(_public_pem(fcm_key), token_uri="")
        self.apns_server = self.fcm_server = None
        if only in (None, "apns"):
            self.apns_server = TlsServer(self.apns, certfile, keyfile)
        if only in (None, "fcm"):
            self.fcm_server = TlsServer(self.fcm, certfile, keyfile)
            self.fcm.token_uri = f"{self.fcm_server.url}/token"

    @staticmethod
    def write_material(directory: Path) -> None:
        """A CA and a loopback certificate, an APNs ES256 key and an FCM service account."""
        directory.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        cert.cert_chain_pems[0].write_to_path(str(directory / "server.pem"))
        cert.private_key_pem.write_to_path(str(directory / "server.key"))
        (directory / "AuthKey.p8").write_bytes(
            _private_pem(ec.generate_private_key(ec.SECP256R1()))
        )
        fcm_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (directory / "service-account.json").write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": FCM_PROJECT,
                    "private_key_id": "k1",
                    "private_key": _private_pem(fcm_key).decode(),
                    "client_email": FCM_CLIENT_EMAIL,
                    "token_uri": "https://oauth2.googleapis.com/token",
                }
            )
        )
        # Written last: its presence says the material is complete.
        ca.cert_pem.write_to_path(str(directory / "ca.pem"))

    def settings(self) -> dict[str, Any]:
        values: dict[str, Any] = {"NOTIFYHUB_PUSH_CA_FILE": str(self.ca_file)}
        if self.apns_server is not None:
            values.update(
                NOTIFYHUB_APNS_URL=self.apns_server.url,
                NOTIFYHUB_APNS_KEY_ID=APNS_KEY_ID,
                NOTIFYHUB_APNS_TEAM_ID=APNS_TEAM_ID,
                NOTIFYHUB_APNS_KEY_FILE=str(self.apns_key_file),
            )
        if self.fcm_server is not None:
            values.update(
                NOTIFYHUB_FCM_URL=self.fcm_server.url,
                NOTIFYHUB_FCM_TOKEN_URI=self.fcm.token_uri,
                NOTIFYHUB_FCM_CREDENTIALS_FILE=str(self.fcm_credentials_file),
            )
        return values

    def env(self) -> dict[str, str]:
        """The same settings as environment variables, for worker processes."""
        return {name: str(value) for name, value in self.settings().items()}

    def reset(self) -> None:
        self.apns.reset()
        self.fcm.reset()

    def stop(self) -> None:
        for server in (self.apns_server, self.fcm_server):
            if server is not None:
                server.stop()
