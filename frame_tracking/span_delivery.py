"""Trace completeness under faults: what a killed worker process cannot take with it.

A SIGKILLed process loses the spans still buffered in its BatchSpanProcessor. Two holes
follow, and each has its fix here:

1. A task that finished and was acknowledged had its spans — its `run/…` span and the
   `apply_async/…` span of the next stage, the next task's parent — still in the buffer.
   The span spool (frame_tracking/span_spool.py) writes them to disk when the task ends
   (Celery's `task_postrun`, in the process that ran it), before the worker acknowledges the
   message: a kill after the acknowledgement finds nothing that is only in memory, and the
   next worker or capture ships what the killed one left. The capture writes each frame's
   root span there the same way, once it has handed the frame over.
2. A task killed mid-run is redelivered, but the spans it already exported (a processor span,
   the `apply_async` of the next stage, which runs anyway) name a parent that never ends.
   `ReplayableSpanIds` gives each Celery span (`run/…`, `apply_async/…`) an id derived from
   its trace, its parent and its name, so the redelivered run creates its spans under the very
   same ids and they stand in for the lost ones. Other spans keep random ids.

The batch processor's schedule is shortened too (SCHEDULE_DELAY_MS unless
OTEL_BSP_SCHEDULE_DELAY says otherwise), for processes without a span spool: the web app, the
canary, and any process with TRACE_SPOOL_DIR empty.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

log = logging.getLogger(__name__)

SCHEDULE_DELAY_MS = 500  # the SDK's default is 5,000: a kill would lose five seconds of spans
# The spans a redelivered task re-creates: its run, and its publishing of the next stage.
REPLAYED = ("run/", "apply_async/")


def schedule_delay_ms() -> int | None:
    """The processor's schedule: OTEL_BSP_SCHEDULE_DELAY when set (None lets the SDK read it)."""
    return None if os.environ.get("OTEL_BSP_SCHEDULE_DELAY") else SCHEDULE_DELAY_MS


def tracer_provider(resource: Resource) -> TracerProvider:
    """A TracerProvider whose Celery spans get replayable ids, sampling as configured."""
    ids = ReplayableSpanIds()
    provider = TracerProvider(resource=resource, id_generator=ids)
    ids.sampler = provider.sampler  # the one OTEL_TRACES_SAMPLER names
    provider.sampler = ids
    return provider


class ReplayableSpanIds(Sampler, IdGenerator):
    """Wraps the sampler, which the SDK asks about each span (with its name and parent) just
    before it asks the id generator for the span's id, in the same thread."""

    def __init__(self, sampler: Sampler = ALWAYS_ON) -> None:
        self.sampler = sampler
        self.random = RandomIdGenerator()
        self.pending = threading.local()

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        replayed = parent.is_valid and name.startswith(REPLAYED)
        self.pending.key = f"{trace_id:032x}/{parent.span_id:016x}/{name}" if replayed else None
        return self.sampler.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"ReplayableSpanIds{{{self.sampler.get_description()}}}"

    def generate_span_id(self) -> int:
        key, self.pending.key = getattr(self.pending, "key", None), None
        if key is None:
            return self.random.generate_span_id()
        digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") or 1  # 0 is the invalid span id

    def generate_trace_id(self) -> int:
        return self.random.generate_trace_id()
