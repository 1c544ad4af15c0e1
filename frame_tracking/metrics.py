"""Every Prometheus metric detektr emits, declared once. The dashboard and the alert rules
query only these."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    make_wsgi_app,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

FRAMES_CAPTURED = Counter(
    "detektr_frames_captured_total", "Frames read from a camera and given a FrameID", ["camera"]
)
FRAMES_SKIPPED = Counter(
    "detektr_frames_skipped_total",
    "Frames read from a camera and left out before they got a FrameID (over --fps, or Redis "
    "could not number them)",
    ["camera", "reason"],
)
FRAMES_FINISHED = Counter(
    "detektr_frames_finished_total",
    "Frames that reached a final status (stored, dropped, failed), each counted once: when "
    "its row is written (a redelivered or duplicate record counts nothing)",
    ["camera", "status", "reason"],
)
FRAMES_STATUS_CHANGED = Counter(
    "detektr_frames_status_changed_total",
    "Frames counted as dropped or failed whose row a later store turned into this status (e.g. "
    "reaped as expired, then stored after all); detektr_frames_finished_total keeps them "
    "under their first status. Rare: per reason, not per camera (the rows name the cameras)",
    ["previous_reason", "status"],
)
STAGE_SECONDS = Histogram(
    "detektr_stage_duration_seconds",
    "Time a stage spent on one frame",
    ["stage"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
QUEUE_WAIT_SECONDS = Histogram(
    "detektr_queue_wait_seconds",
    "Time a frame waited in a stage's queue before a worker picked it up",
    ["stage"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
END_TO_END_SECONDS = Histogram(
    "detektr_capture_to_finished_seconds",
    "Time from capture to the frame's final status",
    ["camera", "status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
INFLIGHT_FRAMES = Gauge(
    "detektr_inflight_frames", "Frames between capture and their final status", ["camera"]
)
INFLIGHT_UTILISATION = Gauge(
    "detektr_inflight_utilisation",
    "Frames in flight over the in-flight bound (the larger of per camera and overall); "
    "capture sheds from the high-water mark down to the low-water mark",
    ["camera"],
)
INFLIGHT_LIMIT = Gauge(
    "detektr_inflight_limit",
    "Frames the camera may have in flight now: its fair share of what the pipeline finishes "
    "within the latency budget (FRAME_LATENCY_BUDGET_MS), at most FRAME_INFLIGHT_PER_CAMERA",
    ["camera"],
)
CAMERA_RECONNECTS = Counter(
    "detektr_camera_reconnects_total", "Times a capture worker reopened its source", ["camera"]
)
CAMERA_UP = Gauge(
    "detektr_camera_up",
    "1 while the capture worker's camera delivers frames, 0 while it is starting, stalled or "
    "reconnecting",
    ["camera"],
)
CAMERA_LAST_FRAME = Gauge(
    "detektr_camera_last_frame_timestamp_seconds",
    "Unix time of the last frame the capture worker read from its camera",
    ["camera"],
)
TRACE_CONTEXT_INVALID = Counter(
    "detektr_trace_context_invalid_total",
    "Malformed traceparent/tracestate values met and replaced by an invalid context",
)
TRACE_BREAKS = Counter(
    "detektr_trace_breaks_total",
    "Stage runs that found no usable trace context in their task headers and started a new trace",
    ["stage"],
)
# The tracer's own health, counted where the batch processor meets the exporter.
SPANS_EXPORTED = Counter(
    "detektr_spans_exported_total", "Spans the exporter delivered to the tracing backend"
)
SPAN_EXPORT_FAILURES = Counter(
    "detektr_span_export_failures_total",
    "Spans an export attempt could not deliver (backend down, refused or timed out): lost "
    "without a span spool; a spool keeps them on disk and counts them at each attempt",
)
SPANS_DROPPED = Counter(
    "detektr_spans_dropped_total",
    "Spans the batch processor dropped because its queue was full (exporter too slow): lost",
)


@dataclass(frozen=True)
class QueueReading:
    """A stage queue as the broker sees it at scrape time."""

    queue: str
    depth: int
    oldest_frame_age: float | None  # seconds since capture of the frame next in line
    consumers: int | None  # workers consuming it; None when the workers could not be asked
    # False where the broker cannot show a waiting message (RabbitMQ): no age gauge then.
    age_known: bool = True


class QueueCollector:
    """Gauges read from the broker when Prometheus scrapes, not kept up to date per frame:
    queue depth, the age of the frame waiting longest, and how many workers consume each
    stage queue."""

    def __init__(self, read: Callable[[], Iterable[QueueReading]]) -> None:
        self.read = read

    def describe(self) -> list[Metric]:
        return list(self._families([]))

    def collect(self) -> Iterator[Metric]:
        return self._families(self.read())

    def _families(self, readings: Iterable[QueueReading]) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "detektr_queue_depth", "Tasks waiting in a stage queue", labels=["queue"]
        )
        age = GaugeMetricFamily(
            "detektr_queue_oldest_frame_age_seconds",
            "Seconds since capture of the oldest frame waiting in a stage queue (0 when empty)",
            labels=["queue"],
        )
        consumers = GaugeMetricFamily(
            "detektr_queue_consumers",
            "Celery workers consuming a stage queue (asked with a broadcast at scrape time; "
            "on RabbitMQ, the queue's own consumer count)",
            labels=["queue"],
        )
        for reading in readings:
            depth.add_metric([reading.queue], reading.depth)
            if reading.age_known:
                age.add_metric([reading.queue], reading.oldest_frame_age or 0.0)
            if reading.consumers is not None:
                consumers.add_metric([reading.queue], reading.consumers)
        yield from (depth, age, consumers)


def registry(*collectors: QueueCollector) -> CollectorRegistry:
    """What to serve: with PROMETHEUS_MULTIPROC_DIR (prefork workers), every process's numbers
    summed from the shared directory; without it, this process's own. `collectors` are read
    at scrape time on top."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        collected = CollectorRegistry()
        multiprocess.MultiProcessCollector(collected)  # type: ignore[no-untyped-call]
    elif collectors:
        collected = CollectorRegistry()
        collected.register(_Process())
    else:
        return REGISTRY
    for collector in collectors:
        collected.register(collector)
    return collected


class _Process:
    """This process's own metrics, as one collector of a registry that adds others."""

    def collect(self) -> Iterator[Metric]:
        return iter(REGISTRY.collect())


# A health check answers (HTTP status, JSON body).
HealthCheck = Callable[[], tuple[int, dict[str, Any]]]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:  # scrapes every few seconds: no access log
        pass


def serve(port: int, health: HealthCheck | None = None) -> WSGIServer:
    """Serve /metrics on the port from a background thread, and /health when given."""
    metrics_app = make_wsgi_app(registry())

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if health is None or environ.get("PATH_INFO") != "/health":
            return metrics_app(environ, start_response)  # type: ignore[no-any-return]
        status, body = health()
        text = json.dumps(body).encode()
        start_response(
            f"{status} {'OK' if status == 200 else 'Service Unavailable'}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(text)))],
        )
        return [text]

    server = make_server("", port, app, _ThreadingServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def forget_process(pid: int) -> None:
    """A pool process exited: drop its live gauges (its counters stay in the sums)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
