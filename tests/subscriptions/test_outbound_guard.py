"""The SSRF guard of notifyhub/http.py: only public addresses, the checked address, no redirects."""

import ipaddress
import ssl
import threading
import time

import pytest
import trustme

from notifyhub.http import (
    SPECIAL_PURPOSE_NETWORKS,
    OutboundError,
    OutboundPolicy,
    OutboundRefused,
    OutboundTimeout,
    address_refusal,
    guarded_post,
    outbound_client,
    parse_networks,
)
from subscriptions.models import Delivery
from subscriptions.webhooks import deliveries_send
from tests.receivers import Behaviour, receiving
from tests.subscriptions.factories import delivery_of, ingest, push_subscription

CLOSED = OutboundPolicy(connect_timeout=2, total_timeout=5, max_response_bytes=1024)
LOOPBACK_V4 = OutboundPolicy(
    connect_timeout=2,
    total_timeout=5,
    max_response_bytes=1024,
    allowed_networks=parse_networks(["127.0.0.0/8"]),
)


@pytest.fixture
def client():
    with outbound_client(max_connections=4) as client:
        yield client


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[64:ff9b::7f00:1]/hook",
        "http://[2002:7f00:1::]/hook",
        "http://100.64.0.1/hook",
        "http://localhost/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_non_public_destinations_are_refused_before_connecting(client, url):
    with pytest.raises(OutboundRefused) as refused:
        guarded_post(url=url, content=b"{}", headers={}, policy=CLOSED, client=client)
    assert "refused" in refused.value.reason


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "gopher://x/"])
def test_only_http_and_https_are_spoken(client, url):
    with pytest.raises(OutboundRefused, match="scheme"):
        guarded_post(url=url, content=b"{}", headers={}, policy=LOOPBACK_V4, client=client)


def test_public_addresses_pass_the_check():
    assert address_refusal(ipaddress.ip_address("93.184.215.14"), ()) is None
    assert address_refusal(ipaddress.ip_address("2606:4700::1111"), ()) is None


@pytest.mark.parametrize(
    ("network", "name"), SPECIAL_PURPOSE_NETWORKS, ids=[str(n) for n, _ in SPECIAL_PURPOSE_NETWORKS]
)
def test_every_special_purpose_block_is_refused_by_name(network, name):
    inside = network.network_address + network.num_addresses // 2
    reason = address_refusal(inside, ())
    assert reason is not None
    assert f"{network} ({name})" in reason


@pytest.mark.parametrize(
    "address",
    [
        "224.0.0.1",  # multicast, which Python 3.11's is_global passes
        "239.255.255.250",
        "ff0e::1",
        "fec0::1",  # site local, passed by is_global
        "::ffff:0:10.0.0.1",  # IPv4-translated, passed by is_global
        "100::1",
        "2001:db8::1",
        "3fff::1",
        "5f00::1",
        "4000::1",  # outside 2000::/3: not global unicast
        "255.255.255.255",
    ],
)
def test_addresses_python_calls_global_but_are_not_public_unicast_are_refused(address):
    assert address_refusal(ipaddress.ip_address(address), ()) is not None


@pytest.mark.parametrize(
    ("address", "embedded_block"),
    [
        ("::ffff:10.0.0.1", "10.0.0.0/8"),
        ("::ffff:127.0.0.1", "127.0.0.0/8"),
        ("::ffff:169.254.169.254", "169.254.0.0/16"),
        ("::10.0.0.1", "10.0.0.0/8"),
        ("::192.168.1.1", "192.168.0.0/16"),
        ("::ffff:0:172.16.0.1", "172.16.0.0/12"),
    ],
)
def test_ipv6_spellings_of_private_ipv4_are_refused_naming_the_embedded_address(
    address, embedded_block
):
    reason = address_refusal(ipaddress.ip_address(address), ())
    assert reason is not None
    assert embedded_block in reason


def test_an_allowed_network_wins_over_the_special_purpose_table():
    allowed = parse_networks(["10.1.0.0/16", "fd00::/8"])
    assert address_refusal(ipaddress.ip_address("10.1.2.3"), allowed) is None
    assert address_refusal(ipaddress.ip_address("fd00::5"), allowed) is None
    assert address_refusal(ipaddress.ip_address("10.2.0.1"), allowed) is not None


def test_name_resolution_is_bounded_by_the_delivery_deadline(client):
    resolver_released = threading.Event()

    def hanging_resolver(host: str, port: int) -> list[str]:
        resolver_released.wait(30)  # A DNS server that never answers.
        return ["127.0.0.1"]

    policy = OutboundPolicy(
        connect_timeout=1,
        total_timeout=1,
        max_response_bytes=1024,
        allowed_networks=parse_networks(["127.0.0.0/8"]),
        resolve=hanging_resolver,
    )
    try:
        start = time.monotonic()
        with pytest.raises(OutboundTimeout) as timed_out:
            guarded_post(
                url="http://slow-dns.test/hook",
                content=b"{}",
                headers={},
                policy=policy,
                client=client,
            )
        assert time.monotonic() - start < 10  # Not the resolver's 30 s.
        assert timed_out.value.reason == "resolving 'slow-dns.test' took longer than 1.0s"
    finally:
        resolver_released.set()


