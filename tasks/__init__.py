"""The pipeline stages, one module each. The chain of a frame is built here and nowhere else."""

from __future__ import annotations

from celery import chain
from celery.canvas import Signature

from frame_tracking import FrameMetadata


def frame_pipeline(meta: FrameMetadata) -> Signature:
    """buffer → process → store for one frame; each link gets the previous one's payload."""
    from tasks.buffer import buffer
    from tasks.process import process
    from tasks.store import store

    return chain(buffer.s(meta.to_dict()), process.s(), store.s())


def record_only(meta: FrameMetadata) -> Signature:
    """A frame that already has its final status (shed at the source) goes straight to store."""
    from tasks.store import store

    return store.s(meta.to_dict())
