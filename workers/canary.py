"""A canary frame: one marked test frame through the live pipeline, by the path capture uses.

Its bytes are parked in Redis and its chain sent inside a `capture_frame` span exactly as
the capture worker does (frame_bytes.park, tasks.frame_pipeline); it differs only in being
flagged `test` (left out of the camera's figures) and in taking no sequence number from
its camera (sequence 0, never a gap or a duplicate in the camera's accounting).
`manage.py send_test_frame` and `POST /frames/test` send it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from frame_tracking import FrameID, FrameMetadata, TraceContext
from tasks import frame_bytes, frame_pipeline, queues
from workers.capture import encode_jpeg, frame_context
from workers.sources import SyntheticSource

tracer = trace.get_tracer("detektr.canary")
SIZE = (320, 240)


class BadTraceparent(ValueError):
    pass


def send_test_frame(camera: str = "canary", traceparent: str | None = None) -> FrameMetadata:
    """Send one test frame; returns its metadata (frame id, trace context) at once.

    Raises BadTraceparent for a malformed traceparent; Redis and broker errors propagate.
    """
    parent = None
    if traceparent is not None:
        if not TraceContext.from_headers(traceparent).is_valid():
            raise BadTraceparent(f"not a W3C traceparent: {traceparent!r:.80}")
        parent = TraceContextTextMapPropagator().extract({"traceparent": traceparent})
    _instrument_publishing()
    source = SyntheticSource(width=SIZE[0], height=SIZE[1], description="canary")
    source.open()
    image = source.read()
    assert image is not None  # the synthetic pattern never ends
    with tracer.start_as_current_span("capture_frame", context=parent) as span:
        started = time.time()
        frame_id = FrameID.generate(camera, sequence=0)
        meta = FrameMetadata(
            frame_id=frame_id, timestamp=frame_id.timestamp, camera_id=camera, sequence=0,
            source="canary", width=SIZE[0], height=SIZE[1], format="jpeg",
            trace_context=frame_context(span), test=True,
        )  # fmt: skip
        data = encode_jpeg(image, 80)
        meta.size_bytes = len(data)
        frame_bytes.park(frame_id, camera, data)
        meta.timings["capture"] = {"started_at": started, "ended_at": time.time()}
        frame_pipeline(meta).apply_async()
        span.set_attributes(meta.to_span_attributes())
        span.set_attributes({"pipeline.stage": "capture", "frame.test": True})
    return meta


def _instrument_publishing() -> None:
    # Trace context reaches the tasks through the instrumentation's publish hook.
    instrumentor = CeleryInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()


@dataclass(frozen=True)
class Consumers:
    by_queue: dict[str, list[str]]  # stage queue -> workers consuming it

    @property
    def missing(self) -> list[str]:
        return [queue for queue, workers in self.by_queue.items() if not workers]

    def describe(self) -> str:
        seen = "; ".join(f"{q}: {', '.join(w) or 'none'}" for q, w in self.by_queue.items())
        return seen or "no worker answered"


def stage_consumers(timeout: float = 2.0) -> Consumers:
    """Which workers consume each stage queue (tasks.queues). Broker errors propagate."""
    return Consumers(queues.consumers(timeout))
