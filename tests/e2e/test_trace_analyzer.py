"""scripts/trace_analyzer.py against a real pipeline run, reading traces through Jaeger's API
shapes (tests/e2e/jaeger_api.py, filled by the OTLP receiver; Jaeger itself cannot be
installed here). Its completeness must equal what the receiver shows, counted here by code
of the test's own: a frame missing from Jaeger, orphan spans, a trace split in two, and
Jaeger down.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from io import StringIO
from typing import Any

import cv2
import numpy as np
import pytest
from celery import chain
from opentelemetry import context as otel_context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from detektr_project.celery import app
from frame_tracking import FrameID, FrameMetadata, TraceContext
from frame_tracking.otlp_receiver import OTLPReceiver, ReceivedSpan
from frames.analyzer import FOUND_PROBLEMS, OK, UNAVAILABLE, main
from frames.models import Frame
from tasks import frame_bytes
from tasks.buffer import buffer
from tasks.process import process
from tasks.store import store
from tests.e2e.conftest import REDIS_TEST_URL, ROOT, run_capture, wait_until
from tests.e2e.jaeger_api import JaegerQueryAPI

pytestmark = pytest.mark.e2e

SYNTHETIC = "synthetic://?width=320&height=240&fps=30"
STAGE_SPANS = {"run/detektr.buffer", "run/detektr.process", "run/detektr.store"}
WorkerSpec = tuple[tuple[str, ...], dict[str, str]]  # worker arguments, its environment


@pytest.fixture
def jaeger(otlp: OTLPReceiver) -> Iterator[JaegerQueryAPI]:
    with JaegerQueryAPI(otlp) as api:
        yield api


def analyze(*argv: str) -> tuple[int, str]:
    out = StringIO()
    return main(list(argv), out=out), out.getvalue()


def window(frames: list[Frame]) -> list[str]:
    first = min(f.captured_at for f in frames) - timedelta(seconds=1)
    last = max(f.captured_at for f in frames) + timedelta(seconds=1)
    return ["--since", first.isoformat(), "--until", last.isoformat()]


def count_from_receiver(frames: list[Frame], otlp: OTLPReceiver) -> dict[str, int]:
    """The test's own count, straight from the spans the receiver decoded."""
    traces = otlp.traces()
    spans_of_frame: dict[str, list[ReceivedSpan]] = {}
    for span in otlp.spans:
        if "frame.id" in span.attributes:
            spans_of_frame.setdefault(str(span.attributes["frame.id"]), []).append(span)
    counts = {"complete": 0, "orphan_spans": 0, "split": 0, "missing": 0}
    for frame in frames:
        spans = traces.get(frame.trace_id, [])
        if not spans:
            counts["missing"] += 1
            continue
        ids = {span.span_id for span in spans}
        orphans = [s for s in spans if s.parent_span_id and s.parent_span_id not in ids]
        roots = [s.name for s in spans if not s.parent_span_id]
        stage_spans = [s for s in spans if s.name in STAGE_SPANS]
        names = {s.name for s in stage_spans}
        tagged = all(s.attributes.get("frame.id") == frame.frame_id for s in stage_spans)
        counts["orphan_spans"] += len(orphans)
        if roots == ["capture_frame"] and not orphans and names == STAGE_SPANS and tagged:
            counts["complete"] += 1
        elsewhere = {s.name for s in spans_of_frame.get(frame.frame_id, [])
                     if s.trace_id != frame.trace_id}  # fmt: skip
        if elsewhere & (STAGE_SPANS - names):
            counts["split"] += 1
    return counts


def captured_frames(
    start_worker,
    env: dict[str, str],
    camera: str,
    n: int,
    *workers_env: tuple[tuple[str, ...], dict[str, str]],
) -> list[Frame]:
    """n frames of a camera through workers started with these (arguments, environment)."""
    workers = [start_worker(*args, env=worker_env) for args, worker_env in workers_env]
    if not workers:
        workers = [start_worker("-c", "2", env=env)]
    run_capture(env, "--camera", camera, "--source", SYNTHETIC, "--frames", str(n))
    wait_until(lambda: Frame.objects.filter(camera_id=camera).count() >= n, 120, interval=0.5)
    for worker in workers:
        worker.stop()  # spans buffered in the workers leave now
    return list(Frame.objects.filter(camera_id=camera).order_by("sequence"))


