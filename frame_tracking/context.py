"""TraceContext: a frame's W3C trace context, as plain data that travels in task payloads."""

from __future__ import annotations

import random
import re
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypedDict, TypeGuard

from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from frame_tracking.metrics import TRACE_CONTEXT_INVALID

# W3C allows 8192 characters; a frame's tracestate is ours and tiny, so anything past 512 is
# treated as garbage rather than carried through every stage of every frame.
MAX_TRACESTATE_LENGTH = 512
MAX_TRACESTATE_MEMBERS = 32
SAMPLED = 0x01

_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_SPAN_ID = re.compile(r"[0-9a-f]{16}")
_ZERO_TRACE_ID = "0" * 32
_ZERO_SPAN_ID = "0" * 16
_propagator = TraceContextTextMapPropagator()


class TraceContextDict(TypedDict):
    trace_id: str
    span_id: str
    trace_flags: int
    tracestate: str


@dataclass(frozen=True, slots=True)
class TraceContext:
    """A W3C trace context: ids as lowercase hex, flags as an int, tracestate as header text."""

    trace_id: str
    span_id: str
    trace_flags: int = SAMPLED
    tracestate: str = ""

    INVALID: ClassVar[TraceContext]

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.trace_flags:02x}"

    @property
    def sampled(self) -> bool:
        return bool(self.trace_flags & SAMPLED)

    def is_valid(self) -> bool:
        return _has_valid_ids(self.trace_id, self.span_id) and _is_flags(self.trace_flags)

    @classmethod
    def from_span(cls, span: trace.Span | None = None) -> TraceContext:
        """The context of `span`, or of the current span; INVALID when there is none."""
        span_context = (span or trace.get_current_span()).get_span_context()
        if not span_context.is_valid:
            return cls.INVALID
        return cls(
            trace_id=trace.format_trace_id(span_context.trace_id),
            span_id=trace.format_span_id(span_context.span_id),
            trace_flags=int(span_context.trace_flags),
            tracestate=span_context.trace_state.to_header(),
        )

    @classmethod
    def from_headers(cls, traceparent: object, tracestate: object = None) -> TraceContext:
        """Parse W3C headers; malformed input gives INVALID (and is counted), never an error.

        Unlike the W3C rule of dropping only a bad tracestate, a malformed tracestate makes the
        whole context invalid: our own producers never write one, so it signals corruption.
        """
        if not isinstance(traceparent, str) or not _is_tracestate_text(tracestate):
            return _malformed()
        carrier = {"traceparent": traceparent}
        if tracestate:
            carrier["tracestate"] = tracestate
        # OpenTelemetry's propagator does the W3C parsing; it signals failure by returning a
        # context without a valid span.
        span_context = trace.get_current_span(_propagator.extract(carrier)).get_span_context()
        if not span_context.is_valid:
            return _malformed()
        header = span_context.trace_state.to_header()
        if tracestate and not header and tracestate.strip(" \t,"):
            return _malformed()  # the TraceState parser discards all members of a bad header
        return cls(
            trace_id=trace.format_trace_id(span_context.trace_id),
            span_id=trace.format_span_id(span_context.span_id),
            trace_flags=int(span_context.trace_flags),
            tracestate=header,
        )

    @classmethod
    def generate(cls, sampled: bool = True) -> TraceContext:
        """A fresh random valid context, for frames traced while the SDK is disabled."""
        trace_id = span_id = 0
        while not trace_id:  # zero is the one invalid value; retrying costs nothing in practice
            trace_id = random.getrandbits(128)
        while not span_id:
            span_id = random.getrandbits(64)
        return cls(f"{trace_id:032x}", f"{span_id:016x}", SAMPLED if sampled else 0)

    def inject(self, carrier: MutableMapping[str, Any]) -> None:
        """Write `traceparent` (and a non-empty `tracestate`); an invalid context writes nothing."""
        if not self.is_valid():
            return
        carrier["traceparent"] = self.traceparent
        if self.tracestate:
            carrier["tracestate"] = self.tracestate

    def to_dict(self) -> TraceContextDict:
        return {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "trace_flags": self.trace_flags,
            "tracestate": self.tracestate,
        }

    @classmethod
    def from_dict(cls, data: object) -> TraceContext:
        """Inverse of to_dict; a malformed dict gives INVALID (counted), like from_headers."""
        if not isinstance(data, dict):
            return _malformed()
        trace_id, span_id = data.get("trace_id"), data.get("span_id")
        flags, tracestate = data.get("trace_flags", SAMPLED), data.get("tracestate", "")
        if not _is_hex_id(trace_id, span_id) or not _is_flags(flags):
            return _malformed()
        if not isinstance(tracestate, str) or len(tracestate) > MAX_TRACESTATE_LENGTH:
            return _malformed()
        return cls(trace_id, span_id, flags, tracestate)  # type: ignore[arg-type]


TraceContext.INVALID = TraceContext(_ZERO_TRACE_ID, _ZERO_SPAN_ID, 0, "")


def _malformed() -> TraceContext:
    TRACE_CONTEXT_INVALID.inc()
    return TraceContext.INVALID


def _is_hex_id(trace_id: object, span_id: object) -> bool:
    # Shape only: the all-zero INVALID context round-trips through to_dict/from_dict uncounted.
    return (
        isinstance(trace_id, str)
        and isinstance(span_id, str)
        and _TRACE_ID.fullmatch(trace_id) is not None
        and _SPAN_ID.fullmatch(span_id) is not None
    )


def _has_valid_ids(trace_id: object, span_id: object) -> bool:
    return _is_hex_id(trace_id, span_id) and trace_id != _ZERO_TRACE_ID and span_id != _ZERO_SPAN_ID


def _is_flags(flags: object) -> bool:
    return isinstance(flags, int) and not isinstance(flags, bool) and 0 <= flags <= 0xFF


def _is_tracestate_text(tracestate: object) -> TypeGuard[str | None]:
    if tracestate is None:
        return True
    if not isinstance(tracestate, str) or len(tracestate) > MAX_TRACESTATE_LENGTH:
        return False
    return (
        tracestate.count(",") < MAX_TRACESTATE_MEMBERS
        or _member_count(tracestate) <= MAX_TRACESTATE_MEMBERS
    )


def _member_count(tracestate: str) -> int:
    # Empty list members ("a=1,,b=2") are legal and do not count.
    return sum(1 for member in tracestate.split(",") if member.strip(" \t"))
