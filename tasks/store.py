"""store: record the frame's final status in PostgreSQL and release its bytes."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from django.conf import settings
from django.db import InterfaceError, OperationalError

from detektr_project.celery import app
from frame_tracking import FrameMetadata, FrameStatus, Stage
from frame_tracking.metadata import FrameMetadataDict
from frame_tracking.metrics import END_TO_END_SECONDS, FRAMES_FINISHED, FRAMES_STATUS_CHANGED
from frame_tracking.status import REASONS
from frames.models import Frame, Recorded
from tasks import frame_bytes
from tasks.frame_bytes import REDIS_DOWN, RETRY_POLICY
from tasks.stage import Message, run_stage

log = logging.getLogger(__name__)

# Each series from 0, so rate() shows the first change (only a drop or failure becomes stored).
for _reason in REASONS:
    FRAMES_STATUS_CHANGED.labels(_reason.value, FrameStatus.STORED.value)


def record(meta: FrameMetadata) -> None:
    meta.finish()
    # The row's time is the frame's end and store's: the row records the stage's end with
    # it, so every stage of a frame has a duration without its trace (the write itself, a
    # millisecond or so, shows in the store span).
    finished_at = datetime.now(tz=UTC)
    if timing := meta.timings.get(Stage.STORE):
        timing["ended_at"] = finished_at.timestamp()
    count(Frame.record_many([meta], finished_at=finished_at))
    frame_bytes.release(meta.frame_id, meta.camera_id or "", keep_bytes=settings.FRAME_KEEP_BYTES)


def count(recorded: Recorded) -> None:
    """Metrics for rows written or changed: a frame counts once, however often it is sent.
    Canary frames stay out of the camera figures on the dashboard."""
    for frame in recorded.inserted:
        if frame.test:
            continue
        FRAMES_FINISHED.labels(frame.camera_id, frame.status, frame.reason).inc()
        if frame.latency_ms is not None:
            END_TO_END_SECONDS.labels(frame.camera_id, frame.status).observe(
                frame.latency_ms / 1000
            )
    for frame, previous_reason in recorded.changed:
        if not frame.test:
            FRAMES_STATUS_CHANGED.labels(previous_reason, frame.status).inc()


# A database or Redis that goes away for a while is waited out.
@app.task(
    name="detektr.store",
    autoretry_for=(OperationalError, InterfaceError, *REDIS_DOWN),
    **RETRY_POLICY,
)
def store(payload: Message) -> dict[str, str]:
    result = run_stage(Stage.STORE, payload, record)
    return {"frame_id": result["frame_id"], "status": result["status"]}


@app.task(
    name="detektr.record_batch",
    autoretry_for=(OperationalError, InterfaceError),
    **RETRY_POLICY,
)
def record_batch(payloads: list[FrameMetadataDict]) -> dict[str, int]:
    """Final records that need no stage work (drops at capture, expired frames)."""
    metas = []
    for payload in payloads:
        try:
            metas.append(FrameMetadata.from_dict(payload))
        except ValueError:  # one bad record must not cost the batch its other frames
            log.error("unreadable frame record skipped: %.300r", payload)
    count(Frame.record_many(metas))
    return {"recorded": len(metas), "unreadable": len(payloads) - len(metas)}