def test_completeness_equals_the_receivers_count_through_both_jaeger_apis(
    start_worker, pipeline_env, otlp, jaeger
):
    frames = captured_frames(start_worker, pipeline_env, "an01", 40)
    assert len(frames) == 40
    expected = count_from_receiver(frames, otlp)
    span = window(frames)

    # The real script, as an operator runs it.
    script = subprocess.run(
        [sys.executable, "scripts/trace_analyzer.py", "completeness", *span, "--json",
         "--jaeger-url", jaeger.url],
        cwd=ROOT, env=pipeline_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert script.returncode == OK, script.stderr
    report = json.loads(script.stdout)
    assert report["checked"] == 40
    assert report["complete"] == expected["complete"] == 40
    assert report["orphan_spans"] == expected["orphan_spans"] == 0
    assert report["complete_pct"] == 100.0

    jaeger.legacy_only = True  # an older Jaeger: the same answer through /api/traces
    code, out = analyze("completeness", *span, "--json", "--jaeger-url", jaeger.url)
    assert (code, json.loads(out)["complete"]) == (OK, 40)
    jaeger.legacy_only = False

    code, out = analyze("search", frames[5].frame_id, "--jaeger-url", jaeger.url)
    assert code == OK, out
    assert "8 spans, complete" in out or "7 spans, complete" in out
    lines = out.splitlines()
    process_run = next(i for i, line in enumerate(lines) if "run/detektr.process" in line)
    assert "· queued" in lines[process_run - 1]  # the wait in the process queue, as a gap
    assert "detektr-capture" in out and "detektr-worker" in out

    hidden = frames[7]
    jaeger.hide(hidden.trace_id)
    code, out = analyze("completeness", *span, "--json", "--jaeger-url", jaeger.url)
    report = json.loads(out)
    assert code == FOUND_PROBLEMS
    assert (report["complete"], report["missing_from_backend"]) == (39, 1)
    assert report["examples"]["missing from the trace backend"] == [hidden.frame_id]
    code, out = analyze("search", hidden.frame_id, "--jaeger-url", jaeger.url)
    assert code == FOUND_PROBLEMS
    assert f"Jaeger has no trace {hidden.trace_id}" in out
    assert "the journey detektr recorded" in out and "store" in out

    jaeger.down()
    code, out = analyze("completeness", *span, "--json", "--jaeger-url", jaeger.url)
    assert code == UNAVAILABLE
    report_down = json.loads(out)
    assert report_down["unreadable"] == 40 and report_down["checked"] == 0
    assert "could not be read" in report_down["error"]
    assert "gave up after 10 traces in a row" in report_down["error"]
    code, out = analyze("search", frames[0].frame_id, "--jaeger-url", jaeger.url)
    assert code == UNAVAILABLE
    assert "Jaeger could not be asked (unreachable)" in out and "Traceback" not in out


def test_spans_a_stage_never_exported_leave_orphans_counted_alike(
    start_worker, pipeline_env, otlp, jaeger
):
    """The buffer worker's collector is unreachable: its spans are lost, and the process
    stage's spans hang from a parent no one has."""
    lost = {**pipeline_env, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
    frames = captured_frames(
        start_worker, pipeline_env, "an02", 15,
        (("-Q", "buffer", "--pool", "solo"), lost),
        (("-Q", "process,store", "--pool", "solo"), pipeline_env),
    )  # fmt: skip
    expected = count_from_receiver(frames, otlp)
    code, out = analyze("completeness", *window(frames), "--json", "--jaeger-url", jaeger.url)
    report = json.loads(out)
    assert code == FOUND_PROBLEMS
    assert report["complete"] == expected["complete"] == 0
    assert report["orphan_spans"] == expected["orphan_spans"] >= 15
    assert report["frames_with_orphans"] == 15
    assert report["missing_stage"] == {"buffer": 15}
    code, out = analyze("search", frames[0].frame_id, "--jaeger-url", jaeger.url)
    assert "orphans (parent missing): run/detektr.process" in out


def test_a_frame_sent_without_its_trace_context_is_found_split_in_two(
    start_worker, pipeline_env, otlp, jaeger, settings: Any
):
    """A producer without the instrumentation: the stages run in a trace of their own."""
    worker = start_worker("-c", "2")
    run_capture(pipeline_env, "--camera", "an03", "--source", SYNTHETIC, "--frames", "10")
    broken = publish_without_context(otlp, settings)
    wait_until(lambda: Frame.objects.filter(camera_id="an03").count() >= 11, 120)
    worker.stop()
    frames = list(Frame.objects.filter(camera_id="an03").order_by("captured_at"))
    assert len(frames) == 11
    expected = count_from_receiver(frames, otlp)
    assert (expected["complete"], expected["split"]) == (10, 1)

    code, out = analyze("completeness", *window(frames), "--json", "--jaeger-url", jaeger.url)
    report = json.loads(out)
    assert code == FOUND_PROBLEMS
    assert (report["complete"], report["split"]) == (10, 1)
    assert report["examples"]["split in two"] == [broken]
    assert report["missing_stage"] == {"buffer": 1, "process": 1, "store": 1}
    code, out = analyze("completeness", *window(frames), "--jaeger-url", jaeger.url)
    assert "split in two        1" in out and f"e.g. split in two: {broken}" in out


def publish_without_context(otlp: OTLPReceiver, settings: Any) -> str:
    """Capture's steps by hand, but the chain is sent with no trace context in its headers."""
    provider = TracerProvider(resource=Resource.create({"service.name": "detektr-capture"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(f"{otlp.endpoint}/v1/traces")))
    settings.REDIS_URL = REDIS_TEST_URL
    frame_bytes.client.cache_clear()
    frame_id = FrameID.generate("an03", sequence=100)
    with provider.get_tracer("test").start_as_current_span("capture_frame") as span:
        meta = FrameMetadata(frame_id=frame_id, timestamp=frame_id.timestamp,
                             trace_context=TraceContext.from_span(span))  # fmt: skip
        span.set_attributes(meta.to_span_attributes())
        image = np.full((240, 320, 3), 90, np.uint8)
        frame_bytes.park(frame_id, "an03", cv2.imencode(".jpg", image)[1].tobytes())
    token = otel_context.attach(otel_context.Context())  # nothing current: no traceparent
    try:
        with app.connection_for_write(REDIS_TEST_URL) as connection:
            chain(buffer.s(meta.to_dict()), process.s(), store.s()).apply_async(
                connection=connection
            )
    finally:
        otel_context.detach(token)
        frame_bytes.client.cache_clear()
    provider.shutdown()
    return str(frame_id)
