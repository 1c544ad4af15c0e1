"""The pipeline stages, one module each. The chain of a frame is built here and nowhere else."""

from __future__ import annotations

from typing import Any

from celery import chain
from celery.canvas import Signature

from frame_tracking import FrameMetadata


def frame_pipeline(meta: FrameMetadata) -> Signature:
    """buffer → process → store for one frame; each link gets the previous one's payload,
    the frame's record as a message carries it (FrameMetadata.to_message()). Each message
    names the frame in `argsrepr` (what Flower and the worker's log show) instead of a
    repr of the payload, which Celery would otherwise compute and send on every hop."""
    from tasks.buffer import buffer
    from tasks.process import process
    from tasks.store import store

    shown: dict[str, Any] = {"argsrepr": f"({str(meta.frame_id)!r},)", "kwargsrepr": "{}"}
    return chain(
        buffer.signature((meta.to_message(),), options=shown),
        process.signature(options=shown),
        store.signature(options=shown),
    )


def final_records(metas: list[FrameMetadata]) -> Signature:
    """Frames that already have their final status (shed at the source, never handed over,
    expired) go straight to the store queue, many to a message: dropping stays cheap."""
    from tasks.store import record_batch

    return record_batch.s([meta.to_dict() for meta in metas])
