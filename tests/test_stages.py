"""The stage tasks called as plain functions, against real Redis and PostgreSQL."""

from __future__ import annotations

import logging
from datetime import timedelta

import cv2
import numpy as np
import pytest
import redis
from prometheus_client import REGISTRY

from frame_tracking import DropReason, FrameID, FrameMetadata, Stage, TraceContext
from frame_tracking.metadata import FrameMetadataDict
from frames.models import Frame
from tasks import frame_bytes
from tasks.buffer import buffer
from tasks.process import process, processors
from tasks.processors import BaseProcessor
from tasks.store import record_batch, store


@pytest.fixture(autouse=True)
def clean_redis(unit_redis: redis.Redis) -> redis.Redis:
    return unit_redis


def jpeg(width: int = 320, height: int = 240) -> bytes:
    image = np.zeros((height, width, 3), np.uint8)
    cv2.circle(image, (width // 2, height // 2), height // 4, (200, 180, 40), -1)
    return cv2.imencode(".jpg", image)[1].tobytes()


def new_frame(data: bytes | None, *, age: float = 0.0, camera: str = "cam01") -> FrameMetadataDict:
    frame_id = FrameID.generate(camera)
    captured = frame_id.timestamp - timedelta(seconds=age)
    if age:
        frame_id = FrameID.from_parts(captured, camera, frame_id.sequence, frame_id.nonce)
    if data is not None:
        frame_bytes.park(frame_id, camera, data)
    meta = FrameMetadata(
        frame_id=frame_id,
        timestamp=captured,
        camera_id=camera,
        sequence=frame_id.sequence,
        format="jpeg",
        size_bytes=len(data) if data else None,
        trace_context=TraceContext.generate(),
        timings={"capture": {"started_at": captured.timestamp(), "ended_at": captured.timestamp()}},
    )
    return meta.to_dict()


def through_pipeline(payload: FrameMetadataDict) -> dict[str, str]:
    return store(process(buffer(payload)))


@pytest.mark.django_db
def test_a_good_frame_is_stored_with_results_and_its_bytes_released(clean_redis):
    payload = new_frame(jpeg())
    assert through_pipeline(payload)["status"] == "stored"
    frame = Frame.objects.get()
    assert frame.frame_id == payload["frame_id"]
    assert frame.trace_id == TraceContext.from_dict(payload["trace_context"]).trace_id
    assert frame.results["quality"]["brightness"] > 0
    assert set(frame.timings) == {"capture", "buffer", "process", "store"}
    # Every stage has its duration on the row, store's ending when the row was written.
    journey = {stage["stage"]: stage for stage in frame.journey()}
    assert all(journey[stage]["duration_ms"] is not None for stage in journey), journey
    assert frame.timings["store"]["ended_at"] == frame.finished_at.timestamp()
    assert clean_redis.exists(frame_bytes.frame_key(frame.frame_id)) == 0
    assert frame_bytes.inflight("cam01") == (0, 0)


def test_a_stage_s_success_line_names_the_frame_without_repeating_its_message(
    clean_redis, caplog, monkeypatch
):
    # The line as LOG_TASKS=true logs it (off by default: settings.LOGGING drops it).
    monkeypatch.setattr(logging.getLogger("celery.app.trace"), "filters", [])
    payload = new_frame(jpeg())
    with caplog.at_level(logging.INFO, logger="celery.app.trace"):
        buffer.apply(args=(payload,))
    [line] = [record.getMessage() for record in caplog.records if "succeeded" in record.msg]
    assert payload["frame_id"] in line
    assert "timings" not in line  # computing the whole repr costs every task (performance.md)


@pytest.mark.django_db
def test_bytes_are_kept_until_their_ttl_when_configured(clean_redis, settings):
    settings.FRAME_KEEP_BYTES = True
    payload = new_frame(jpeg())
    through_pipeline(payload)
    key = frame_bytes.frame_key(payload["frame_id"])
    assert clean_redis.exists(key) == 1
    assert 0 < clean_redis.ttl(key) <= settings.FRAME_TTL_SECONDS


@pytest.mark.django_db
def test_a_redelivered_store_leaves_one_row():
    payload = process(buffer(new_frame(jpeg())))
    store(payload)
    store(payload)
    assert Frame.objects.count() == 1
    assert Frame.objects.get().status == "stored"


@pytest.mark.django_db
def test_a_frame_whose_bytes_are_gone_is_dropped_with_the_reason():
    through_pipeline(new_frame(None))
    frame = Frame.objects.get()
    assert (frame.status, frame.stage, frame.reason) == ("dropped", "buffer", "missing_bytes")


@pytest.mark.django_db
def test_a_corrupt_jpeg_is_recorded_as_failed():
    data = jpeg()
    through_pipeline(new_frame(data[: len(data) // 3] + b"\x00" * 10))
    frame = Frame.objects.get()
    assert (frame.status, frame.stage, frame.reason) == ("failed", "process", "corrupt_frame")
    assert "do not decode" in frame.error


@pytest.mark.django_db
def test_an_oversized_frame_is_dropped_as_invalid(settings):
    settings.FRAME_MAX_BYTES = 100
    through_pipeline(new_frame(jpeg()))
    frame = Frame.objects.get()
    assert (frame.status, frame.reason) == ("dropped", "invalid")


@pytest.mark.django_db
def test_a_frame_older_than_the_maximum_age_is_dropped_as_stale(settings):
    settings.FRAME_MAX_AGE_SECONDS = 2
    through_pipeline(new_frame(jpeg(), age=5))
    frame = Frame.objects.get()
    assert (frame.status, frame.stage, frame.reason) == ("dropped", "buffer", "stale")
    assert frame.error.startswith("older than 2s when buffer picked it up; ")
    assert frame.error.endswith(" frames queued for buffer")


class BrokenProcessor(BaseProcessor):
    name = "broken"

    def process(self, image, meta, span):
        raise RuntimeError("lens cap on")


@pytest.mark.django_db
def test_a_failing_processor_fails_the_frame_and_keeps_the_other_results(settings):
    settings.FRAME_PROCESSORS = [
        "tasks.processors.FrameQualityProcessor",
        f"{__name__}.BrokenProcessor",
    ]
    processors.cache_clear()
    try:
        through_pipeline(new_frame(jpeg()))
    finally:
        processors.cache_clear()
    frame = Frame.objects.get()
    assert (frame.status, frame.reason) == ("failed", "processor_error")
    assert "lens cap on" in frame.error
    assert frame.results["broken"] == {"error": "RuntimeError: lens cap on"}
    assert "brightness" in frame.results["quality"]


@pytest.mark.django_db
def test_a_late_duplicate_cannot_turn_a_stored_frame_into_a_drop():
    payload = new_frame(jpeg())
    through_pipeline(payload)
    # The broker redelivers buffer after store released the bytes: that copy finds them gone.
    assert through_pipeline(payload)["status"] == "dropped"
    frame = Frame.objects.get()
    assert (frame.status, frame.reason) == ("stored", "")


def finished(camera: str, status: str, reason: str = "") -> float:
    labels = {"camera": camera, "status": status, "reason": reason}
    return REGISTRY.get_sample_value("detektr_frames_finished_total", labels) or 0.0


def changed(previous_reason: str, status: str) -> float:
    labels = {"previous_reason": previous_reason, "status": status}
    return REGISTRY.get_sample_value("detektr_frames_status_changed_total", labels) or 0.0


@pytest.mark.django_db
def test_a_redelivered_store_does_not_move_a_counter():
    payload = process(buffer(new_frame(jpeg(), camera="cam-redelivered")))
    before = finished("cam-redelivered", "stored")
    store(payload)
    store(payload)  # the broker redelivers: the row is there already
    assert finished("cam-redelivered", "stored") == before + 1
    latency = REGISTRY.get_sample_value(
        "detektr_capture_to_finished_seconds_count",
        {"camera": "cam-redelivered", "status": "stored"},
    )
    assert latency == 1


@pytest.mark.django_db
def test_a_batch_sent_twice_counts_its_frames_once():
    metas = []
    for _ in range(3):
        meta = FrameMetadata.from_dict(new_frame(None, camera="cam-twice"))
        meta.drop(Stage.CAPTURE, DropReason.BACKPRESSURE, "full")
        metas.append(meta.to_dict())
    record_batch(metas)
    record_batch(metas)  # a journal segment sent again after a SIGKILL
    assert Frame.objects.filter(camera_id="cam-twice").count() == 3
    assert finished("cam-twice", "dropped", "backpressure") == 3


@pytest.mark.django_db
def test_a_frame_reaped_as_expired_and_stored_later_counts_once():
    payload = process(buffer(new_frame(jpeg(), camera="cam-late")))
    reaped = FrameMetadata.from_dict(payload)
    reaped.drop(Stage.PIPELINE, DropReason.EXPIRED, "no stage finished it within 60s")
    record_batch([reaped.to_dict()])
    changed_before = changed("expired", "stored")
    store(payload)  # the redelivered chain got there after all
    assert Frame.objects.get().status == "stored"
    assert finished("cam-late", "dropped", "expired") == 1
    assert finished("cam-late", "stored") == 0  # counted once, under its first status
    assert changed("expired", "stored") == changed_before + 1


@pytest.mark.django_db
def test_a_late_duplicate_drop_counts_nothing():
    payload = new_frame(jpeg(), camera="cam-dup")
    through_pipeline(payload)
    through_pipeline(payload)  # finds its bytes gone: a drop that must not overwrite
    assert finished("cam-dup", "stored") == 1
    assert finished("cam-dup", "dropped", "missing_bytes") == 0
