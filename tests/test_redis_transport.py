"""The Redis broker transport (detektr_project/redis_transport.py) against a real Redis:
messages published, consumed and acknowledged through one Redis client per channel, and a
message published while another is handled held until that one's acknowledgement."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from kombu import Connection, Message, Queue
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


INBOX, OUTBOX = Queue("detektr-transport-inbox"), Queue("detektr-transport-outbox")


def another_database(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{(int(parts.path.strip('/')) + 1) % 16}"))


@pytest.fixture
def handle_one() -> Iterator[Callable[..., Message]]:
    """handle_one(publish_to=REDIS_UNIT_URL, no_ack=False): a message delivered from INBOX to
    a callback that publishes to OUTBOX through another connection (as a worker's task
    publishes through Celery's producer pool), as a solo worker runs a task; returns the
    message, not yet settled."""
    with Connection(REDIS_UNIT_URL, transport=Transport) as consumer:
        channel: Any = consumer.default_channel
        for queue in (INBOX, OUTBOX):
            queue(channel).declare()
            queue(channel).purge()
        consumer.Producer().publish({"n": 1}, routing_key=INBOX.name)

        def handle(publish_to: str = REDIS_UNIT_URL, no_ack: bool = False) -> Message:
            received: list[Message] = []
            with Connection(publish_to, transport=Transport) as connection:
                producer = connection.Producer()

                def callback(body: dict[str, int], message: Message) -> None:
                    producer.publish({"next": body["n"]}, routing_key=OUTBOX.name)
                    received.append(message)

                with consumer.Consumer(INBOX, callbacks=[callback], no_ack=no_ack):
                    consumer.drain_events(timeout=10)
            return received[0]

        yield handle
    redis.Redis.from_url(another_database(REDIS_UNIT_URL)).delete(OUTBOX.name)


def waiting(queue: Queue, url: str = REDIS_UNIT_URL) -> int:
    return int(redis.Redis.from_url(url).llen(queue.name))


def test_what_a_handled_message_publishes_goes_out_with_its_acknowledgement(handle_one):
    message = handle_one()
    assert waiting(OUTBOX) == 0  # held: the task's message is not acknowledged yet
    message.ack()
    assert waiting(OUTBOX) == 1
    unacked = redis.Redis.from_url(REDIS_UNIT_URL)
    assert not unacked.hexists("unacked", message.delivery_tag)
    assert unacked.zscore("unacked_index", message.delivery_tag) is None


def test_a_requeued_message_s_publishes_still_go_out(handle_one):
    message = handle_one()
    message.reject(requeue=True)
    assert waiting(OUTBOX) == 1  # as kombu's own transport would have published them
    assert waiting(INBOX) == 1  # and the message is back for another try


def test_a_no_ack_consumer_s_publishes_go_out_at_once(handle_one):
    """Celery's control replies are published from such a consumer's callback."""
    handle_one(no_ack=True)
    assert waiting(OUTBOX) == 1


def test_a_publish_to_another_redis_is_not_held(handle_one):
    """The acknowledgement's transaction can only carry keys of its own server and database."""
    elsewhere = another_database(REDIS_UNIT_URL)
    redis.Redis.from_url(elsewhere).delete(OUTBOX.name)
    message = handle_one(publish_to=elsewhere)
    assert waiting(OUTBOX, elsewhere) == 1
    message.ack()
    assert waiting(OUTBOX) == 0
