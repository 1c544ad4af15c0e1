"""The stage queues read from the broker: depth and the age of the frame next in line, from
real task messages in a real Redis."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from kombu import Connection, Exchange, Queue
from prometheus_client import CollectorRegistry, generate_latest

from detektr_project.celery import app
from frame_tracking import FrameID, FrameMetadata
from frame_tracking.metrics import QueueCollector, QueueReading
from tasks import final_records, frame_bytes, frame_pipeline, queues
from tasks.buffer import buffer
from tests.e2e.services import RabbitVhost

REDIS_URL = f"redis://127.0.0.1:6379/{os.environ.get('REDIS_UNIT_DB', '13')}"


@pytest.fixture(autouse=True)
def broker(settings) -> Iterator[redis.Redis]:
    settings.REDIS_URL = settings.CELERY_BROKER_URL = REDIS_URL
    frame_bytes.broker.cache_clear()
    client = frame_bytes.broker()
    client.flushdb()
    yield client
    frame_bytes.broker.cache_clear()


def frame(age: float) -> FrameMetadata:
    now = FrameID.generate("q01")
    captured = now.timestamp - timedelta(seconds=age)
    frame_id = FrameID.from_parts(captured, "q01", now.sequence, now.nonce)
    return FrameMetadata(frame_id=frame_id, timestamp=captured, camera_id="q01")


def publish(*metas: FrameMetadata) -> None:
    """Queue buffer tasks as capture does, on the test broker (no worker consumes it)."""
    with app.connection_for_write(REDIS_URL) as connection:
        for meta in metas:
            buffer.apply_async((meta.to_dict(),), connection=connection)  # type: ignore[call-arg]


def test_an_empty_queue_has_no_oldest_frame():
    assert queues.waiting("buffer") == (0, None)


def test_it_counts_the_waiting_tasks_and_ages_the_frame_next_in_line():
    publish(frame(age=30), frame(age=2), frame(age=1))
    depth, oldest = queues.waiting("buffer")
    assert depth == 3
    assert oldest is not None and 30 <= oldest < 40


def test_a_batch_of_final_records_is_aged_by_its_first_frame():
    with app.connection_for_write(REDIS_URL) as connection:
        final_records([frame(age=12), frame(age=3)]).apply_async(connection=connection)
    depth, oldest = queues.waiting("store")
    assert depth == 1
    assert oldest is not None and 12 <= oldest < 20


def test_a_frame_enters_as_one_buffer_message_that_names_it_and_carries_the_next_stages(broker):
    meta = frame(age=5)
    with app.connection_for_write(REDIS_URL) as connection:
        frame_pipeline(meta).apply_async(connection=connection)  # type: ignore[call-arg]
    depth, oldest = queues.waiting("buffer")
    assert depth == 1 and oldest is not None and 5 <= oldest < 15
    assert queues.waiting("process") == (0, None) and queues.waiting("store") == (0, None)
    message = json.loads(broker.lindex("buffer", 0))
    assert message["headers"]["argsrepr"] == f"({str(meta.frame_id)!r},)"  # what Flower shows
    _, _, embed = json.loads(base64.b64decode(message["body"]))
    [then_process] = embed["callbacks"]
    then_store = then_process["options"]["link"]
    assert (then_process["task"], then_store["task"]) == ("detektr.process", "detektr.store")
    assert then_store["options"]["argsrepr"] == f"({str(meta.frame_id)!r},)"


def test_a_message_that_names_no_frame_has_no_age():
    assert queues.oldest_frame_age(b'{"body": "bm90IGpzb24="}', 0.0) is None
    assert queues.oldest_frame_age(b"not json", 0.0) is None


def test_the_collector_exposes_each_queue_and_leaves_out_consumers_it_could_not_count():
    registry = CollectorRegistry()
    registry.register(
        QueueCollector(
            lambda: [QueueReading("buffer", 4, 2.5, 1), QueueReading("store", 0, None, None)]
        )
    )
    text = generate_latest(registry).decode()
    assert 'detektr_queue_depth{queue="buffer"} 4.0' in text
    assert 'detektr_queue_oldest_frame_age_seconds{queue="buffer"} 2.5' in text
    assert 'detektr_queue_oldest_frame_age_seconds{queue="store"} 0.0' in text
    assert 'detektr_queue_consumers{queue="buffer"} 1.0' in text
    assert 'detektr_queue_consumers{queue="store"}' not in text


def test_the_collector_leaves_out_an_age_the_broker_cannot_show():
    registry = CollectorRegistry()
    registry.register(
        QueueCollector(lambda: [QueueReading("process", 7, None, 2, age_known=False)])
    )
    text = generate_latest(registry).decode()
    assert 'detektr_queue_depth{queue="process"} 7.0' in text
    assert 'detektr_queue_consumers{queue="process"} 2.0' in text
    assert "detektr_queue_oldest_frame_age_seconds{" not in text


@pytest.fixture
def rabbitmq_broker(settings) -> Iterator[RabbitVhost]:
    """The app pointed at a RabbitMQ virtual host of the test's own."""
    with RabbitVhost() as vhost:
        settings.BROKER_IS_AMQP = True
        queues._recent.clear()  # no reading of another broker
        before = app.conf.broker_url
        app.conf.update(broker_url=vhost.url())
        try:
            yield vhost
        finally:
            app.conf.update(broker_url=before)


def test_on_rabbitmq_it_counts_waiting_tasks_and_consumers_from_the_queue_itself(
    rabbitmq_broker,
):
    buffer_queue = Queue(
        "buffer",
        Exchange("buffer", type="topic"),
        routing_key="buffer",
        queue_arguments={"x-queue-type": "quorum"},
    )  # fmt: skip: as settings declare it on RabbitMQ
    with Connection(rabbitmq_broker.url()) as connection:
        producer = connection.Producer()
        for age in (30, 2, 1):
            producer.publish(frame(age).to_dict(), exchange=buffer_queue.exchange,
                             routing_key="buffer", declare=[buffer_queue])  # fmt: skip
    assert queues.depth("buffer") == 3
    assert queues.depth("process") == 0  # not declared yet: nothing waits in it
    assert queues.declared()["process"] is None
    readings = queues.readings()
    assert [(r.queue, r.depth, r.consumers, r.age_known) for r in readings] == [
        ("buffer", 3, 0, False)
    ]
    declared = queues.declared()["buffer"]  # a fresh reading: the first ones took nothing
    assert declared is not None and declared.messages == 3
