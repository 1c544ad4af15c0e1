"""What keeps traces whole when a worker is killed: Celery spans that a redelivered task
re-creates under the same ids (the spans spooled before a task is acknowledged:
tests/test_span_spool.py)."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from frame_tracking.span_delivery import tracer_provider


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
