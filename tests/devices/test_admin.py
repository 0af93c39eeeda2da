"""The devices console: devices with tokens and preferences, deactivations, pushes, test push."""

import pytest

from devices.api.kazoo_document import device_document_validate
from devices.models import Device, DevicePush, PushAttempt, Registration
from devices.services import device_create, registration_deactivate
from notifyhub.models import Account
from tests.devices.conftest import device_callbacks

pytestmark = pytest.mark.django_db

TOKEN = "d" * 64


@pytest.fixture
def operator(client, django_user_model):
    user = django_user_model.objects.create_superuser("op", "op@example.com", "pw")
    client.force_login(user)
    return client


@pytest.fixture
def device(db) -> Device:
    Account.objects.create(id="acme")
    document = device_document_validate(
        app_name="com.acme.phone",
        data={
            "mobile_device_id": "m1",
            "platform": "ios",
            "sip_proxy_server": "sip.test",
            "notification_registration_ids": {
                TOKEN: {"notification_preferences": ["chat"], "notification_type": "apns"},
                "e" * 64: {
                    "notification_preferences": ["incoming_call"],
                    "notification_type": "apns",
                },
            },
        },
    )
    return device_create(
        account_id="acme", app_name="com.acme.phone", device_id="desk", document=document
    )


@pytest.mark.parametrize(
    "path",
    [
        "/admin/devices/device/",
        "/admin/devices/registration/",
        "/admin/devices/registration/?active__exact=0",
        "/admin/devices/devicepush/",
        "/admin/devices/pushattempt/",
    ],
)
def test_admin_lists_render(operator, device, path):
    assert operator.get(path).status_code == 200


def test_device_page_shows_tokens_preferences_and_deactivation_reasons(operator, device):
    registration_deactivate(
        registration_id=Registration.objects.get(token=TOKEN).pk, reason="Unregistered"
    )
    content = operator.get(f"/admin/devices/device/{device.pk}/change/").content.decode()
    assert TOKEN in content
    assert "incoming_call" in content
    assert "Unregistered" in content


def test_admin_index_counts_devices(operator, device):
    content = operator.get("/admin/").content.decode()
    assert "Devices" in content


def test_send_test_push_queues_a_push_per_active_token(
    operator, device, django_capture_on_commit_callbacks
):
    Registration.objects.filter(token=TOKEN).update(active=False)
    with django_capture_on_commit_callbacks() as callbacks:
        response = operator.post(
            "/admin/devices/device/",
            {"action": "send_test_push", "_selected_action": [device.pk]},
        )
    assert response.status_code == 302
    [push] = DevicePush.objects.all()
    assert push.registration.token == "e" * 64
    assert push.event.type_id == "device_test"
    assert len(device_callbacks(callbacks)) == 1


def test_send_test_push_delivers_to_the_fake_apns(operator, device, push_fakes):
    from devices.services import device_pushes_send

    operator.post(
        "/admin/devices/device/", {"action": "send_test_push", "_selected_action": [device.pk]}
    )
    device_pushes_send(push_ids=list(DevicePush.objects.values_list("pk", flat=True)))
    assert {request["token"] for request in push_fakes.apns.requests} == {TOKEN, "e" * 64}
    assert PushAttempt.objects.filter(status_code=200).count() == 2
