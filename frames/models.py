"""Where every frame ends: one row per captured frame, stored, dropped or failed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypedDict

from django.db import models

if TYPE_CHECKING:
    from frame_tracking import FrameMetadata


class StageTiming(TypedDict, total=False):
    queued_at: float  # epoch seconds: when the stage's task was published
    started_at: float  # when a worker picked it up
    ended_at: float


class FrameDict(TypedDict):
    frame_id: str
    camera_id: str
    sequence: int
    captured_at: str
    status: str
    reason: str
    stage: str
    error: str
    source: str
    width: int | None
    height: int | None
    format: str
    size_bytes: int | None
    trace_id: str
    span_id: str
    latency_ms: float | None
    timings: dict[str, StageTiming]
    results: dict[str, Any]


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


class Frame(models.Model):
    class Status(models.TextChoices):
        STORED = "stored"
        DROPPED = "dropped"
        FAILED = "failed"

    frame_id = models.CharField(max_length=160)
    camera_id = models.CharField(max_length=64)
    sequence = models.BigIntegerField()
    # The partition key to be: every unique key includes it (see docs/ARCHITECTURE.md).
    captured_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices)
    reason = models.CharField(max_length=64, blank=True)  # why it was dropped or failed
    stage = models.CharField(max_length=16, blank=True)  # the stage that decided the status
    error = models.TextField(blank=True)
    source = models.CharField(max_length=255, blank=True)
    width = models.PositiveIntegerField(null=True)
    height = models.PositiveIntegerField(null=True)
    format = models.CharField(max_length=16, blank=True)
    size_bytes = models.PositiveIntegerField(null=True)
    trace_id = models.CharField(max_length=32)
    span_id = models.CharField(max_length=16)  # the frame's root span, capture_frame
    trace_context = models.JSONField(default=dict)
    timings = models.JSONField(default=dict)  # stage name -> StageTiming
    results = models.JSONField(default=dict)  # processor name -> its result dict
    finished_at = models.DateTimeField()  # when the status was recorded
    latency_ms = models.FloatField(null=True)  # capture -> finished

    class Meta:
        constraints = [
            # A redelivered store updates this row instead of adding one; also serves
            # GET /frames?frame_id= and GET /frames/<frame_id>.
            models.UniqueConstraint(fields=["frame_id", "captured_at"], name="frame_id_unique"),
        ]
        indexes = [
            # GET /frames?trace_id=…, admin search by trace id.
            models.Index(fields=["trace_id"], name="frame_trace_id"),
            # GET /frames?camera=…&since=…&until=…, per-camera report, loss detection.
            models.Index(fields=["camera_id", "captured_at", "frame_id"], name="frame_camera_time"),
            # GET /frames?status=dropped, report counts by status.
            models.Index(fields=["status", "captured_at"], name="frame_status_time"),
        ]
        ordering = ["-captured_at", "-frame_id"]

    def __str__(self) -> str:
        return self.frame_id

    @classmethod
    def record(cls, meta: FrameMetadata, *, finished_at: datetime | None = None) -> Frame:
        """Write a frame's final state; run again for the same frame, it updates the one row."""
        finished_at = finished_at or datetime.now(tz=UTC)
        captured_at = meta.timestamp
        context = meta.trace_context
        frame, _ = cls.objects.update_or_create(
            frame_id=meta.frame_id,
            captured_at=captured_at,
            defaults={
                "camera_id": meta.camera_id,
                "sequence": meta.sequence,
                "status": meta.status,
                "reason": meta.reason,
                "stage": meta.stage,
                "error": meta.error,
                "source": meta.source,
                "width": meta.width,
                "height": meta.height,
                "format": meta.format,
                "size_bytes": meta.size_bytes,
                "trace_id": context.trace_id if context else "",
                "span_id": context.span_id if context else "",
                "trace_context": context.to_dict() if context else {},
                "timings": meta.timings,
                "results": meta.results,
                "finished_at": finished_at,
                "latency_ms": (finished_at - captured_at).total_seconds() * 1000,
            },
        )
        return frame

    def to_dict(self) -> FrameDict:
        return {
            "frame_id": self.frame_id,
            "camera_id": self.camera_id,
            "sequence": self.sequence,
            "captured_at": self.captured_at.isoformat(),
            "status": self.status,
            "reason": self.reason,
            "stage": self.stage,
            "error": self.error,
            "source": self.source,
            "width": self.width,
            "height": self.height,
            "format": self.format,
            "size_bytes": self.size_bytes,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "latency_ms": self.latency_ms,
            "timings": self.timings,
            "results": self.results,
        }
