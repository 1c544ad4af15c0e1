"""The Redis broker transport (detektr_project/redis_transport.py) against a real Redis:
messages published, consumed and acknowledged through one Redis client per channel, and a
connection holding messages closed cleanly when Redis goes away."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis
from kombu import Connection, Queue
from kombu.transport import pyamqp

from detektr_project.celery import app
from detektr_project.redis_transport import Transport
from tests.conftest import REDIS_UNIT_URL
from tests.e2e.services import RedisServer

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


def test_a_connection_holding_a_message_closes_cleanly_when_redis_goes_away(tmp_path):
    # What Celery's consumer does when its broker connection drops (consumer.py,
    # on_connection_error_after_connected): collect the broken connection, then close it.
    # The task channel holds an unacknowledged message and another channel waits in BRPOP;
    # kombu 5.7's close raised AttributeError(... 'hostname') there, and the worker ended.
    server = RedisServer(tmp_path)
    server.start()
    options = {"visibility_timeout": 1}
    try:
        connection = Connection(server.url, transport=Transport, transport_options=options)
        held = []
        tasks, idle = Queue("held", routing_key="held"), Queue("idle", routing_key="idle")
        connection.Producer().publish({"frame": 1}, routing_key="held", declare=[tasks])
        connection.Consumer([tasks], callbacks=[lambda body, _: held.append(body)]).consume()
        connection.Consumer([idle], channel=connection.channel()).consume()
        connection.drain_events(timeout=5)
        assert held == [{"frame": 1}]
        with pytest.raises(TimeoutError):  # both channels now wait in BRPOP
            connection.drain_events(timeout=0.2)
        server.stop()
        connection.collect(socket_timeout=1)
        connection.close()  # raised AttributeError before
        server.start()
        time.sleep(options["visibility_timeout"] + 0.1)
        # Nothing lost: the held message comes back to its queue after the visibility
        # timeout, as it does for a worker that was killed.
        with Connection(server.url, transport=Transport, transport_options=options) as again:
            restoring: Any = again.default_channel  # a detektr_project.redis_transport.Channel
            restoring.qos.restore_visible()
        back = redis.Redis.from_url(server.url)
        assert back.llen("held") == 1 and back.hlen("unacked") == 0
    finally:
        server.stop()
