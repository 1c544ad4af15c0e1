"""Every Prometheus metric detektr emits, declared once. The dashboard queries only these."""

from __future__ import annotations

import os

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
    start_http_server,
)

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
    "under their first status",
    ["camera", "previous_reason", "status"],
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
CAMERA_RECONNECTS = Counter(
    "detektr_camera_reconnects_total", "Times a capture worker reopened its source", ["camera"]
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


def registry() -> CollectorRegistry:
    """What to serve: with PROMETHEUS_MULTIPROC_DIR (prefork workers), every process's numbers
    summed from the shared directory; without it, this process's own."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        collected = CollectorRegistry()
        multiprocess.MultiProcessCollector(collected)  # type: ignore[no-untyped-call]
        return collected
    return REGISTRY


def serve(port: int) -> None:
    """Serve /metrics on the port from a background thread."""
    start_http_server(port, registry=registry())


def forget_process(pid: int) -> None:
    """A pool process exited: drop its live gauges (its counters stay in the sums)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
