"""The stage queues as the broker and the workers see them: how many frames wait, how old the
one next in line is, and which workers consume each queue. Read on demand (a Prometheus
scrape, `manage.py doctor`), never on the per-frame path.

Redis keeps each queue as a list (LLEN, and LINDEX shows the next message); RabbitMQ answers
a passive queue declaration with the queue's message and consumer counts, and shows no
message without delivering it, so there the oldest frame's age is unknown (None)."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any

import redis
from amqp.exceptions import AMQPError, NotFound
from django.conf import settings
from kombu.exceptions import OperationalError as BrokerError

from detektr_project.celery import app
from frame_tracking import FrameID
from frame_tracking.metrics import QueueReading
from tasks import frame_bytes

# What a broadcast to the workers or a queue declaration raises when the broker is away.
BROKER_DOWN = (OSError, redis.RedisError, BrokerError, AMQPError)


def stage_queues() -> list[str]:
    return [queue.name for queue in settings.CELERY_TASK_QUEUES]


def oldest_frame_age(message: bytes | None, now: float) -> float | None:
    """Seconds since capture of the frame in a queued task message (kombu's Redis envelope
    around Celery's [args, kwargs, embed] body); None when it names no frame."""
    if message is None:
        return None
    try:
        envelope = json.loads(message)
        body = envelope["body"]
        if envelope.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        payload = json.loads(body)[0][0]
        if isinstance(payload, list):  # record_batch: many frames, the first is the oldest
            payload = payload[0]
        captured = FrameID.parse(payload["frame_id"]).timestamp.timestamp()
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return max(0.0, now - captured)


@dataclass(frozen=True)
class Declared:
    """A queue as RabbitMQ declares it: messages ready for delivery and consumers."""

    messages: int
    consumers: int


def declared() -> dict[str, Declared | None]:
    """Each stage queue on RabbitMQ (None: not declared there yet; a worker or the first
    publish declares it), over a connection of its own. Broker errors propagate."""
    found: dict[str, Declared | None] = {}
    with app.connection_for_read() as connection:
        connection.ensure_connection(max_retries=1)
        for queue in stage_queues():
            # A passive declaration of a missing queue closes its channel: one per queue.
            channel: Any = connection.channel()  # py-amqp's Channel
            try:
                _, messages, consumers = channel.queue_declare(queue, passive=True)
                found[queue] = Declared(int(messages), int(consumers))
            except NotFound:
                found[queue] = None
            finally:
                channel.close()
    return found


# (monotonic time, reading): the last RabbitMQ reading depth() made in this process.
_recent: list[tuple[float, dict[str, Declared | None]]] = []


def depth(queue: str) -> int:
    """Tasks waiting in one stage queue, on either broker. Broker errors propagate.

    A burst of stale frames asks once per dropped frame; on RabbitMQ a reading costs a
    connection of its own, so one reading serves this process for a second."""
    if not settings.BROKER_IS_AMQP:
        return int(frame_bytes.broker().llen(queue))  # type: ignore[arg-type]
    now = time.monotonic()
    if not _recent or now - _recent[0][0] > 1.0:
        _recent[:] = [(now, declared())]
    queue_state = _recent[0][1].get(queue)
    return queue_state.messages if queue_state else 0


def waiting(queue: str) -> tuple[int, float | None]:
    """(tasks waiting, age of the oldest waiting frame) in Redis. kombu's Redis transport
    LPUSHes and BRPOPs, so the message next in line is the list's last element."""
    pipe = frame_bytes.broker().pipeline(transaction=False)
    pipe.llen(queue)
    pipe.lindex(queue, -1)
    depth, oldest = pipe.execute()
    return int(depth), oldest_frame_age(oldest, time.time())


def consumers(timeout: float = 1.0) -> dict[str, list[str]]:
    """Stage queue -> the workers consuming it, from Celery's own broadcast (inspect
    active_queues). Broker errors propagate."""
    # A connection of its own, closed here: one from the app's pool would go back to the pool
    # with its reply channel still waiting on the broker, and a process forked later (a prefork
    # child, a test's subprocess) hangs in kombu's after-fork clean-up of that channel.
    with app.connection_for_read() as connection:
        inspector = app.control.inspect(timeout=timeout, connection=connection)
        replies: dict[str, Any] = inspector.active_queues() or {}
    found: dict[str, list[str]] = {queue: [] for queue in stage_queues()}
    for worker, queues in sorted(replies.items()):
        for queue in queues or []:
            if queue.get("name") in found:
                found[queue["name"]].append(worker)
    return found


def readings(timeout: float = 1.0) -> list[QueueReading]:
    """Every stage queue, for the Prometheus QueueCollector; none while the broker is away
    (the gauges vanish rather than report a depth nobody read)."""
    if settings.BROKER_IS_AMQP:
        return amqp_readings()
    try:
        depths = {queue: waiting(queue) for queue in stage_queues()}
    except redis.RedisError:
        return []
    try:
        workers: dict[str, list[str]] | None = consumers(timeout)
    except BROKER_DOWN:
        workers = None
    return [
        QueueReading(queue, depth, age, None if workers is None else len(workers.get(queue, [])))
        for queue, (depth, age) in depths.items()
    ]


def amqp_readings() -> list[QueueReading]:
    """RabbitMQ counts the consumers itself: no broadcast to the workers needed."""
    try:
        queues = declared()
    except BROKER_DOWN:
        return []
    return [
        QueueReading(queue, found.messages, None, found.consumers, age_known=False)
        for queue, found in queues.items()
        if found is not None
    ]
