"""Tracing bootstrap: one call per process builds the TracerProvider.

Everything is read from the standard OpenTelemetry variables: OTEL_SDK_DISABLED,
OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER(_ARG) and
OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT. Spans leave through a BatchSpanProcessor whose
worker thread does the exporting, so a tracing backend that is down or slow costs the
pipeline nothing but the spans it drops.
"""

from __future__ import annotations

import logging
import os

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from frame_tracking.completeness import schedule_delay_ms, tracer_provider

log = logging.getLogger(__name__)

_provider: TracerProvider | None = None


def tracing_disabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def configure_tracing(default_service_name: str = "detektr") -> TracerProvider | None:
    """Install the process's TracerProvider once; later calls return the same one.

    `default_service_name` applies only when OTEL_SERVICE_NAME is not set. Returns None when
    OTEL_SDK_DISABLED=true: the API's no-op tracer then stays in place.
    """
    global _provider
    if _provider is not None:
        return _provider
    if tracing_disabled():
        return None
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: default_service_name}
    # Completeness under faults (frame_tracking/completeness.py): replayable ids for Celery's
    # spans, and a shorter schedule than the SDK's five seconds.
    provider = tracer_provider(Resource.create(attributes))
    processor = BatchSpanProcessor(OTLPSpanExporter(), schedule_delay_millis=schedule_delay_ms())
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    _provider = provider
    return provider


def shutdown_tracing(timeout_millis: int = 5000) -> None:
    """Flush buffered spans and stop the exporter; never raises."""
    global _provider
    provider, _provider = _provider, None
    if provider is None:
        return
    try:
        provider.force_flush(timeout_millis)
        provider.shutdown()
    except Exception:  # a tracing failure must never break the process that is exiting
        log.exception("flushing spans at shutdown failed")
