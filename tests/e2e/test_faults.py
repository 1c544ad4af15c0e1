"""Faults cost frames only visibly: every captured frame ends stored, dropped or failed."""

from __future__ import annotations

import ast
import json
import signal
import subprocess
import time
from datetime import UTC, datetime

import pytest
import redis
from celery import chain

from frame_tracking import FrameID, TraceContext
from frames.models import Frame
from tasks import frame_bytes
from tasks.buffer import buffer
from tasks.frame_bytes import INFLIGHT_CAMERA_KEY
from tasks.process import process
from tasks.store import store
from tests.e2e.conftest import (
    BROKERS,
    REDIS_TEST_URL,
    Worker,
    account,
    completeness,
    finish_capture,
    frame_payload,
    publish,
    start_capture,
    wait_until,
)
from tests.e2e.services import Blackhole, RedisServer, TCPProxy
from tests.e2e.test_pipeline import assert_complete_traces
from workers.ledger import ADMISSION_FLOOR, ADMISSION_KEY

pytestmark = pytest.mark.e2e

SMALL = "synthetic://?width=320&height=240&fps=30"


@pytest.mark.parametrize("broker_env", BROKERS, indirect=True)
def test_capture_and_workers_ride_out_a_redis_restart(start_worker, broker_env, tmp_path):
    # On Redis the broker goes down with it; on RabbitMQ only the frame bytes, sequences and
    # in-flight sets do, and the stage tasks wait it out with retries (countdowns).
    server = RedisServer(tmp_path)
    server.start()
    env = {**broker_env, "REDIS_URL": server.url, "CAPTURE_JOURNAL_DIR": str(tmp_path)}
    try:
        worker = start_worker("-c", "2", env=env)
        # It must end by itself (--duration): its drain reaps, as `expired`, a frame whose task
        # the restart lost (kombu's pop-then-record window), which a SIGTERM would skip. 45 s
        # leaves a slow machine room to store 30 frames before the outage.
        capture = start_capture(env, "--camera", "cam21", "--source", SMALL, "--duration", "45")
        frames = Frame.objects.filter(camera_id="cam21")
        assert wait_until(lambda: frames.filter(status="stored").count() >= 30, 45)
        assert capture.poll() is None, "the capture ended before the outage"
        server.stop()
        time.sleep(3)  # the outage
        server.start()
        back = datetime.now(UTC)
        # The worker reconnects by itself: nothing restarts it here. (With kombu 5.7 a worker
        # holding frames when Redis went away could end with AttributeError(... 'hostname');
        # detektr_project/redis_transport.py.)
        watch_until_done(capture, worker)
        run = finish_capture(capture)
        counts = account("cam21", run)
        assert worker.process.poll() is None, worker.output()[-4000:]
        assert "Unrecoverable error" not in worker.output()
    finally:
        server.stop()
    print(f"broker {env.get('CELERY_BROKER_URL', 'redis')[:4]}, redis restarted: {run}; {counts}")
    # Frames read while Redis was away could not be numbered: left out and counted, not
    # given numbers of the capture's own that another process could give out too.
    assert run["unnumbered"] >= 1, run
    assert counts["stored"] + counts["dropped"] + counts["failed"] == counts["captured"]
    # The pipeline recovered: frames captured after the outage were stored again.
    assert frames.filter(status="stored", captured_at__gt=back).exists()


def test_capture_and_workers_ride_out_a_rabbitmq_outage(
    start_worker, pipeline_env, rabbitmq, tmp_path
):
    # The shared RabbitMQ keeps running: the outage is a proxy between it and detektr.
    proxy = TCPProxy(target_port=5672)
    env = {
        **pipeline_env,
        "CELERY_BROKER_URL": rabbitmq.url(port=proxy.port),
        "CAPTURE_JOURNAL_DIR": str(tmp_path),
    }
    try:
        worker = start_worker("-c", "2", env=env)
        capture = start_capture(env, "--camera", "cam27", "--source", SMALL, "--frames", "450")
        frames = Frame.objects.filter(camera_id="cam27")
        assert wait_until(lambda: frames.filter(status="stored").count() >= 30, 60)
        assert capture.poll() is None, "the capture ended before the outage"
        proxy.unplug()
        time.sleep(5)  # the outage
        proxy.plug()
        back = datetime.now(UTC)
        watch_until_done(capture, worker)  # the worker reconnects by itself
        run = finish_capture(capture)
        counts = account("cam27", run)
        assert worker.process.poll() is None, worker.output()[-4000:]
        assert "Unrecoverable error" not in worker.output()
    finally:
        proxy.close()
    print(f"rabbitmq unplugged for 5 s: capture {run}; rows {counts}")
    # Frames captured while RabbitMQ was away were recorded (broker_unavailable) and sent
    # once it was back; every other one reached its end in the pipeline.
    assert run["undelivered"] >= 1, run
    assert counts.get("dropped:broker_unavailable", 0) >= 1, counts
    assert counts["stored"] + counts["dropped"] + counts["failed"] == counts["captured"]
    assert frames.filter(status="stored", captured_at__gt=back).exists()


