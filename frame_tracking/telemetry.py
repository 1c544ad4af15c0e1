"""Tracing bootstrap: one call per process builds the TracerProvider.

Everything is read from the standard OpenTelemetry variables: OTEL_SDK_DISABLED,
OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER(_ARG), OTEL_TRACES_EXPORTER
and OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT. Spans leave through a BatchSpanProcessor whose
worker thread does the exporting, so a tracing backend that is down or slow costs the
pipeline nothing but the spans it drops; those are counted (frame_tracking.metrics), so
the tracer's own health is visible.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)

from frame_tracking.metrics import SPAN_EXPORT_FAILURES, SPANS_DROPPED, SPANS_EXPORTED
from frame_tracking.span_delivery import schedule_delay_ms, tracer_provider
from frame_tracking.span_spool import SpanSpool

log = logging.getLogger(__name__)

_provider: TracerProvider | None = None
_spool: SpanSpool | None = None

# OTEL_TRACES_EXPORTER values this build supports (the spec's list, comma-separated).
EXPORTERS = ("otlp", "console", "none")


def tracing_disabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def exporter_names() -> list[str]:
    """OTEL_TRACES_EXPORTER as a list (default otlp); raises ValueError on a value we do not
    support, so a typo is caught at start-up instead of silently exporting nothing."""
    value = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() or "otlp"
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in EXPORTERS]
    if unknown or not names:
        raise ValueError(
            f"OTEL_TRACES_EXPORTER={value!r}: use one or more of {', '.join(EXPORTERS)}"
        )
    return [name for name in names if name != "none"]


# OTEL_TRACES_SAMPLER values the TracerProvider knows (the spec's list; it loads no sampler
# from an entry point); the ratio ones read OTEL_TRACES_SAMPLER_ARG.
SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)


def check_environment() -> None:
    """Raise ValueError, naming the variable, for an OTEL_* value this build cannot honour.

    The SDK itself takes an unknown sampler or a bad ratio for its default with a warning,
    and any OTEL_SDK_DISABLED but "true" for false: a typo would trace every frame, or none
    of them, without a word at start-up."""
    exporter_names()
    disabled = os.environ.get("OTEL_SDK_DISABLED", "").strip().lower()
    if disabled not in ("", "true", "false"):
        raise ValueError(f"OTEL_SDK_DISABLED={disabled!r}: use true or false")
    sampler = os.environ.get("OTEL_TRACES_SAMPLER", "").lower()  # as the SDK reads it
    if sampler and sampler not in SAMPLERS:
        raise ValueError(f"OTEL_TRACES_SAMPLER={sampler!r}: use one of {', '.join(SAMPLERS)}")
    ratio = os.environ.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
    if ratio and sampler.endswith("traceidratio"):
        try:
            valid = 0 <= float(ratio) <= 1
        except ValueError:
            valid = False
        if not valid:
            raise ValueError(f"OTEL_TRACES_SAMPLER_ARG={ratio!r}: a ratio from 0 to 1")


class CountingExporter(SpanExporter):
    """Wraps an exporter and counts the spans it delivered and the ones it lost."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.exporter.export(spans)
        except Exception:
            SPAN_EXPORT_FAILURES.inc(len(spans))
            raise
        counter = SPANS_EXPORTED if result is SpanExportResult.SUCCESS else SPAN_EXPORT_FAILURES
        counter.inc(len(spans))
        return result

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)


class CountingBatchSpanProcessor(BatchSpanProcessor):
    """A BatchSpanProcessor that counts the spans it drops when its queue is full.

    The SDK drops the oldest queued span and logs once; its own drop metric needs
    OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED and an OpenTelemetry MeterProvider. Here the
    check costs one length comparison per ended span. It reads the SDK's queue (pinned
    opentelemetry-sdk; tests/test_telemetry.py overflows a real processor to prove it).
    """

    def on_end(self, span: ReadableSpan) -> None:
        batch = self._batch_processor
        context = span.context
        if context is not None and context.trace_flags.sampled:
            if len(batch._queue) >= batch._max_queue_size:
                SPANS_DROPPED.inc()
        super().on_end(span)


class ProcessResource(Resource):
    """The process's resource, hashed once. The OTLP encoder groups spans by resource and
    hashes each span's, and the SDK's Resource hashes by JSON-encoding its attributes every
    time (a fifth of the encoding's CPU); a provider's resource never changes."""

    def __init__(self, resource: Resource) -> None:
        super().__init__(resource.attributes, resource.schema_url)
        self._hash = super().__hash__()

    def __hash__(self) -> int:
        return self._hash


def make_exporter(name: str) -> SpanExporter:
    exporter = OTLPSpanExporter() if name == "otlp" else ConsoleSpanExporter()
    return CountingExporter(exporter)


def configure_tracing(
    default_service_name: str = "detektr", spool_dir: str = ""
) -> TracerProvider | None:
    """Install the process's TracerProvider once; later calls return the same one.

    `default_service_name` applies only when OTEL_SERVICE_NAME is not set. With `spool_dir`
    (workers and captures), OTLP spans go through a span spool there
    (frame_tracking/span_spool.py) and `write_spans()` puts them on disk. Returns None when
    OTEL_SDK_DISABLED=true: the API's no-op tracer then stays in place. With
    OTEL_TRACES_EXPORTER=none spans are still made (valid trace ids on every frame, sampling
    decisions) but go nowhere.
    """
    global _provider, _spool
    if _provider is not None:
        return _provider
    if tracing_disabled():
        return None
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: default_service_name}
    # Completeness under faults (frame_tracking/span_delivery.py): replayable ids for Celery's
    # spans, and a shorter schedule than the SDK's five seconds.
    provider = tracer_provider(ProcessResource(Resource.create(attributes)))
    for name in exporter_names():
        if name == "otlp" and spool_dir:
            _spool = open_spool(spool_dir)
            if _spool is not None:
                provider.add_span_processor(_spool)
                continue
        exporter = make_exporter(name)
        provider.add_span_processor(
            CountingBatchSpanProcessor(exporter, schedule_delay_millis=schedule_delay_ms())
        )
    trace.set_tracer_provider(provider)
    _provider = provider
    return provider


def open_spool(directory: str) -> SpanSpool | None:
    try:
        return SpanSpool(directory, OTLPSpanExporter())
    except OSError as error:  # a read-only or missing volume must not stop the worker
        log.warning("no span spool in %s (%s): spans leave on the processor's schedule, "
                    "and a killed process loses what it buffered", directory, error)  # fmt: skip
        return None


def write_spans() -> None:
    """Put the spans ended so far on disk (a task's, before its acknowledgement)."""
    if _spool is not None:
        _spool.write()


def shutdown_tracing() -> None:
    """Send what is buffered and stop the exporters; never raises.

    Each processor's shutdown sends what it holds: the batch processor exports its queue,
    the span spool writes what is pending and gives the backend at most one attempt, leaving what it
    does not take on disk for the next process. No force_flush first: the SDK's ignores its
    timeout (opentelemetry-python #4568), and a spool's would sit out the exporter's retries
    against a backend that is down.
    """
    global _provider, _spool
    provider, _provider, _spool = _provider, None, None
    if provider is None:
        return
    try:
        provider.shutdown()
    except Exception:  # a tracing failure must never break the process that is exiting
        log.exception("flushing spans at shutdown failed")
