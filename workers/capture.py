"""The capture worker: a plain loop that reads a camera and hands every frame to the pipeline.

Per frame: a FrameID, a root span `capture_frame`, JPEG bytes parked in Redis (the claim
check) and one Celery chain published inside that span, so the instrumentation puts the
frame's trace context into the task headers. One process per camera; a shutdown flag set by
SIGTERM/SIGINT ends the loop between frames.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np
from django.conf import settings
from django.db.models import Max
from opentelemetry import trace

from frame_tracking import DropReason, FrameID, FrameMetadata, Stage, TraceContext
from frame_tracking.metrics import (
    CAMERA_RECONNECTS,
    FRAMES_CAPTURED,
    INFLIGHT_FRAMES,
    INFLIGHT_UTILISATION,
)
from frames.models import Frame
from tasks import frame_bytes, frame_pipeline
from workers.records import UNAVAILABLE, FinalRecords
from workers.sources import Source, SourceError, open_source

log = logging.getLogger(__name__)
tracer = trace.get_tracer("detektr.capture")

# Seconds between sending batches of final records and looking for frames that outstayed
# FRAME_REAP_SECONDS in flight.
HOUSEKEEPING_INTERVAL = 1.0
# After Redis or the broker failed a hand-over, frames are recorded as broker_unavailable
# without trying again for this long: each try can block for a second.
BROKER_RETRY_SECONDS = 1.0


@dataclass
class CaptureConfig:
    camera_id: str
    source: str
    fps: float | None = None  # None: the source's own rate (30 for files that do not say)
    frames: int | None = None  # stop after this many frames
    duration: float | None = None  # stop after this many seconds
    jpeg_quality: int = 80
    max_backoff: float = 30.0


@dataclass
class CaptureStats:
    """What one run did; `capture --json` prints it, and the demo and the tests read that."""

    camera: str
    captured: int = 0
    published: int = 0
    shed: int = 0
    undelivered: int = 0  # recorded as broker_unavailable
    reconnects: int = 0
    expired: int = 0  # in flight past FRAME_REAP_SECONDS: recorded as dropped, "expired"
    skipped: int = 0  # live frames left out to keep to --fps; never given a FrameID
    first_sequence: int | None = None  # the run's frames, when it captured any
    last_sequence: int | None = None


@dataclass
class Backpressure:
    """Hysteresis between the high- and low-water marks of the in-flight bound."""

    shedding: bool = False
    utilisation: float = 0.0
    counts: tuple[int, int] = (0, 0)  # frames in flight: this camera's, all cameras'

    def update(self, camera_inflight: int, total_inflight: int) -> None:
        self.counts = (camera_inflight, total_inflight)
        self.utilisation = max(
            camera_inflight / settings.FRAME_INFLIGHT_PER_CAMERA,
            total_inflight / settings.FRAME_INFLIGHT_TOTAL,
        )
        if self.utilisation >= settings.FRAME_INFLIGHT_HIGH_WATER:
            self.shedding = True
        elif self.utilisation <= settings.FRAME_INFLIGHT_LOW_WATER:
            self.shedding = False

    def describe(self) -> str:
        camera, total = self.counts
        return (
            f"in flight: camera {camera}/{settings.FRAME_INFLIGHT_PER_CAMERA}, all "
            f"{total}/{settings.FRAME_INFLIGHT_TOTAL} (utilisation {self.utilisation:.0%})"
        )


@dataclass
class CaptureWorker:
    config: CaptureConfig
    stop: threading.Event = field(default_factory=threading.Event)
    stats: CaptureStats = field(init=False)
    backpressure: Backpressure = field(default_factory=Backpressure)
    records: FinalRecords = field(init=False)
    # Frames sent down the pipeline and not yet past FRAME_REAP_SECONDS, oldest first.
    in_flight: dict[str, FrameMetadata] = field(default_factory=dict)
    sequence: int = 0
    next_housekeeping: float = 0.0
    broker_down_until: float = 0.0

    def __post_init__(self) -> None:
        self.stats = CaptureStats(self.config.camera_id)
        self.records = FinalRecords(self.config.camera_id)

    def run(self) -> CaptureStats:
        source = open_source(self.config.source)
        self.records.load()
        self.sequence = self.wait_for_redis(self.last_sequence)
        first = self.sequence + 1
        started = time.monotonic()
        try:
            self.loop(source, started)
            source.close()
            if not self.stop.is_set():
                self.drain()
        finally:
            source.close()
            self.records.flush()
            self.records.save()
        if self.sequence >= first:
            self.stats.first_sequence, self.stats.last_sequence = first, self.sequence
        return self.stats

    def last_sequence(self) -> int:
        """Where the camera's sequence stands: Redis, or the stored frames if Redis lost it."""
        sequence = frame_bytes.last_sequence(self.config.camera_id)
        if sequence:
            return sequence
        stored = Frame.objects.filter(camera_id=self.config.camera_id).aggregate(Max("sequence"))
        return max(stored["sequence__max"] or 0, 0)

    def loop(self, source: Source, started: float) -> None:
        if not self.open_with_backoff(source, started):
            return
        period = 1 / (self.config.fps or source.fps or 30.0)
        next_due = time.monotonic()
        while not self.finished(started):
            try:
                image = source.read()
            except SourceError as exc:
                log.warning("camera %s: %s; reconnecting", self.config.camera_id, exc)
                source.close()
                self.stats.reconnects += 1
                CAMERA_RECONNECTS.labels(self.config.camera_id).inc()
                self.open_with_backoff(source, started)
                continue
            if image is None:  # end of a file
                return
            now = time.monotonic()
            if not source.paced and self.config.fps and now < next_due:
                self.stats.skipped += 1  # a live camera faster than --fps asked for
                continue
            if source.paced:
                self.stop.wait(max(0.0, next_due - now))
            # Schedule from the previous deadline so rounding errors never accumulate; after
            # a stall, start afresh instead of bursting to catch up.
            next_due = max(next_due + period, time.monotonic() - period)
            self.capture(image, source.description)
            self.housekeeping()

    def housekeeping(self) -> None:
        now = time.monotonic()
        if now >= self.next_housekeeping:
            self.next_housekeeping = now + HOUSEKEEPING_INTERVAL
            self.reap()
            self.records.flush()

    def reap(self) -> None:
        """Record frames whose task the broker lost (in flight too long) as dropped."""
        try:
            expired = frame_bytes.expired(self.config.camera_id)
        except UNAVAILABLE as exc:
            log.warning("cannot check in-flight frames: %s", exc)
            return
        for frame_id in expired:
            meta = self.in_flight.pop(frame_id, None) or bare_metadata(frame_id)
            detail = f"no stage finished it within {settings.FRAME_REAP_SECONDS:g}s"
            meta.drop(Stage.PIPELINE, DropReason.EXPIRED, detail)
            self.records.add(meta)
            self.stats.expired += 1
        # Frames well past the reaping age that were not reaped reached their end: forget
        # them. The margin covers the moment between capture and parking in Redis.
        horizon = time.time() - settings.FRAME_REAP_SECONDS - 10
        while self.in_flight:
            oldest = next(iter(self.in_flight.values()))
            if oldest.timestamp.timestamp() > horizon:
                break
            del self.in_flight[oldest.frame_id]

    def drain(self) -> None:
        """Wait (at most FRAME_REAP_SECONDS) for the frames in flight to reach an end."""
        deadline = time.monotonic() + settings.FRAME_REAP_SECONDS + 2 * HOUSEKEEPING_INTERVAL
        while time.monotonic() < deadline and not self.stop.is_set():
            self.reap()
            self.records.flush()
            try:
                if frame_bytes.inflight(self.config.camera_id)[0] == 0:
                    return
            except UNAVAILABLE:
                pass
            self.stop.wait(HOUSEKEEPING_INTERVAL)

    def finished(self, started: float) -> bool:
        config = self.config
        return (
            self.stop.is_set()
            or (config.frames is not None and self.stats.captured >= config.frames)
            or (config.duration is not None and time.monotonic() - started >= config.duration)
        )

    def open_with_backoff(self, source: Source, started: float) -> bool:
        """Open the source, retrying with backoff; False if the run ended first."""
        delay = 0.5
        while not self.finished(started):
            try:
                source.open()
                return True
            except SourceError as exc:
                log.warning("camera %s: %s; retrying in %.1fs", self.config.camera_id, exc, delay)
            self.housekeeping()  # frames already in flight still get reaped and recorded
            self.stop.wait(delay)
            delay = min(delay * 2, self.config.max_backoff)
        return False

    def wait_for_redis(self, call: Callable[[], int]) -> int:
        """Retry `call` with backoff while Redis is unreachable (at start-up)."""
        delay = 0.5
        while True:
            try:
                return call()
            except UNAVAILABLE as exc:
                if self.stop.is_set():
                    raise
                log.warning("redis unavailable (%s); retrying in %.1fs", exc, delay)
                self.stop.wait(delay)
                delay = min(delay * 2, self.config.max_backoff)

    def capture(self, image: np.ndarray, description: str) -> None:
        camera = self.config.camera_id
        with tracer.start_as_current_span("capture_frame") as span:
            started = time.time()
            self.sequence += 1
            frame_id = FrameID.generate(camera, sequence=self.sequence)
            meta = FrameMetadata(
                frame_id=frame_id,
                timestamp=frame_id.timestamp,
                camera_id=camera,
                sequence=self.sequence,
                source=description,
                width=int(image.shape[1]),
                height=int(image.shape[0]),
                format="jpeg",
                trace_context=frame_context(span),
            )
            self.stats.captured += 1
            FRAMES_CAPTURED.labels(camera).inc()
            if time.monotonic() < self.broker_down_until:
                self.keep_undelivered(meta, "not tried: the last hand-over failed just now")
            else:
                try:
                    self.hand_over(meta, image, started)
                except UNAVAILABLE as exc:
                    self.broker_down_until = time.monotonic() + BROKER_RETRY_SECONDS
                    self.keep_undelivered(meta, f"{type(exc).__name__}: {exc}")
                    self.unpark(meta)
                except (cv2.error, SourceError) as exc:  # an image OpenCV cannot encode
                    meta.drop(Stage.CAPTURE, DropReason.INVALID, f"{type(exc).__name__}: {exc}")
                    self.records.add(meta)
            span.set_attributes(meta.to_span_attributes())
            span.set_attributes({"pipeline.stage": "capture", "frame.status": meta.status.value})

    def hand_over(self, meta: FrameMetadata, image: np.ndarray, started: float) -> None:
        if self.backpressure.shedding:
            counts = frame_bytes.park(meta.frame_id, self.config.camera_id, self.sequence, None)
            meta.drop(Stage.CAPTURE, DropReason.BACKPRESSURE, self.backpressure.describe())
            meta.timings["capture"] = {"started_at": started, "ended_at": time.time()}
            self.records.add(meta)  # sent with the next batch: shedding stays cheap
            self.stats.shed += 1
        else:
            data = encode_jpeg(image, self.config.jpeg_quality)
            meta.size_bytes = len(data)
            counts = frame_bytes.park(meta.frame_id, self.config.camera_id, self.sequence, data)
            meta.timings["capture"] = {"started_at": started, "ended_at": time.time()}
            frame_pipeline(meta).apply_async()
            self.in_flight[meta.frame_id] = meta
            self.stats.published += 1
        self.backpressure.update(*counts)
        INFLIGHT_FRAMES.labels(self.config.camera_id).set(counts[0])
        INFLIGHT_UTILISATION.labels(self.config.camera_id).set(self.backpressure.utilisation)

    def keep_undelivered(self, meta: FrameMetadata, why: str) -> None:
        log.warning("frame %s not handed over: %s", meta.frame_id, why)
        meta.drop(Stage.CAPTURE, DropReason.BROKER_UNAVAILABLE, why)
        self.records.add(meta)
        self.stats.undelivered += 1

    def unpark(self, meta: FrameMetadata) -> None:
        """Parked before the publish failed? Then it must not be reaped as expired later."""
        try:
            frame_bytes.release(meta.frame_id, self.config.camera_id, keep_bytes=False)
        except UNAVAILABLE:
            pass


def bare_metadata(frame_id: str) -> FrameMetadata:
    """What a frame id alone says of a frame (one published by an earlier run)."""
    parsed = FrameID.parse(frame_id)
    return FrameMetadata(frame_id=parsed, timestamp=parsed.timestamp)


def frame_context(span: trace.Span) -> TraceContext:
    """The frame's W3C context; a fresh one when the SDK is disabled and spans are no-ops."""
    context = TraceContext.from_span(span)
    return context if context.is_valid() else TraceContext.generate()


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise SourceError("JPEG encoding failed")
    return encoded.tobytes()
