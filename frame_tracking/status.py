"""Where a frame stands and why it ended so: the closed sets of statuses, stages and reasons.

Every other place that names a status, a stage or a reason — the Frame model's choices, the
API's filters, the OpenAPI schema, the admin filters, the README's table of reasons — takes it
from here, so a typo cannot invent a new one.
"""

from __future__ import annotations

from enum import StrEnum


class FrameStatus(StrEnum):
    CAPTURED = "captured"  # on its way through the pipeline; the others are final
    STORED = "stored"
    DROPPED = "dropped"
    FAILED = "failed"


# The statuses a frame's row can have.
FINAL_STATUSES = (FrameStatus.STORED, FrameStatus.DROPPED, FrameStatus.FAILED)


class Stage(StrEnum):
    """The stages in the order a frame passes them, and `pipeline` for a decision that no
    single stage made (a frame reaped because no stage finished it)."""

    CAPTURE = "capture"
    BUFFER = "buffer"
    PROCESS = "process"
    STORE = "store"
    PIPELINE = "pipeline"


# The stages a frame passes, in order; a journey lists them so.
PIPELINE_STAGES = (Stage.CAPTURE, Stage.BUFFER, Stage.PROCESS, Stage.STORE)


class DropReason(StrEnum):
    """Why a frame was dropped: the pipeline chose not to finish it (see README's table)."""

    BACKPRESSURE = "backpressure"
    STALE = "stale"
    MISSING_BYTES = "missing_bytes"
    INVALID = "invalid"
    BROKER_UNAVAILABLE = "broker_unavailable"
    EXPIRED = "expired"


class FailReason(StrEnum):
    """Why a frame failed: something went wrong with the frame itself (see README's table)."""

    CORRUPT_FRAME = "corrupt_frame"
    PROCESSOR_ERROR = "processor_error"
    INVALID_FRAME_ID = "invalid_frame_id"


class SkipReason(StrEnum):
    """Why the capture worker read a frame and left it out before numbering it: such a frame
    never gets a FrameID, so it is counted (detektr_frames_skipped_total), not recorded."""

    OVER_FPS = "over_fps"  # a live camera faster than --fps asked for
    REDIS_UNAVAILABLE = "redis_unavailable"  # Redis could not give it a sequence number


Reason = DropReason | FailReason
# Every reason, each with the status it belongs to.
REASONS: dict[Reason, FrameStatus] = {
    **{reason: FrameStatus.DROPPED for reason in DropReason},
    **{reason: FrameStatus.FAILED for reason in FailReason},
}


def parse_reason(text: str) -> Reason | None:
    """A reason from its text ("" is none); ValueError for one that does not exist."""
    if not text:
        return None
    for kind in (DropReason, FailReason):
        try:
            return kind(text)
        except ValueError:
            continue
    raise ValueError(f"unknown reason {text!r:.80}; known: {', '.join(REASONS)}")
