"""The Kazoo push notification subscription document, both ways: its shape (`KazooDevice`),
its validation against Kazoo's schema (a request's `data`, into a `DeviceDocument` for the
services), and its rendering from a stored device. The envelope around it is `kazoo.py`'s."""

import re
from datetime import datetime
from typing import Any, TypedDict

from devices.models import Device, Preference, Registration
from devices.services import DeviceDocument, RegistrationSpec
from notifyhub import errors
from notifyhub.formats import UNSTORABLE_MESSAGE, iso_utc, unstorable_char

Problems = dict[str, dict[str, dict[str, Any]]]

# A push token goes into the APNs request path: only the characters real tokens use.
TOKEN_REGEX = re.compile(r"^[A-Za-z0-9:_.\-]{1,1024}$")
TEXT_LIMITS = {"mobile_device_id": 255, "sip_proxy_server": 255, "app_name": 128}


class KazooRegistration(TypedDict):
    """One push token's entry in `notification_registration_ids`."""

    notification_preferences: list[str]  # Preference.Name values
    notification_type: str  # Registration.Provider: "apns" or "fcm"
    push_type: str  # Registration.PushType (ours; a Kazoo client ignores it)


class KazooDeactivation(TypedDict):
    reason: str


class KazooReadOnly(TypedDict):
    """`_read_only`: what the hub adds and a client cannot write."""

    created: str  # kazoo_seconds
    modified: str
    deactivated_registration_ids: dict[str, KazooDeactivation]


class KazooDevice(TypedDict):
    """The document as the Device API answers it (`data` of its envelope; DeviceOutput)."""

    id: str
    app_name: str
    mobile_device_id: str
    notification_registration_ids: dict[str, KazooRegistration]
    platform: str  # Device.Platform
    sip_proxy_server: str
    _read_only: KazooReadOnly


def kazoo_seconds(value: datetime) -> str:
    """A timestamp as Kazoo writes it: whole seconds (the platform's format, to the second)."""
    return iso_utc(value.replace(microsecond=0))


class DeviceInvalid(errors.ValidationFailed):
    """The document breaks the schema; `problems` maps each field to the rules it breaks."""

    description = "invalid data"

    def __init__(self, problems: Problems) -> None:
        super().__init__("invalid data")
        self.problems = problems


def _problem(problems: Problems, where: str, rule: str, message: str, **extra: Any) -> None:
    problems.setdefault(where, {})[rule] = {"message": message, **extra}


def _text(problems: Problems, data: dict[str, Any], key: str) -> str:
    if key not in data:
        _problem(problems, key, "required", "Field is required but missing")
        return ""
    value = data[key]
    if not isinstance(value, str):
        _problem(problems, key, "type", "Value did not match type(s): string", target="string")
        return ""
    if not value.strip():
        _problem(problems, key, "minLength", "String must be at least 1 characters", target=1)
    elif unstorable_char(value) is not None:
        _problem(problems, key, "format", f"String {UNSTORABLE_MESSAGE}")
    elif len(value) > TEXT_LIMITS[key]:
        _problem(
            problems,
            key,
            "maxLength",
            f"String must not be more than {TEXT_LIMITS[key]} characters",
            target=TEXT_LIMITS[key],
        )
    return value


def _enum(problems: Problems, where: str, value: Any, allowed: list[str]) -> None:
    if not isinstance(value, str):
        _problem(problems, where, "type", "Value did not match type(s): string", target="string")
    elif value not in allowed:
        _problem(
            problems, where, "enum", "Value not found in enumerated list of values", target=allowed
        )


