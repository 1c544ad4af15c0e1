"""buffer: admit a frame into the pipeline, or drop it with the reason."""

from __future__ import annotations

from django.conf import settings

from detektr_project.celery import app
from frame_tracking import DropReason, FrameMetadata, Stage
from tasks import frame_bytes
from tasks.stage import Message, run_stage


def admit(meta: FrameMetadata) -> None:
    size = frame_bytes.frame_size(meta.frame_id)
    if size == 0:
        meta.drop(
            Stage.BUFFER, DropReason.MISSING_BYTES, "frame bytes expired or were never parked"
        )
    elif size > settings.FRAME_MAX_BYTES:
        meta.drop(Stage.BUFFER, DropReason.INVALID, f"{size} bytes is over FRAME_MAX_BYTES")


@app.task(
    name="detektr.buffer",
    autoretry_for=frame_bytes.REDIS_DOWN,
    **frame_bytes.RETRY_POLICY,
)
def buffer(payload: Message) -> Message:
    return run_stage(Stage.BUFFER, payload, admit)