@pytest.mark.parametrize("broker_env", BROKERS, indirect=True)
def test_store_waits_out_a_30_second_database_outage(start_worker, broker_env):
    # store retries with a growing countdown: on RabbitMQ through native delayed delivery.
    proxy = TCPProxy(target_port=5432)
    database = broker_env["DATABASE_URL"].replace(":5432/", f":{proxy.port}/")
    env = {**broker_env, "DATABASE_URL": database}
    try:
        start_worker("-c", "2", env=env)
        # No --duration: frames are still being captured when the outage begins, however
        # long a slow machine took to store the first 30.
        capture = start_capture(env, "--camera", "cam22", "--source", SMALL)
        stored = Frame.objects.filter(camera_id="cam22", status="stored")
        assert wait_until(lambda: stored.count() >= 30, 120)
        proxy.unplug()
        time.sleep(30)  # the outage
        proxy.plug()
        capture.send_signal(signal.SIGTERM)  # ends cleanly, drains what is in flight
        run = finish_capture(capture)
        counts = account("cam22", run)
    finally:
        proxy.close()
    print(f"broker {env.get('CELERY_BROKER_URL', 'redis')[:4]}, 30 s database outage: {counts}")
    assert counts["failed"] == 0, counts
    assert counts["stored"] + counts.get("dropped:backpressure", 0) == counts["captured"], counts
    outage_frames = Frame.objects.filter(camera_id="cam22", status="stored", latency_ms__gt=20_000)
    assert outage_frames.exists(), "no frame waited out the outage in store"


def test_frames_are_accounted_for_with_a_tracing_backend_that_hangs(start_worker, pipeline_env):
    backend = Blackhole()  # worse than a closed port: every export waits for its timeout
    env = {**pipeline_env, "OTEL_EXPORTER_OTLP_ENDPOINT": backend.endpoint}
    try:
        start_worker("-c", "2", env=env)
        run = finish_capture(
            start_capture(env, "--camera", "cam23", "--source", SMALL, "--frames", "90")
        )
        counts = account("cam23", run)
    finally:
        backend.close()
    assert backend.held, "nothing tried to export to the hanging backend"
    # Were exports on the frames' path, each stage would wait out the 10 s export timeout
    # and these 90 frames would take far longer than account() waits.
    assert counts["stored"] == counts["captured"] == 90


def test_traces_stay_whole_when_the_collector_is_down_while_frames_pass(
    start_worker, pipeline_env, otlp
):
    collector = TCPProxy(otlp.port)
    collector.unplug()  # down: connections refused
    env = {**pipeline_env, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.port}"}
    try:
        start_worker("-c", "2", env=env)
        run = finish_capture(
            start_capture(env, "--camera", "cam24", "--source", SMALL, "--frames", "60")
        )
        counts = account("cam24", run)
        assert counts["stored"] == counts["captured"] == 60
        frames = list(Frame.objects.filter(camera_id="cam24"))
        assert otlp.requests == 0
        # The capture has exited: its frames' root spans wait in its spool file, the stages'
        # spans in the workers'. The workers ship both once the collector is back.
        collector.plug()
        wait_until(lambda: completeness(frames, otlp)[0] == len(frames), 120, interval=1)
        assert_complete_traces(frames, otlp)
    finally:
        collector.close()


@pytest.mark.parametrize(
    "headers",
    [
        {"traceparent": "00-not-a-trace-01"},
        {"traceparent": "00-" + "0" * 32 + "-" + "0" * 16 + "-01"},
        {},
    ],  # fmt: skip
    ids=["garbage", "all-zero", "absent"],
)
def test_a_task_without_a_usable_traceparent_continues_in_a_new_counted_trace(
    start_worker, pipeline_env, otlp, headers
):
    start_worker("-c", "1")
    payload = frame_payload("cam24")
    trace_id = TraceContext.from_dict(payload["trace_context"]).trace_id
    publish(chain(buffer.s(payload), process.s(), store.s()), headers=headers)
    assert wait_until(lambda: Frame.objects.filter(camera_id="cam24").exists(), 60)
    frame = Frame.objects.get(camera_id="cam24")
    # No bytes were parked for it: it is recorded, not lost, and keeps its own trace id.
    assert (frame.status, frame.reason, frame.trace_id) == ("dropped", "missing_bytes", trace_id)

    def buffer_span_seen() -> bool:
        return any(s.name == "run/detektr.buffer" for s in otlp.spans)

    assert wait_until(buffer_span_seen, 30)
    run = next(s for s in otlp.spans if s.name == "run/detektr.buffer")
    assert run.trace_id != trace_id
    assert run.attributes["frame.trace_id"] == trace_id
    assert run.attributes["frame.id"] == payload["frame_id"]


