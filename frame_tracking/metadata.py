"""FrameMetadata: everything known about one frame; also the payload every stage task receives.

Serialised form (version 1, the `v` key)::

    {"v": 1, "frame_id": "...", "timestamp": "2026-11-29T03:45:00.123456+00:00",
     "camera_id": "cam01", "sequence": 42, ..., "trace_context": {...} | null,
     "timings": {"buffer": {"queued_at": 1.0, ...}}, "results": {...}, "status": "captured", ...}

Compatibility: version 0 records (no `v`, capture time as `ts` epoch seconds, no `status`) load.
Keys this version does not know, e.g. from a newer writer, are kept in `extra`, take part in
equality, and are written back by `to_dict()`, so an older stage never strips a newer one's data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypedDict, cast

from opentelemetry import trace

from frame_tracking.context import TraceContext, TraceContextDict
from frame_tracking.identity import FrameID
from frame_tracking.status import DropReason, FailReason, FrameStatus, Reason, Stage, parse_reason

SCHEMA_VERSION = 1


class StageTiming(TypedDict, total=False):
    """When a frame entered a stage's queue, and when the stage began and ended (epoch s)."""

    queued_at: float
    started_at: float
    ended_at: float


class FrameMetadataDict(TypedDict):
    v: int
    frame_id: str
    timestamp: str
    camera_id: str | None
    sequence: int | None
    source: str
    width: int | None
    height: int | None
    format: str
    size_bytes: int | None
    trace_context: TraceContextDict | None
    timings: dict[str, StageTiming]
    results: dict[str, dict[str, Any]]
    status: str
    reason: str
    stage: str
    error: str
    test: bool


