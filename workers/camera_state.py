"""What a capture worker's camera is doing right now, for /health and the metrics.

The capture loop tells it three things: a frame arrived, the source is being (re)opened, the
run ended. Everything else (stalled, since when) is derived when someone asks, so the
per-frame cost is one clock read and one gauge set.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypedDict

from frame_tracking.metrics import CAMERA_LAST_FRAME, CAMERA_RECONNECTS, CAMERA_UP

log = logging.getLogger(__name__)


class CameraStatus(enum.StrEnum):
    STARTING = "starting"  # opening the source for the first time
    UP = "up"  # frames arrive
    STALLED = "stalled"  # open, but no frame for longer than the stall timeout
    RECONNECTING = "reconnecting"  # the source failed or stalled and is being reopened
    STOPPED = "stopped"  # the run ended


class CameraHealthDict(TypedDict):
    camera: str
    status: str
    since: str  # ISO 8601, UTC: when the camera entered this status
    last_frame_at: str | None
    reconnects: int
    detail: str
    # Whether its frames enter the pipeline: "ok", or "unavailable" while Redis cannot number
    # them or the broker cannot take them (pipeline_detail says which, pipeline_since since
    # when). The camera itself may be up meanwhile: the status above stays its own.
    pipeline: str
    pipeline_since: str | None
    pipeline_detail: str


def iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, tz=UTC).isoformat()


@dataclass
class CameraState:
    camera_id: str
    # No frame for this long while "up" counts as stalled (the source's read timeout).
    stall_seconds: float
    status: CameraStatus = CameraStatus.STARTING
    since: float = field(default_factory=time.time)
    last_frame_at: float | None = None
    reconnects: int = 0
    detail: str = ""
    pipeline_since: float | None = None  # frames have not entered the pipeline since then
    pipeline_detail: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._up = CAMERA_UP.labels(self.camera_id)
        self._last_frame = CAMERA_LAST_FRAME.labels(self.camera_id)
        self._up.set(0)
        CAMERA_RECONNECTS.labels(self.camera_id)  # 0 from the start: increase() works at once

    def frame(self) -> None:
        """A frame was read: the per-frame path, kept to a clock read and a gauge set."""
        now = time.time()
        self.last_frame_at = now
        self._last_frame.set(now)
        if self.status is not CameraStatus.UP:
            # The line an operator looks for after the warnings of a reconnect: it is over.
            log.info("camera %s: frames arrive (%s for %.1fs before)",
                     self.camera_id, self.status.value, now - self.since)  # fmt: skip
            self._enter(CameraStatus.UP, "", now)

    def reconnecting(self, why: str) -> None:
        """The source failed or stalled and is being reopened."""
        self.reconnects += 1
        CAMERA_RECONNECTS.labels(self.camera_id).inc()
        self._enter(CameraStatus.RECONNECTING, why, time.time())

    def retrying_open(self, why: str) -> None:
        """An open attempt failed; still starting or reconnecting, since the first failure."""
        with self.lock:
            self.detail = why

    def not_handed_over(self, why: str) -> None:
        """A frame could not enter the pipeline (Redis or the broker away)."""
        with self.lock:
            if self.pipeline_since is None:
                self.pipeline_since = time.time()
            self.pipeline_detail = why

    def handed_over(self) -> None:
        """A frame entered the pipeline: the per-frame path, one comparison when all is well."""
        if self.pipeline_since is not None:
            with self.lock:
                self.pipeline_since, self.pipeline_detail = None, ""

    def stopped(self) -> None:
        self._enter(CameraStatus.STOPPED, "", time.time())

    def _enter(self, status: CameraStatus, detail: str, now: float) -> None:
        with self.lock:
            self.status, self.since, self.detail = status, now, detail
        self._up.set(1 if status is CameraStatus.UP else 0)

    def snapshot(self, now: float | None = None) -> CameraHealthDict:
        now = time.time() if now is None else now
        with self.lock:
            status, since, detail = self.status, self.since, self.detail
            pipeline_since, pipeline_detail = self.pipeline_since, self.pipeline_detail
        last = self.last_frame_at
        if status is CameraStatus.UP and last is not None and now - last > self.stall_seconds:
            status, since = CameraStatus.STALLED, last
            detail = f"no frame for {now - last:.1f}s (stall timeout {self.stall_seconds:g}s)"
        return {
            "camera": self.camera_id,
            "status": status.value,
            "since": iso(since) or "",
            "last_frame_at": iso(last),
            "reconnects": self.reconnects,
            "detail": detail,
            "pipeline": "ok" if pipeline_since is None else "unavailable",
            "pipeline_since": iso(pipeline_since),
            "pipeline_detail": pipeline_detail,
        }

    def health(self) -> tuple[int, dict[str, Any]]:
        """(200 or 503, the snapshot): healthy only while frames arrive. A pipeline that
        cannot take them is in the snapshot but not a 503: the capture waits it out, and a
        restart would not bring Redis or the broker back (alerts.yml pages for it)."""
        snapshot = self.snapshot()
        return (200 if snapshot["status"] == CameraStatus.UP else 503), dict(snapshot)
