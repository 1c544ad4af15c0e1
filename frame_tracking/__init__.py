"""Frame identity, metadata and trace context: pure Python, importable by any process.

Tracing bootstrap lives in `frame_tracking.telemetry` and metrics in `frame_tracking.metrics`;
neither is imported here beyond what TraceContext needs (its invalid-input counter).
"""

from __future__ import annotations

from frame_tracking.context import TraceContext
from frame_tracking.identity import FrameID
from frame_tracking.metadata import FrameMetadata, StageTiming
from frame_tracking.status import DropReason, FailReason, FrameStatus, Stage

__all__ = [
    "DropReason",
    "FailReason",
    "FrameID",
    "FrameMetadata",
    "FrameStatus",
    "Stage",
    "StageTiming",
    "TraceContext",
]
