"""The Redis broker transport (detektr_project/redis_transport.py) against a real Redis:
messages published, consumed and acknowledged through one Redis client per channel."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from kombu import Connection, Queue
from kombu.transport import pyamqp

from detektr_project.celery import app
from detektr_project.redis_transport import Transport
from tests.conftest import REDIS_UNIT_URL

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"


def test_celery_uses_it_for_a_redis_broker_and_kombu_s_own_for_rabbitmq(settings):
    with app.connection_for_write() as connection:
        assert isinstance(connection.transport, Transport)
    # A broker URL set after start-up (`celery -b`, a test) picks its transport by scheme.
    for url, transport in ((REDIS_UNIT_URL, Transport), (AMQP_URL, pyamqp.Transport)):
        with Connection(url) as connection:
            assert type(connection.transport) is transport


@pytest.fixture
def clients_made(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the redis.Redis objects built from now on."""
    made: list[int] = []
    build = redis.Redis.__init__

    def counting(self: redis.Redis, *args: Any, **kwargs: Any) -> None:
        made.append(1)
        build(self, *args, **kwargs)

    monkeypatch.setattr(redis.Redis, "__init__", counting)
    return made


def test_a_hundred_messages_through_a_channel_build_no_client_each(clients_made):
    queue = Queue("detektr-transport-test")
    with Connection(REDIS_UNIT_URL, transport=Transport) as connection:
        channel: Any = connection.default_channel  # a detektr_project.redis_transport.Channel
        queue(channel).declare()
        queue(channel).purge()
        producer = connection.Producer(channel)
        for number in range(100):
            producer.publish({"n": number}, routing_key=queue.name, declare=[queue])
        received = []
        channel.basic_qos(prefetch_count=1)
        for _ in range(100):
            message = queue(channel).get(no_ack=False)
            assert message is not None
            received.append(message.payload["n"])
            message.ack()
        assert received == list(range(100))
        assert channel.qos.can_consume()  # every acknowledgement reached the unacked index
    assert len(clients_made) <= 3  # kombu's own transport builds one or two per message


def test_the_client_follows_a_pool_kombu_replaced():
    with Connection(REDIS_UNIT_URL, transport=Transport) as connection:
        channel: Any = connection.default_channel
        first = channel._create_client()
        assert channel._create_client() is first
        channel._disconnect_pools()  # what kombu does after a connection error
        again = channel._create_client()
        assert again is not first and again.connection_pool is channel.pool
        assert again.ping()
