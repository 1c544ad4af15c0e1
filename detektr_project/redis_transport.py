"""kombu's Redis transport, with one redis.Redis client per channel instead of one per call.

kombu's Redis channel builds a new `redis.Redis` object whenever it talks to Redis without a
client at hand: for every acknowledgement, every unacknowledged-message record and every
publish. With redis-py 8 each object copies its response callbacks (about 60 µs here), some
eight times per frame across the three stages (docs/performance.md). redis-py clients are
thread-safe and take their connections from the channel's pool, so one client per pool
serves them all; when kombu replaces the pool after a connection error, the client follows.

It also keeps a worker alive when Redis goes away while it holds unacknowledged messages.
Celery's consumer then collects the broken connection, which drops the transport's link to
its kombu Connection, and closes it; closing a channel that still holds messages hands them
back to Redis through a connection pool made from that link, and kombu 5.7 failed there with
AttributeError(... 'hostname'), which ended the worker ("Unrecoverable error"). The channel
now answers with a connection error, which the close ignores as it ignores Redis being away;
the messages stay in Redis's unacknowledged set, and the visibility timeout brings them back.

`use_for_redis_urls()` (called where the Celery app is made) points kombu's transport alias
table at it for redis:// and rediss:// URLs, so it follows the broker URL wherever that is
set (settings, `celery -b`, a test) and an amqp:// broker keeps kombu's AMQP transport.
"""

from __future__ import annotations

from typing import Any

import redis
from kombu import transport as kombu_transport
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    _sync_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:
            return super()._create_client(asynchronous=True)  # type: ignore[misc]
        client = self._sync_client
        if client is None or client.connection_pool is not self.pool:
            client = self._sync_client = super()._create_client()  # type: ignore[misc]
        return client

    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection.client is None:  # the kombu Connection was collected
            raise redis.ConnectionError("the broker connection is closed")
        return super()._connparams(asynchronous=asynchronous)  # type: ignore[misc]


class Transport(kombu_redis.Transport):
    Channel = Channel


def use_for_redis_urls() -> None:
    """Before the process's first broker connection: kombu caches what an alias resolved to."""
    for scheme in ("redis", "rediss"):
        kombu_transport.TRANSPORT_ALIASES[scheme] = f"{__name__}:Transport"
