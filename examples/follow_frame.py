"""Another service continues a frame's trace: its work shows up in the frame's trace in Jaeger.

It reads the frame from detektr's /frames API (or its row) and starts a span whose parent is
the frame's root span. Run it with the OpenTelemetry SDK set up in that service.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

tracer = trace.get_tracer("my-service")


def frame_context(frame: dict[str, Any]) -> Any:
    """The frame's W3C context, from the `trace_id`, `span_id` and `sampled` of its JSON."""
    flags = "01" if frame["sampled"] else "00"
    traceparent = f"00-{frame['trace_id']}-{frame['span_id']}-{flags}"
    return TraceContextTextMapPropagator().extract({"traceparent": traceparent})


def handle(frame: dict[str, Any]) -> None:
    with tracer.start_as_current_span("my-service handle", context=frame_context(frame)) as span:
        span.set_attribute("frame.id", frame["frame_id"])
        ...  # the service's own work on the frame
