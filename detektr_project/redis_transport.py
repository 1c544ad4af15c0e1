"""kombu's Redis transport, with one redis.Redis client per channel instead of one per call.

kombu's Redis channel builds a new `redis.Redis` object whenever it talks to Redis without a
client at hand: for every acknowledgement, every unacknowledged-message record and every
publish. With redis-py 8 each object copies its response callbacks (about 60 µs here), some
eight times per frame across the three stages (docs/performance.md). redis-py clients are
thread-safe and take their connections from the channel's pool, so one client per pool
serves them all; when kombu replaces the pool after a connection error, the client follows.

`use_for_redis_urls()` (called where the Celery app is made) points kombu's transport alias
table at it for redis:// and rediss:// URLs, so it follows the broker URL wherever that is
set (settings, `celery -b`, a test) and an amqp:// broker keeps kombu's AMQP transport.

A message published while a delivered message is being handled in the same thread (a solo
worker runs the task there, so: the chain's next link, a retry) is held until that message
is acknowledged and goes out in the acknowledgement's MULTI/EXEC: one round trip less per
hop, and the next link and the ack happen together or not at all (a message not acknowledged
is redelivered and its task publishes again). A prefork or threads worker runs its tasks
elsewhere and publishes as kombu does.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from kombu import transport as kombu_transport
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.json import dumps

Publish = tuple["Channel", str, dict[str, Any]]  # (channel, queue, message) as kombu's _put


@dataclass
class Delivery:
    """The message whose callback is running in this thread, and what it published."""

    qos: QoS
    tag: str
    held: list[Publish] = field(default_factory=list)


DELIVERING = object()  # in Transport._deliver, before the consumer's QoS records the message
_delivery: ContextVar[Delivery | object | None] = ContextVar("detektr_delivery", default=None)


class QoS(kombu_redis.QoS):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.held: dict[str, list[Publish]] = {}  # by delivery tag, until its ack

    def append(self, message: Any, delivery_tag: str) -> None:
        super().append(message, delivery_tag)
        if _delivery.get() is DELIVERING:  # not basic_get's, nor a no_ack consumer's
            _delivery.set(Delivery(self, delivery_tag))

    def take(self, delivery_tag: str) -> list[Publish]:
        held = self.held.pop(delivery_tag, [])
        current = _delivery.get()
        if isinstance(current, Delivery) and current.qos is self and current.tag == delivery_tag:
            held, current.held = held + current.held, []  # settled while its callback runs
        return held

    def ack(self, delivery_tag: str) -> None:
        held = self.take(delivery_tag)
        if not held:
            return super().ack(delivery_tag)  # type: ignore[no-any-return]
        with self.pipe_or_acquire() as pipe:  # this channel's server: Channel._put checked
            self.push(pipe, held)
            self._remove_from_indices(delivery_tag, pipe).execute()  # type: ignore[attr-defined]
        virtual.QoS.ack(self, delivery_tag)

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        held = self.take(delivery_tag)
        if held:  # what the task published stands, as without holding
            with self.pipe_or_acquire() as pipe:
                self.push(pipe, held).execute()
        super().reject(delivery_tag, requeue=requeue)

    @staticmethod
    def push(pipe: Any, held: list[Publish]) -> Any:
        for channel, queue, message in held:
            pipe.lpush(channel.queue_key(queue, message), dumps(message))
        return pipe

    def restore_unacked(self, client: Any = None) -> None:
        self.held.clear()  # their messages go back to the queue: the tasks will publish again
        super().restore_unacked(client)


class Channel(kombu_redis.Channel):
    QoS = QoS
    _sync_client: Any = None

    def queue_key(self, queue: str, message: dict[str, Any]) -> str:
        priority = self._get_message_priority(message, reverse=False)
        return self._q_for_pri(queue, priority)  # type: ignore[attr-defined,no-any-return]

    def server(self) -> tuple[str, str]:
        """Where this channel's keys live: two channels alike can share a transaction."""
        client: Any = self.connection.client
        return client.as_uri(include_password=True), self.global_keyprefix

    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        delivery = _delivery.get()
        consumer: Any = delivery.qos.channel if isinstance(delivery, Delivery) else None
        if (
            not isinstance(delivery, Delivery)
            or kwargs.get("_publish_batch") is not None
            or (self._expires and queue in self._expires)  # type: ignore[attr-defined]
            or consumer.server() != self.server()
        ):
            return super()._put(queue, message, **kwargs)  # type: ignore[no-any-return]
        delivery.held.append((self, queue, message))

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:
            return super()._create_client(asynchronous=True)  # type: ignore[misc]
        client = self._sync_client
        if client is None or client.connection_pool is not self.pool:
            client = self._sync_client = super()._create_client()  # type: ignore[misc]
        return client


class Transport(kombu_redis.Transport):
    Channel = Channel

    def _deliver(self, message: Any, queue: str | None) -> None:
        token = _delivery.set(DELIVERING)
        try:
            super()._deliver(message, queue)
        finally:
            delivery = _delivery.get()
            _delivery.reset(token)
            if isinstance(delivery, Delivery) and delivery.held:
                # Celery acknowledges on its event loop's next turn, after this returns
                delivery.qos.held[delivery.tag] = delivery.held


def use_for_redis_urls() -> None:
    """Before the process's first broker connection: kombu caches what an alias resolved to."""
    for scheme in ("redis", "rediss"):
        kombu_transport.TRANSPORT_ALIASES[scheme] = f"{__name__}:Transport"
