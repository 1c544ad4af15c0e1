"""What keeps traces whole when a worker is killed: spans exported before a task is
acknowledged, and Celery spans that a redelivered task re-creates under the same ids."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from frame_tracking.span_delivery import SpanFlusher, tracer_provider


def child_span_id(provider: TracerProvider, parent: trace.Span, name: str) -> int:
    span = provider.get_tracer("test").start_span(name, context=trace.set_span_in_context(parent))
    span.end()
    return span.get_span_context().span_id


def test_a_redelivered_task_recreates_its_celery_spans_under_the_same_ids() -> None:
    provider = tracer_provider(Resource.create({}))
    tracer = provider.get_tracer("test")
    frame, other_frame = tracer.start_span("capture_frame"), tracer.start_span("capture_frame")
    for name in ("apply_async/detektr.buffer", "run/detektr.process"):
        first, again = (child_span_id(provider, frame, name) for _ in range(2))
        assert first == again
        assert child_span_id(provider, other_frame, name) != first
    assert child_span_id(provider, frame, "run/detektr.store") != first


def test_other_spans_keep_random_ids() -> None:
    provider = tracer_provider(Resource.create({}))
    tracer = provider.get_tracer("test")
    frame = tracer.start_span("capture_frame")
    assert child_span_id(provider, frame, "processor quality") != child_span_id(
        provider, frame, "processor quality"
    )
    roots = {tracer.start_span("run/detektr.buffer").get_span_context().span_id for _ in range(5)}
    assert len(roots) == 5  # no parent: nothing to derive an id from


def test_the_configured_sampler_still_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    provider = tracer_provider(Resource.create({}))
    span = provider.get_tracer("test").start_span("capture_frame")
    assert not span.get_span_context().trace_flags.sampled
    assert "AlwaysOffSampler" in provider.sampler.get_description()


def provider_with(exporter: SpanExporter) -> TracerProvider:
    provider = TracerProvider()
    # A schedule far longer than the test: only a flush exports.
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=600_000))
    return provider


def test_a_flush_exports_the_finished_task_s_spans() -> None:
    exporter = InMemorySpanExporter()
    provider = provider_with(exporter)
    flusher = SpanFlusher(provider, timeout=30)
    provider.get_tracer("test").start_span("run/detektr.buffer").end()
    assert exporter.get_finished_spans() == ()
    assert flusher.flush()
    assert [span.name for span in exporter.get_finished_spans()] == ["run/detektr.buffer"]


class HangingExporter(SpanExporter):
    """A tracing backend that does not answer until told to."""

    def __init__(self) -> None:
        self.answer = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.answer.wait(30)
        return SpanExportResult.SUCCESS


def test_a_backend_that_hangs_is_waited_for_once_then_not_while_the_breaker_is_open() -> None:
    exporter = HangingExporter()
    provider = provider_with(exporter)
    flusher = SpanFlusher(provider, timeout=0.05)
    provider.get_tracer("test").start_span("run/detektr.buffer").end()
    assert not flusher.flush()  # waited its timeout
    requested = flusher.requested
    assert not flusher.flush()  # the breaker is open: no wait, no new export
    assert flusher.requested == requested
    exporter.answer.set()
    with flusher.condition:
        assert flusher.condition.wait_for(lambda: flusher.done == requested, 30)
    flusher.open_until = 0.0  # BREAKER_SECONDS later
    assert flusher.flush()