@dataclass(slots=True)
class FrameMetadata:
    """One frame. `camera_id` and `sequence` default to the frame id's own parts."""

    frame_id: str
    timestamp: datetime
    camera_id: str | None = None
    sequence: int | None = None
    source: str = ""
    width: int | None = None
    height: int | None = None
    format: str = ""
    size_bytes: int | None = None
    trace_context: TraceContext | None = None
    timings: dict[str, StageTiming] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    status: FrameStatus = FrameStatus.CAPTURED
    reason: Reason | None = None
    stage: Stage | None = None  # the stage that decided the final status
    error: str = ""
    # A canary (manage.py send_test_frame): it takes the real path but stays out of the
    # camera's figures.
    test: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.frame_id, str) or not self.frame_id:
            raise ValueError(f"frame_id must be a non-empty str, got {self.frame_id!r:.80}")
        self.timestamp = _utc(self.timestamp)
        if not isinstance(self.frame_id, FrameID):
            self.frame_id = _as_frame_id(self.frame_id)
        if isinstance(self.frame_id, FrameID):
            if self.camera_id is None:
                self.camera_id = self.frame_id.camera_id
            if self.sequence is None:
                self.sequence = self.frame_id.sequence

    def drop(self, stage: Stage, reason: DropReason, detail: str = "") -> None:
        """The pipeline chose not to finish this frame; later stages skip it, store records why."""
        self._end(FrameStatus.DROPPED, stage, reason, detail)

    def fail(self, stage: Stage, reason: FailReason, error: str) -> None:
        """Something is wrong with the frame itself; the current span says so too."""
        self._end(FrameStatus.FAILED, stage, reason, error)
        trace.get_current_span().set_status(trace.Status(trace.StatusCode.ERROR, error))

    def finish(self) -> None:
        """The frame reached store: stored, unless a stage on the way dropped or failed it."""
        if self.status is FrameStatus.CAPTURED:
            self.status, self.stage = FrameStatus.STORED, Stage.STORE

    def _end(self, status: FrameStatus, stage: Stage, reason: Reason, detail: str) -> None:
        # A frame ends once: a second decision would hide the first one's reason.
        if self.status is not FrameStatus.CAPTURED:
            raise ValueError(f"frame {self.frame_id} already ended {self.status}/{self.reason}")
        self.status, self.stage, self.reason, self.error = status, stage, reason, detail
        trace.get_current_span().set_attributes(
            {"frame.status": status.value, "frame.reason": reason.value}
        )

    def to_dict(self) -> FrameMetadataDict:
        """Small JSON-ready dict; nested containers are copies, except each result's contents."""
        record: FrameMetadataDict = {
            "v": SCHEMA_VERSION,
            "frame_id": str(self.frame_id),
            "timestamp": self.timestamp.isoformat(timespec="microseconds"),
            "camera_id": self.camera_id,
            "sequence": self.sequence,
            "source": self.source,
            "width": self.width,
            "height": self.height,
            "format": self.format,
            "size_bytes": self.size_bytes,
            "trace_context": self.trace_context.to_dict() if self.trace_context else None,
            "timings": {stage: cast(StageTiming, dict(t)) for stage, t in self.timings.items()},
            "results": dict(self.results),
            "status": self.status.value,
            "reason": self.reason.value if self.reason else "",
            "stage": self.stage.value if self.stage else "",
            "error": self.error,
            "test": self.test,
        }
        if self.extra:
            return cast(FrameMetadataDict, {**self.extra, **record})
        return record

    def to_message(self) -> dict[str, Any]:
        """The record as a stage task's message carries it: `to_dict()` without what a reader
        gets back anyway — empty and default fields, the capture time, camera and sequence
        when the frame id says them — so each hop sends what is known beyond the id (timings,
        results, status) and not the whole record's blanks. `from_dict()` reads it."""
        record: dict[str, Any] = dict(self.to_dict())
        frame_id = self.frame_id
        if isinstance(frame_id, FrameID):
            if self.timestamp == frame_id.timestamp:
                del record["timestamp"]
            if self.camera_id == frame_id.camera_id:
                del record["camera_id"]
            if self.sequence == frame_id.sequence:
                del record["sequence"]
        for key, default in _DEFAULTS.items():
            value = record.get(key, default)
            if value is default or (type(value) is type(default) and value == default):
                record.pop(key, None)
        return record

    @classmethod
    def from_dict(cls, data: object) -> FrameMetadata:
        """Load any version's record; ValueError if it is not a record or lacks its identity."""
        if not isinstance(data, dict):
            raise ValueError(f"a frame record must be a dict, got {type(data).__name__}")
        if _version(data) == 0:
            data = _upgrade_v0(data)
        if not data.get("frame_id"):
            raise ValueError("frame record has no frame_id")
        if data.get("timestamp") is None:
            data = {**data, "timestamp": _timestamp_from_id(data["frame_id"])}
        unknown = data.keys() - _KNOWN_KEYS
        trace_context = data.get("trace_context")
        return cls(
            frame_id=data["frame_id"],
            timestamp=_load_timestamp(data["timestamp"]),
            camera_id=data.get("camera_id"),
            sequence=data.get("sequence"),
            source=data.get("source") or "",
            width=data.get("width"),
            height=data.get("height"),
            format=data.get("format") or "",
            size_bytes=data.get("size_bytes"),
            trace_context=None if trace_context is None else TraceContext.from_dict(trace_context),
            timings={stage: dict(t) for stage, t in (data.get("timings") or {}).items()},  # type: ignore[misc]
            results=dict(data.get("results") or {}),
            status=FrameStatus(data.get("status") or FrameStatus.CAPTURED),
            reason=parse_reason(data.get("reason") or ""),
            stage=Stage(data["stage"]) if data.get("stage") else None,
            error=data.get("error") or "",
            test=data.get("test") is True,
            extra={key: data[key] for key in unknown} if unknown else {},
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> FrameMetadata:
        return cls.from_dict(json.loads(text))

    def to_span_attributes(self) -> dict[str, str | int]:
        """The frame's identity as span attributes; `frame.id` is a string for Jaeger search."""
        attributes: dict[str, str | int | None] = {
            "frame.id": str(self.frame_id),
            "camera.id": self.camera_id,
            "frame.size_bytes": self.size_bytes,
            "frame.width": self.width,
            "frame.height": self.height,
            "frame.sequence": self.sequence,
        }
        return {key: value for key, value in attributes.items() if value is not None}


_KNOWN_KEYS = frozenset(FrameMetadataDict.__annotations__)
# Keys to_message() leaves out at these values; from_dict() reads them back as such.
_DEFAULTS: dict[str, object] = {
    "source": "", "width": None, "height": None, "format": "", "size_bytes": None,
    "trace_context": None, "timings": {}, "results": {}, "status": FrameStatus.CAPTURED.value,
    "reason": "", "stage": "", "error": "", "test": False,
}  # fmt: skip


def _timestamp_from_id(frame_id: object) -> datetime:
    """A message without its capture time (to_message()) names a frame whose id has it."""
    try:
        return FrameID.parse(str(frame_id)).timestamp
    except ValueError:
        raise ValueError(f"frame record {frame_id!r:.80} has no timestamp") from None


def _version(data: dict[str, Any]) -> int:
    version = data.get("v", 0)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValueError(f"frame record has a bad version {version!r:.40}")
    return version


def _upgrade_v0(data: dict[str, Any]) -> dict[str, Any]:
    # v0 stored the capture time as `ts` (epoch seconds) and had no status: every v0 record
    # was written at capture, so the missing status means "captured".
    record = {key: value for key, value in data.items() if key != "ts"}
    if "timestamp" not in record and data.get("ts") is not None:
        record["timestamp"] = data["ts"]
    return record


def _load_timestamp(value: object) -> datetime:
    if isinstance(value, datetime):
        return _utc(value)
    if isinstance(value, str):
        try:
            return _utc(datetime.fromisoformat(value))
        except ValueError as exc:
            raise ValueError(f"bad frame timestamp {value!r:.80}: {exc}") from None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)  # v0: epoch seconds
    raise ValueError(f"bad frame timestamp {value!r:.80}")


def _utc(value: object) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValueError(f"timestamp must be a timezone-aware datetime, got {value!r:.80}")
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def _as_frame_id(text: str) -> str:
    # Ids from outside the capture worker may not be FrameIDs; keep them as plain text.
    try:
        return FrameID(text)
    except ValueError:
        return text