def test_a_frame_id_that_does_not_parse_is_recorded_as_failed(start_worker, pipeline_env):
    start_worker("-c", "1")
    payload = frame_payload("cam25", frame_id="not-a-frame-id")
    publish(chain(buffer.s(payload), process.s(), store.s()))
    assert wait_until(lambda: Frame.objects.filter(frame_id="not-a-frame-id").exists(), 60)
    frame = Frame.objects.get(frame_id="not-a-frame-id")
    assert (frame.status, frame.stage, frame.reason) == ("failed", "buffer", "invalid_frame_id")


def test_a_frame_whose_task_was_lost_is_recorded_as_expired(start_worker, pipeline_env, settings):
    # A frame of an earlier run that went in flight and whose task the broker then lost.
    settings.REDIS_URL = REDIS_TEST_URL
    frame_bytes.client.cache_clear()
    lost = FrameID.generate("cam26", sequence=frame_bytes.next_sequence("cam26", 0, "earlier run"))
    frame_bytes.park(lost, "cam26", b"\xff\xd8 jpeg bytes")
    # Aged by its score, not by waiting: in flight since long before FRAME_REAP_SECONDS.
    frame_bytes.client().zadd(INFLIGHT_CAMERA_KEY.format("cam26"), {lost: time.time() - 3600})
    frame_bytes.client.cache_clear()
    start_worker("-c", "1")
    env = {**pipeline_env, "FRAME_REAP_SECONDS": "30"}
    run = finish_capture(
        start_capture(env, "--camera", "cam26", "--source", SMALL, "--frames", "30")
    )
    assert run["expired"] == 1
    frame = Frame.objects.get(frame_id=lost)
    assert (frame.status, frame.stage, frame.reason) == ("dropped", "pipeline", "expired")
    assert account("cam26", run)["stored"] == 30


def test_a_lost_task_does_not_stop_the_camera_until_it_is_reaped(start_worker, pipeline_env):
    # The workers are away, so nothing finishes and the camera's in-flight limit falls to its
    # floor. One waiting task is then lost, as kombu's pop-then-record window loses one when
    # a worker's main process is SIGKILLed (celery #7950), and a worker comes back. The lost
    # frame is reaped as expired only after FRAME_REAP_SECONDS; the frames captured until
    # then must flow again, not all be shed because it holds the camera's one slot.
    reap_seconds = 60
    env = {
        **pipeline_env,
        "FRAME_LATENCY_BUDGET_MS": "100",
        "FRAME_MAX_AGE_SECONDS": "2",
        "FRAME_REAP_SECONDS": str(reap_seconds),
    }
    broker = redis.Redis.from_url(REDIS_TEST_URL)

    def limit() -> int | None:
        load = broker.hget(ADMISSION_KEY, "cam27")
        return json.loads(load)["limit"] if load else None

    capture = start_capture(env, "--camera", "cam27", "--source", SMALL)
    try:
        assert wait_until(lambda: limit() == ADMISSION_FLOOR, 60), limit()
        message = broker.rpop("buffer")  # the oldest waiting task
        assert isinstance(message, bytes)
        (lost,) = ast.literal_eval(json.loads(message)["headers"]["argsrepr"])
        start_worker("-c", "1")
        reaped = FrameID.parse(lost).timestamp.timestamp() + reap_seconds
        in_time = Frame.objects.filter(
            camera_id="cam27", status="stored", captured_at__lt=datetime.fromtimestamp(reaped, UTC)
        )
        assert wait_until(lambda: in_time.count() >= 10, reap_seconds), (
            f"{in_time.count()} frames stored while the lost one waited to be reaped"
        )
    finally:
        capture.send_signal(signal.SIGTERM)
    run = finish_capture(capture)
    assert not Frame.objects.filter(frame_id=lost).exists()  # not reaped yet: in flight
    assert run["published"] > 10


def watch_until_done(capture: subprocess.Popen[str], worker: Worker) -> None:
    """Wait for the capture to end; the worker, which nothing restarts, must live throughout."""
    while capture.poll() is None:
        assert worker.process.poll() is None, worker.output()[-4000:]
        time.sleep(0.5)
