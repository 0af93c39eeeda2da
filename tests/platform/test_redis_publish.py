"""notifyhub.redis.redis_publish: the stream bus's PUBLISH on a connection its thread keeps."""

import time

from notifyhub import redis as hub_redis
from notifyhub.redis import redis_client, redis_key, redis_publish


def received(pubsub, count: int) -> list[bytes]:
    messages: list[bytes] = []
    deadline = time.monotonic() + 5
    while len(messages) < count and time.monotonic() < deadline:
        message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
        if message is not None:
            messages.append(message["data"])
    return messages


def test_a_publish_reaches_subscribers_and_survives_its_connection_being_killed():
    channel = redis_key("test-publish")
    pubsub = redis_client().pubsub()
    pubsub.subscribe(channel)
    try:
        redis_publish(channel, "one")
        connection = hub_redis._publisher.connection
        connection.send_command("CLIENT", "ID")
        redis_client().client_kill_filter(_id=connection.read_response())
        redis_publish(channel, "two")  # Finds its connection dead, reconnects, sends again.
        assert received(pubsub, 2) == [b"one", b"two"]
        assert hub_redis._publisher.connection is connection  # The same object, reconnected.
    finally:
        pubsub.close()
