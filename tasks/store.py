"""store: record the frame's final status in PostgreSQL and release its bytes."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from django.conf import settings
from django.db import InterfaceError, OperationalError

from detektr_project.celery import app
from frame_tracking import FrameMetadata, Stage
from frame_tracking.metadata import FrameMetadataDict
from frame_tracking.metrics import END_TO_END_SECONDS, FRAMES_FINISHED
from frames.models import Frame
from tasks import frame_bytes
from tasks.frame_bytes import REDIS_DOWN, RETRY_POLICY
from tasks.stage import run_stage

log = logging.getLogger(__name__)


def record(meta: FrameMetadata) -> None:
    meta.finish()
    finished_at = datetime.now(tz=UTC)
    Frame.record(meta, finished_at=finished_at)
    frame_bytes.release(meta.frame_id, meta.camera_id or "", keep_bytes=settings.FRAME_KEEP_BYTES)
    count_finished([meta], finished_at)


def count_finished(metas: list[FrameMetadata], finished_at: datetime) -> None:
    for meta in metas:
        if meta.test:
            continue  # a canary frame stays out of the camera figures on the dashboard
        reason = meta.reason.value if meta.reason else ""
        FRAMES_FINISHED.labels(meta.camera_id, meta.status.value, reason).inc()
        END_TO_END_SECONDS.labels(meta.camera_id, meta.status.value).observe(
            (finished_at - meta.timestamp).total_seconds()
        )


# A database or Redis that goes away for a while is waited out.
@app.task(
    name="detektr.store",
    autoretry_for=(OperationalError, InterfaceError, *REDIS_DOWN),
    **RETRY_POLICY,
)
def store(payload: FrameMetadataDict) -> dict[str, str]:
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
    finished_at = datetime.now(tz=UTC)
    Frame.record_many(metas, finished_at=finished_at)
    count_finished(metas, finished_at)
    return {"recorded": len(metas), "unreadable": len(payloads) - len(metas)}
