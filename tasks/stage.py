"""What every stage does around its own work: timings, span attributes, drops, metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from opentelemetry import trace

from frame_tracking import DropReason, FailReason, FrameID, FrameMetadata, FrameStatus, Stage
from frame_tracking.metadata import FrameMetadataDict
from frame_tracking.metrics import QUEUE_WAIT_SECONDS, STAGE_SECONDS, TRACE_BREAKS

# What a stage task receives and returns: FrameMetadata.to_message(), or an older writer's
# to_dict() (from_dict() reads both).
Message = FrameMetadataDict | dict[str, Any]

PREVIOUS_STAGE = {
    Stage.BUFFER: Stage.CAPTURE,
    Stage.PROCESS: Stage.BUFFER,
    Stage.STORE: Stage.PROCESS,
}
for _stage in PREVIOUS_STAGE:  # each stage's series from 0, so alerts see the first break
    TRACE_BREAKS.labels(_stage)


def note_trace_break(meta: FrameMetadata, stage: Stage, span: trace.Span) -> None:
    """A task whose headers lost the frame's context runs in a new trace: count it, and tag
    the span with the frame's own trace id so the two can still be found together."""
    frame_trace = meta.trace_context.trace_id if meta.trace_context else None
    current = span.get_span_context()
    if frame_trace and current.is_valid and format(current.trace_id, "032x") != frame_trace:
        TRACE_BREAKS.labels(stage).inc()
        span.set_attribute("frame.trace_id", frame_trace)


def stale_detail(stage: Stage) -> str:
    """Why, with the queue's depth behind it: paid only by frames that are dropped."""
    detail = f"older than {settings.FRAME_MAX_AGE_SECONDS:g}s when {stage} picked it up"
    from tasks import queues  # the Celery app, which imports this module's tasks

    try:
        return f"{detail}; {queues.depth(stage)} frames queued for {stage}"
    except queues.BROKER_DOWN:
        return detail


def is_stale(meta: FrameMetadata, now: float) -> bool:
    return now - meta.timestamp.timestamp() > settings.FRAME_MAX_AGE_SECONDS


def run_stage(stage: Stage, payload: Message, work: Callable[[FrameMetadata], None]) -> Message:
    """Run one stage's work on a frame that is still live and return the payload for the next."""
    started = time.time()
    meta = FrameMetadata.from_dict(payload)
    previous = meta.timings.get(PREVIOUS_STAGE[stage], {})
    timing = meta.timings.setdefault(stage, {})
    timing["queued_at"] = previous.get("ended_at", started)
    timing["started_at"] = started
    span = trace.get_current_span()
    span.set_attributes(
        {
            "frame.id": str(meta.frame_id),
            "camera.id": meta.camera_id or "",
            "pipeline.stage": stage.value,
        }
    )
    note_trace_break(meta, stage, span)
    QUEUE_WAIT_SECONDS.labels(stage).observe(max(0.0, started - timing["queued_at"]))
    live = meta.status is FrameStatus.CAPTURED
    if live and not isinstance(meta.frame_id, FrameID):
        meta.fail(
            stage, FailReason.INVALID_FRAME_ID, f"frame id {meta.frame_id!r:.200} does not parse"
        )
    elif live and stage is not Stage.STORE and is_stale(meta, started):
        meta.drop(stage, DropReason.STALE, stale_detail(stage))
    if meta.status is FrameStatus.CAPTURED or stage is Stage.STORE:
        work(meta)
    timing["ended_at"] = time.time()
    STAGE_SECONDS.labels(stage).observe(timing["ended_at"] - started)
    return meta.to_message()