def test_a_connection_is_reused_only_for_the_host_name_it_verified():
    # Two names on one loopback address and port; the receiver's certificate covers one of them.
    authority = trustme.CA()
    certificate = authority.issue_cert("good.test")
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(server_tls)
    client_tls = ssl.create_default_context()
    authority.configure_trust(client_tls)
    policy = OutboundPolicy(
        connect_timeout=2,
        total_timeout=5,
        max_response_bytes=1024,
        allowed_networks=parse_networks(["127.0.0.0/8"]),
        resolve=lambda host, port: ["127.0.0.1"],
    )
    with (
        outbound_client(max_connections=4, ssl_context=client_tls) as client,
        receiving(tls=server_tls) as receiver,
    ):
        good = guarded_post(
            url=f"https://good.test:{receiver.port}/hook",
            content=b"{}",
            headers={},
            policy=policy,
            client=client,
        )
        assert good.status_code == 200
        with pytest.raises(OutboundError) as refused:
            guarded_post(
                url=f"https://evil.test:{receiver.port}/hook",
                content=b"{}",
                headers={},
                policy=policy,
                client=client,
            )
        assert "CERTIFICATE_VERIFY_FAILED" in refused.value.reason
        assert [request.headers["host"] for request in receiver.requests] == [
            f"good.test:{receiver.port}"
        ]
        # The first name still rides its pooled connection.
        again = guarded_post(
            url=f"https://good.test:{receiver.port}/hook",
            content=b"{}",
            headers={},
            policy=policy,
            client=client,
        )
        assert again.status_code == 200


def test_an_allowed_network_opens_only_itself(client):
    allowed = parse_networks(["127.0.0.0/8"])
    assert address_refusal(ipaddress.ip_address("127.0.0.1"), allowed) is None
    # The IPv4-mapped form of an allowed IPv4 address is still refused: it is another address.
    assert address_refusal(ipaddress.ip_address("::ffff:127.0.0.1"), allowed) is not None
    assert address_refusal(ipaddress.ip_address("::1"), allowed) is not None


def test_localhost_is_refused_even_when_ipv4_loopback_is_allowed_if_it_also_resolves_to_ipv6(
    client,
):
    # Every address a name resolves to is checked; localhost commonly has ::1 as well. Where it
    # has only 127.0.0.1 the send goes through, to the checked address.
    with receiving() as receiver:
        url = f"http://localhost:{receiver.port}/hook"
        try:
            response = guarded_post(
                url=url, content=b"{}", headers={}, policy=LOOPBACK_V4, client=client
            )
        except OutboundRefused as refused:
            reason = refused.reason
        else:
            reason = ""
            assert response.status_code == 200
            assert receiver.requests[0].headers["host"] == f"localhost:{receiver.port}"
    if reason:
        assert "::1" in reason
        assert receiver.requests == []


def test_the_request_goes_to_the_checked_address_with_the_original_host_header(client):
    with receiving() as receiver:
        response = guarded_post(
            url=receiver.url, content=b"{}", headers={}, policy=LOOPBACK_V4, client=client
        )
    assert response.status_code == 200
    assert receiver.requests[0].headers["host"] == f"127.0.0.1:{receiver.port}"


def test_a_redirect_is_not_followed(client):
    with receiving() as inside:
        redirect = Behaviour(status=302, headers={"location": inside.url})
        with receiving(redirect) as outside:
            response = guarded_post(
                url=outside.url, content=b"{}", headers={}, policy=LOOPBACK_V4, client=client
            )
        assert response.status_code == 302
        assert inside.requests == []


def test_the_answer_is_cut_at_the_size_cap(client):
    with receiving(Behaviour(body=b"x" * 10_000)) as receiver:
        response = guarded_post(
            url=receiver.url, content=b"{}", headers={}, policy=LOOPBACK_V4, client=client
        )
    assert response.truncated
    assert len(response.body) == 1024


def test_a_head_that_never_ends_is_cut_at_the_total_timeout():
    # Each header line arrives well within the read timeout; only a deadline for the whole
    # exchange ends the request.
    policy = OutboundPolicy(
        connect_timeout=1,
        total_timeout=1,
        max_response_bytes=1024,
        allowed_networks=parse_networks(["127.0.0.0/8"]),
    )
    with (
        outbound_client(max_connections=1) as client,
        receiving(Behaviour(trickle_headers=0.1)) as receiver,
    ):
        with pytest.raises(OutboundTimeout):
            guarded_post(url=receiver.url, content=b"{}", headers={}, policy=policy, client=client)
        assert len(receiver.requests) == 1
        assert not receiver.behaviour.release.is_set()  # cut by the sender, not by the receiver


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://localhost/hook",
    ],
)
def test_a_refused_delivery_fails_with_the_reason(settings, consumer, url):
    settings.NOTIFYHUB_WEBHOOK_ALLOWED_NETWORKS = []
    subscription = push_subscription(client_id=consumer.client_id, url=url)
    event_id = ingest()

    deliveries_send()

    delivery = delivery_of(subscription=subscription, event_id=event_id)
    assert delivery.status == Delivery.Status.FAILED
    assert delivery.last_error.startswith("refused")
    attempt = delivery.attempt_log.get()
    assert attempt.status_code is None
    assert attempt.error == delivery.last_error


@pytest.mark.django_db
def test_a_redirecting_receiver_fails_the_delivery_and_the_target_gets_nothing(consumer):
    with receiving() as inside:
        with receiving(Behaviour(status=307, headers={"location": inside.url})) as outside:
            subscription = push_subscription(client_id=consumer.client_id, url=outside.url)
            event_id = ingest()
            deliveries_send()
        assert inside.requests == []
    delivery = delivery_of(subscription=subscription, event_id=event_id)
    assert delivery.status == Delivery.Status.FAILED
    assert delivery.last_status_code == 307
    assert "redirects are not followed" in delivery.last_error
