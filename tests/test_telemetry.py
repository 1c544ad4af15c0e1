"""The tracing bootstrap: OTEL_TRACES_EXPORTER, and the tracer's own health counted at the
boundary between the batch processor and the exporter, against a real OTLP receiver."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import cast

import pytest
from django.core.exceptions import ImproperlyConfigured
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from prometheus_client import REGISTRY

from frame_tracking.otlp_receiver import OTLPReceiver
from frame_tracking.telemetry import (
    CountingBatchSpanProcessor,
    CountingExporter,
    ProcessResource,
    exporter_names,
)
from tests.e2e.conftest import ROOT, wait_until
from tests.e2e.services import Blackhole, free_port

# A process that sets tracing up from its environment, makes one span and exits cleanly.
ONE_SPAN = """
from frame_tracking.telemetry import configure_tracing, shutdown_tracing
from opentelemetry import trace
provider = configure_tracing("detektr-test")
with trace.get_tracer("t").start_as_current_span("one_span") as span:
    print("TRACE", format(span.get_span_context().trace_id, "032x"), flush=True)
shutdown_tracing()
"""


def run_one_span(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", ONE_SPAN],
        cwd=ROOT, env={**os.environ, "OTEL_BSP_SCHEDULE_DELAY": "50", **env},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def counted(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


@pytest.fixture
def otlp():
    with OTLPReceiver() as receiver:
        yield receiver


def test_it_exports_over_otlp_by_default(otlp):
    result = run_one_span(OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint)
    assert result.returncode == 0, result.stderr
    trace_id = result.stdout.split()[1]
    assert [span.name for span in otlp.traces()[trace_id]] == ["one_span"]


def test_none_makes_spans_with_trace_ids_but_exports_nothing(otlp):
    result = run_one_span(OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint, OTEL_TRACES_EXPORTER="none")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[1] != "0" * 32  # frames still get a real trace id
    assert otlp.requests == 0


def test_console_prints_the_spans_instead(otlp):
    result = run_one_span(OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint, OTEL_TRACES_EXPORTER="console")
    assert result.returncode == 0, result.stderr
    trace_id = result.stdout.split()[1]
    printed = json.loads(result.stdout[result.stdout.index("{") :])
    assert printed["name"] == "one_span"
    assert printed["context"]["trace_id"] == f"0x{trace_id}"
    assert otlp.requests == 0


def test_console_and_otlp_together_do_both(otlp):
    result = run_one_span(
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint, OTEL_TRACES_EXPORTER="otlp,console"
    )
    assert result.returncode == 0, result.stderr
    assert '"name": "one_span"' in result.stdout
    assert result.stdout.split()[1] in otlp.traces()


def test_an_unknown_exporter_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    with pytest.raises(ValueError, match="OTEL_TRACES_EXPORTER='zipkin'"):
        exporter_names()


def test_a_worker_refuses_to_start_with_an_unknown_exporter():
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT, env={**os.environ, "OTEL_TRACES_EXPORTER": "jaeger"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert ImproperlyConfigured.__name__ in result.stderr
    assert "OTEL_TRACES_EXPORTER='jaeger'" in result.stderr


def spans(provider: TracerProvider, count: int) -> None:
    tracer = provider.get_tracer("test")
    for number in range(count):
        tracer.start_span(f"span-{number}").end()


def test_spans_delivered_and_spans_lost_are_counted(otlp):
    exported, failed = (
        counted("detektr_spans_exported_total"),
        counted("detektr_span_export_failures_total"),
    )
    provider = TracerProvider()
    provider.add_span_processor(
        CountingBatchSpanProcessor(
            CountingExporter(OTLPSpanExporter(endpoint=f"{otlp.endpoint}/v1/traces"))
        )
    )
    spans(provider, 5)
    provider.force_flush()
    closed = TracerProvider()  # nothing listens there: every export fails
    closed.add_span_processor(
        CountingBatchSpanProcessor(
            CountingExporter(
                OTLPSpanExporter(endpoint=f"http://127.0.0.1:{free_port()}/v1/traces", timeout=1)
            )
        )
    )
    spans(closed, 3)
    closed.force_flush(10_000)

    assert counted("detektr_spans_exported_total") - exported == 5
    assert len(otlp.spans) == 5
    assert counted("detektr_span_export_failures_total") - failed == 3
    provider.shutdown()
    closed.shutdown()


def test_spans_the_batch_processor_drops_when_its_queue_is_full_are_counted():
    """A backend that hangs holds the exporter; the queue (8 spans) fills and drops."""
    dropped = counted("detektr_spans_dropped_total")
    backend = Blackhole()
    provider = TracerProvider()
    exporter = OTLPSpanExporter(endpoint=f"{backend.endpoint}/v1/traces", timeout=5)
    provider.add_span_processor(
        CountingBatchSpanProcessor(
            CountingExporter(exporter),
            max_queue_size=8,
            max_export_batch_size=2,
            schedule_delay_millis=10,
        )  # fmt: skip
    )
    spans(provider, 1)
    # The worker thread took that span and now waits on the backend that never answers.
    assert wait_until(lambda: len(backend.held) > 0, 10)
    time.sleep(0.2)
    spans(provider, 30)

    # 8 fit in the queue (at most 2 more were taken by the stuck export); the rest dropped.
    assert 20 <= counted("detektr_spans_dropped_total") - dropped <= 22
    exporter.shutdown()  # no retries for what is left: the provider's shutdown returns at once
    backend.close()
    provider.shutdown()


def test_spans_carry_the_process_resource_in_their_otlp_encoding() -> None:
    configured = Resource.create({"service.name": "detektr-process", "deployment.name": "site-a"})
    provider = TracerProvider(resource=ProcessResource(configured))
    spans: list[ReadableSpan] = []
    for name in ("run/detektr.process", "processor quality"):
        span = provider.get_tracer("test").start_span(name)
        span.end()
        spans.append(cast(ReadableSpan, span))  # the SDK's spans are readable once ended
    [resource_spans] = encode_spans(spans).resource_spans  # one resource: grouped by it
    encoded = {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes}
    assert encoded["service.name"] == "detektr-process" and encoded["deployment.name"] == "site-a"
    assert provider.resource == configured and hash(provider.resource) == hash(configured)