def _registrations(problems: Problems, value: Any) -> list[RegistrationSpec]:
    key = "notification_registration_ids"
    if not isinstance(value, dict):
        _problem(problems, key, "type", "Value did not match type(s): object", target="object")
        return []
    if not value:
        _problem(problems, key, "minProperties", "Object must have at least 1 property", target=1)
    specs: list[RegistrationSpec] = []
    claimed: dict[str, str] = {}  # preference -> the registration id that asked for it first
    for token, spec in value.items():
        where = f"{key}.{token}"
        if not TOKEN_REGEX.match(token):
            _problem(
                problems,
                where,
                "pattern",
                "Registration id must be 1-1024 of A-Z a-z 0-9 : _ . -",
                target=TOKEN_REGEX.pattern,
            )
        if not isinstance(spec, dict):
            _problem(
                problems, where, "type", "Value did not match type(s): object", target="object"
            )
            continue
        before = len(problems)
        if "notification_type" not in spec:
            _problem(
                problems, f"{where}.notification_type", "required", "Field is required but missing"
            )
        else:
            _enum(
                problems,
                f"{where}.notification_type",
                spec["notification_type"],
                list(Registration.Provider.values),
            )
        push_type = spec.get("push_type", Registration.PushType.ALERT)
        _enum(problems, f"{where}.push_type", push_type, list(Registration.PushType.values))
        prefs_where = f"{where}.notification_preferences"
        prefs = spec.get("notification_preferences")
        if "notification_preferences" not in spec:
            _problem(problems, prefs_where, "required", "Field is required but missing")
        elif not isinstance(prefs, list):
            _problem(
                problems, prefs_where, "type", "Value did not match type(s): array", target="array"
            )
        else:
            for index, preference in enumerate(prefs):
                _enum(problems, f"{prefs_where}.{index}", preference, list(Preference.Name.values))
            if len(prefs) != len({str(p) for p in prefs}):
                _problem(problems, prefs_where, "uniqueItems", "Array items must be unique")
            for preference in prefs:
                if isinstance(preference, str) and preference in claimed:
                    _problem(
                        problems,
                        prefs_where,
                        "unique",
                        f"Preference {preference!r} is already set on registration id "
                        f"{claimed[preference]!r}; a preference may appear under only one",
                        target=preference,
                    )
                elif isinstance(preference, str):
                    claimed[preference] = token
        if len(problems) == before:
            specs.append(
                RegistrationSpec(
                    token=token,
                    notification_type=spec["notification_type"],
                    notification_preferences=list(prefs or []),
                    push_type=push_type,
                )
            )
    return specs


def device_document_validate(*, app_name: str, data: Any) -> DeviceDocument:
    """Check a document against the Kazoo schema; every broken rule is named at once."""
    problems: Problems = {}
    if not isinstance(data, dict):
        raise DeviceInvalid(
            {
                "data": {
                    "type": {"message": "Value did not match type(s): object", "target": "object"}
                }
            }
        )
    if "app_name" in data and data["app_name"] != app_name:
        _problem(
            problems,
            "app_name",
            "enum",
            "Value must match the application in the path",
            target=[app_name],
        )
    mobile_device_id = _text(problems, data, "mobile_device_id")
    sip_proxy_server = _text(problems, data, "sip_proxy_server")
    if "platform" not in data:
        _problem(problems, "platform", "required", "Field is required but missing")
    else:
        _enum(problems, "platform", data["platform"], list(Device.Platform.values))
    registrations: list[RegistrationSpec] = []
    if "notification_registration_ids" not in data:
        _problem(
            problems, "notification_registration_ids", "required", "Field is required but missing"
        )
    else:
        registrations = _registrations(problems, data["notification_registration_ids"])
    if problems:
        raise DeviceInvalid(problems)
    return DeviceDocument(
        app_name=app_name,
        mobile_device_id=mobile_device_id,
        platform=data["platform"],
        sip_proxy_server=sip_proxy_server,
        registrations=registrations,
    )


def kazoo_device_document(device: Device) -> KazooDevice:
    """The stored device as the Kazoo document DeviceOutput renders."""
    registrations = list(device.registrations.all())
    return {
        "id": device.device_id,
        "app_name": device.app_name,
        "mobile_device_id": device.mobile_device_id,
        "notification_registration_ids": {
            registration.token: {
                "notification_preferences": [p.name for p in registration.preferences.all()],
                "notification_type": registration.notification_type,
                "push_type": registration.push_type,
            }
            for registration in registrations
        },
        "platform": device.platform,
        "sip_proxy_server": device.sip_proxy_server,
        "_read_only": {
            "created": kazoo_seconds(device.created_at),
            "modified": kazoo_seconds(device.updated_at),
            "deactivated_registration_ids": {
                registration.token: {"reason": registration.deactivation_reason}
                for registration in registrations
                if not registration.active
            },
        },
    }
