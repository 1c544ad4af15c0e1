"""The pipeline stages, one module each. The chain of a frame is built here and nowhere else."""

from __future__ import annotations

from typing import Any

from celery.canvas import Signature

from frame_tracking import FrameMetadata


def frame_pipeline(meta: FrameMetadata) -> Signature:
    """buffer → process → store for one frame; each link gets the previous one's payload,
    the frame's record as a message carries it (FrameMetadata.to_message()).

    The links are callbacks (`link`, each stage's signature carrying the next), the form a
    chain takes in the message, written out: `chain(...).apply_async()` would clone and
    freeze every step on each call first, 0.4 ms of the capture's CPU per frame here
    (docs/performance.md). As in a chain, a stage that fails calls no further link and a
    retried one keeps its link. Each message names the frame in `argsrepr` (what Flower and
    the worker's log show) instead of a repr of the payload, which Celery would otherwise
    compute and send on every hop."""
    from tasks.buffer import buffer
    from tasks.process import process
    from tasks.store import store

    shown: dict[str, Any] = {"argsrepr": f"({str(meta.frame_id)!r},)", "kwargsrepr": "{}"}
    then_store = store.signature(options=shown)
    then_process = process.signature(options={**shown, "link": then_store})
    return buffer.signature((meta.to_message(),), options={**shown, "link": then_process})


def final_records(metas: list[FrameMetadata]) -> Signature:
    """Frames that already have their final status (shed at the source, never handed over,
    expired) go straight to the store queue, many to a message: dropping stays cheap."""
    from tasks.store import record_batch

    return record_batch.s([meta.to_dict() for meta in metas])
