"""The capture worker: a plain loop that reads a camera and hands every frame to the pipeline.

Per frame: a number from Redis and a FrameID, a root span `capture_frame`, a motion score
against the previous frame (workers/motion.py), JPEG bytes parked in Redis (the claim
check) and one Celery chain published inside that span, so the instrumentation puts the
frame's trace context into the task headers; the frame's spans then go to the span spool
(frame_tracking/span_spool.py), as a task's do in a worker. What happens to each frame
afterwards is the ledger's business (workers/ledger.py). One process per camera; a shutdown
flag set by SIGTERM/SIGINT ends the loop between frames.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TypeVar

import cv2
import numpy as np
from opentelemetry import trace

from frame_tracking import FrameID, FrameMetadata, TraceContext
from frame_tracking.context import SAMPLED
from frame_tracking.logs import bind_frame, unbind_frame
from frame_tracking.metrics import FRAMES_CAPTURED, FRAMES_SKIPPED
from frame_tracking.status import SkipReason
from frame_tracking.telemetry import exporter_names, write_spans
from frames.models import Frame
from tasks import frame_bytes, frame_pipeline
from workers.camera_state import CameraState
from workers.lease import CameraLease
from workers.ledger import UNAVAILABLE, Backoff, CaptureStats, Ledger, Outage
from workers.motion import Motion
from workers.pacing import RateLimit, Schedule
from workers.sources import Source, SourceError, open_source, stall_seconds

log = logging.getLogger(__name__)
T = TypeVar("T")
tracer = trace.get_tracer("detektr.capture")


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
class CaptureWorker:
    config: CaptureConfig
    stop: threading.Event = field(default_factory=threading.Event)
    ledger: Ledger = field(init=False)
    lease: CameraLease = field(init=False)
    # The last number Redis gave this run, the floor for the next: never counted on locally.
    sequence: int = 0
    numbering: Outage = field(default_factory=Outage)  # Redis failed to number just now
    # Names this run to the numbering script: a number whose answer Redis lost is given again.
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    motion: Motion = field(default_factory=Motion)
    state: CameraState = field(init=False)

    def __post_init__(self) -> None:
        self.ledger = Ledger(CaptureStats(self.config.camera_id))
        self.lease = CameraLease(frame_bytes.client(), self.config.camera_id)
        self.state = CameraState(self.config.camera_id, stall_seconds(self.config.fps))
        for reason in SkipReason:  # each series from 0, so rate() shows the first skip
            FRAMES_SKIPPED.labels(self.config.camera_id, reason.value)

    @property
    def stats(self) -> CaptureStats:
        return self.ledger.stats

    def run(self) -> CaptureStats:
        """Capture until done; CameraBusy if another process has the camera."""
        source = open_source(self.config.source)
        self.wait_for_redis(self.lease.acquire)
        self.lease.keep(on_lost=self.stop)
        try:
            self.ledger.open()
            self.sequence = self.wait_for_redis(self.last_sequence)
            started = time.monotonic()
            try:
                self.loop(source, started)
                source.close()
                if not self.stop.is_set():
                    self.ledger.drain(self.stop)
            finally:
                source.close()
                self.ledger.close()
        finally:
            self.state.stopped()
            self.lease.release()
        return self.stats

    def last_sequence(self) -> int:
        """Where the camera's numbers stand: Redis, or the newest stored frame if Redis lost
        them (newest by capture time, which the index serves; sequences grow with it)."""
        sequence = frame_bytes.last_sequence(self.config.camera_id)
        if sequence:
            return sequence
        newest = Frame.newest(self.config.camera_id)
        return newest[0] if newest else 0

    def loop(self, source: Source, started: float) -> None:
        if not self.open_with_backoff(source, started):
            return
        fps = self.config.fps or source.fps or 30.0
        schedule = Schedule(1 / fps) if source.paced else None
        limit = RateLimit(self.config.fps) if self.config.fps and not source.paced else None
        while not self.finished(started):
            try:
                image = source.read()
            except SourceError as exc:
                log.warning("camera %s: %s; reconnecting", self.config.camera_id, exc)
                source.close()
                self.stats.reconnects += 1
                self.state.reconnecting(str(exc))
                self.open_with_backoff(source, started)
                continue
            if image is None:  # end of a file
                return
            if limit and not limit.keep(arrival(source)):
                self.skip(SkipReason.OVER_FPS)  # a live camera faster than --fps asked for
                continue
            if schedule:
                self.stop.wait(schedule.wait(time.monotonic()))
            self.capture(image, source.description)
            self.ledger.housekeeping()

    def finished(self, started: float) -> bool:
        config = self.config
        return (
            self.stop.is_set()
            or (config.frames is not None and self.stats.captured >= config.frames)
            or (config.duration is not None and time.monotonic() - started >= config.duration)
        )

    def open_with_backoff(self, source: Source, started: float) -> bool:
        """Open the source, retrying with backoff; False if the run ended first."""
        backoff = Backoff(self.config.max_backoff)
        while not self.finished(started):
            try:
                source.open()
                return True
            except SourceError as exc:
                delay = backoff.next()
                log.warning("camera %s: %s; retrying in %.1fs", self.config.camera_id, exc, delay)
                self.state.retrying_open(str(exc))
            self.ledger.housekeeping()  # frames already in flight still get reaped and recorded
            self.stop.wait(min(delay, self.time_left(started)))
        return False

    def time_left(self, started: float) -> float:
        """Seconds until --duration ends the run (inf without one): a backoff ends with it."""
        if self.config.duration is None:
            return math.inf
        return max(0.0, self.config.duration - (time.monotonic() - started))

    def wait_for_redis(self, call: Callable[[], T]) -> T:
        """Retry `call` with backoff while Redis is unreachable (at start-up)."""
        backoff = Backoff(self.config.max_backoff)
        while True:
            try:
                return call()
            except UNAVAILABLE as exc:
                if self.stop.is_set():
                    raise
                delay = backoff.next()
                log.warning("redis unavailable (%s); retrying in %.1fs", exc, delay)
                self.stop.wait(delay)

    def number(self) -> int | None:
        """The frame's sequence number from Redis; None while Redis cannot give one.

        A number Redis gave but whose answer never came (Redis went down in between) is
        asked for again with the same floor, and given again: no gap, no false loss."""
        if self.numbering.active():
            return None
        camera = self.config.camera_id
        try:
            self.sequence = frame_bytes.next_sequence(camera, self.sequence, self.run_id)
        except UNAVAILABLE as exc:
            log.warning("camera %s: no sequence number for a frame: %s", camera, exc)
            self.numbering.began()
            self.state.not_handed_over(f"Redis cannot number frames: {type(exc).__name__}: {exc}")
            return None
        if self.stats.first_sequence is None:
            self.stats.first_sequence = self.sequence
        self.stats.last_sequence = self.sequence
        return self.sequence

    def skip(self, reason: SkipReason) -> None:
        if reason is SkipReason.OVER_FPS:
            self.stats.skipped += 1
        else:
            self.stats.unnumbered += 1
        FRAMES_SKIPPED.labels(self.config.camera_id, reason.value).inc()

    def capture(self, image: np.ndarray, description: str) -> None:
        camera = self.config.camera_id
        self.state.frame()
        sequence = self.number()
        if sequence is None:
            self.skip(SkipReason.REDIS_UNAVAILABLE)
            return
        with tracer.start_as_current_span("capture_frame") as span:
            started = time.time()
            frame_id = FrameID.generate(camera, sequence=sequence)
            logged_as = bind_frame(frame_id)
            meta = FrameMetadata(
                frame_id=frame_id,
                timestamp=frame_id.timestamp,
                camera_id=camera,
                sequence=sequence,
                source=description,
                width=int(image.shape[1]),
                height=int(image.shape[0]),
                format="jpeg",
                trace_context=frame_context(span),
            )
            motion = self.motion.score(frame_id, image)
            meta.results["motion"] = dict(motion)
            self.stats.captured += 1
            FRAMES_CAPTURED.labels(camera).inc()
            self.hand_over(meta, image, started)
            span.set_attributes(meta.to_span_attributes())
            if motion["score"] is not None:
                span.set_attribute("motion.score", motion["score"])
            span.set_attributes({"pipeline.stage": "capture", "frame.status": meta.status.value})
            unbind_frame(logged_as)
        # The frame's root span on disk now, as a worker writes a task's: a capture killed
        # after this takes none of it along, and a collector that is down costs none of it.
        write_spans()

    def hand_over(self, meta: FrameMetadata, image: np.ndarray, started: float) -> None:
        """Into the pipeline, or, when that cannot or should not be, into the ledger."""
        camera = self.config.camera_id
        if self.ledger.broker.active():
            self.ledger.undelivered(meta)
            return
        try:
            if self.ledger.backpressure.shedding:
                counts = frame_bytes.admission_counts(camera)
                if self.ledger.still_shedding(counts):
                    self.ledger.shed(meta, started, counts)
                    return
            data = encode_jpeg(image, self.config.jpeg_quality)
            meta.size_bytes = len(data)
            counts = frame_bytes.park(meta.frame_id, camera, data)
            meta.timings["capture"] = {"started_at": started, "ended_at": time.time()}
            frame_pipeline(meta).apply_async()
            self.ledger.sent(meta, counts)
            self.state.handed_over()
        except UNAVAILABLE as exc:
            self.ledger.undelivered(meta, exc)
            self.state.not_handed_over(f"frames are not handed over: {type(exc).__name__}: {exc}")
        except (cv2.error, SourceError) as exc:  # an image OpenCV cannot encode
            self.ledger.invalid(meta, exc)


def arrival(source: Source) -> float:
    """When the frame came, for --fps: the stream's own time if it has one, else now."""
    stream_time = source.frame_time()
    return time.monotonic() if stream_time is None else stream_time


def frame_context(span: trace.Span) -> TraceContext:
    """The frame's W3C context, as its row records it: `sampled` there means exported, so the
    row links to a trace only when one reaches a tracing backend. With the SDK disabled spans
    are no-ops: a fresh context, not sampled. With OTEL_TRACES_EXPORTER=none (or console
    alone) spans are made and sent nowhere a trace could be read: not sampled either."""
    context = TraceContext.from_span(span)
    if not context.is_valid():
        return TraceContext.generate(sampled=False)
    if context.sampled and "otlp" not in exporter_names():
        return replace(context, trace_flags=context.trace_flags & ~SAMPLED)
    return context


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise SourceError("JPEG encoding failed")
    return encoded.tobytes()
