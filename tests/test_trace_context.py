from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.trace.span import TraceState
from prometheus_client import REGISTRY

from frame_tracking import TraceContext

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
SPAN_ID = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{SPAN_ID}-01"


def invalid_count() -> float:
    return REGISTRY.get_sample_value("detektr_trace_context_invalid_total") or 0.0


def test_it_parses_a_valid_traceparent() -> None:
    before = invalid_count()
    context = TraceContext.from_headers(TRACEPARENT, "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")
    assert context == TraceContext(TRACE_ID, SPAN_ID, 1, "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")
    assert context.is_valid() and context.sampled
    assert context.traceparent == TRACEPARENT
    assert invalid_count() == before


def test_an_unsampled_context_is_still_valid() -> None:
    context = TraceContext.from_headers(f"00-{TRACE_ID}-{SPAN_ID}-00")
    assert context.is_valid() and not context.sampled


def test_a_future_version_with_extra_fields_is_accepted() -> None:
    # W3C: a parser must accept higher versions and ignore what follows the known fields.
    context = TraceContext.from_headers(f"cc-{TRACE_ID}-{SPAN_ID}-01-whatever")
    assert context.is_valid() and context.trace_id == TRACE_ID


MALFORMED_TRACEPARENTS = [
    ("empty", ""),
    ("too short", TRACEPARENT[:-1]),
    ("too long", TRACEPARENT + "0"),
    ("version 00 with extra field", TRACEPARENT + "-00"),
    ("non-hex trace id", f"00-{'g' * 32}-{SPAN_ID}-01"),
    ("uppercase trace id", f"00-{TRACE_ID.upper()}-{SPAN_ID}-01"),
    ("uppercase span id", f"00-{TRACE_ID}-{SPAN_ID.upper()}-01"),
    ("all-zero trace id", f"00-{'0' * 32}-{SPAN_ID}-01"),
    ("all-zero span id", f"00-{TRACE_ID}-{'0' * 16}-01"),
    ("version ff", f"ff-{TRACE_ID}-{SPAN_ID}-01"),
    ("bad separators", f"00_{TRACE_ID}_{SPAN_ID}_01"),
    ("missing separator", f"00{TRACE_ID}-{SPAN_ID}-01"),
    ("short span id", f"00-{TRACE_ID}-{SPAN_ID[:-1]}-01"),
    ("non-hex flags", f"00-{TRACE_ID}-{SPAN_ID}-0x"),
    ("oversized", TRACEPARENT + "-" + "a" * 600),
    ("garbage", "\x00\xff☃"),
]
MALFORMED_TRACESTATES = [
    ("over 512 characters", "a=" + "b" * 511),
    ("33 members", ",".join(f"k{n}=v" for n in range(33))),
    ("uppercase key", "Congo=t61"),
    ("no equals sign", "congo"),
    ("duplicate key", "a=1,a=2"),
    ("a comma in nothing but a bad member", "a=1,=2"),
]


@pytest.mark.parametrize(
    "traceparent",
    [v for _, v in MALFORMED_TRACEPARENTS],
    ids=[n for n, _ in MALFORMED_TRACEPARENTS],
)
def test_it_rejects_a_malformed_traceparent(traceparent: str) -> None:
    before = invalid_count()
    context = TraceContext.from_headers(traceparent)
    assert not context.is_valid()
    assert context == TraceContext.INVALID
    assert invalid_count() == before + 1


@pytest.mark.parametrize(
    "tracestate", [v for _, v in MALFORMED_TRACESTATES], ids=[n for n, _ in MALFORMED_TRACESTATES]
)
def test_it_rejects_a_malformed_tracestate(tracestate: str) -> None:
    before = invalid_count()
    context = TraceContext.from_headers(TRACEPARENT, tracestate)
    assert not context.is_valid()
    assert invalid_count() == before + 1


@pytest.mark.parametrize(
    ("traceparent", "tracestate"),
    [(None, None), (42, None), (b"00-x", None), (TRACEPARENT, 42), (TRACEPARENT, [TRACEPARENT])],
)
def test_it_rejects_a_non_string_header(traceparent: object, tracestate: object) -> None:
    before = invalid_count()
    assert not TraceContext.from_headers(traceparent, tracestate).is_valid()
    assert invalid_count() == before + 1


def test_the_largest_allowed_tracestate_is_kept() -> None:
    tracestate = ",".join(f"k{n:02d}=v" for n in range(32))
    assert TraceContext.from_headers(TRACEPARENT, tracestate).tracestate == tracestate


def test_an_empty_tracestate_is_not_an_error() -> None:
    before = invalid_count()
    assert TraceContext.from_headers(TRACEPARENT, " ,").tracestate == ""
    assert invalid_count() == before


@given(st.text(max_size=80), st.one_of(st.none(), st.text(max_size=80)))
def test_arbitrary_headers_never_raise(traceparent: str, tracestate: str | None) -> None:
    context = TraceContext.from_headers(traceparent, tracestate)
    assert context.is_valid() or context == TraceContext.INVALID


def test_generate_makes_a_valid_sampled_context() -> None:
    contexts = {TraceContext.generate() for _ in range(100)}
    assert len(contexts) == 100
    assert all(c.is_valid() and c.sampled and c.tracestate == "" for c in contexts)
    assert not TraceContext.generate(sampled=False).sampled


def test_inject_writes_the_headers_that_from_headers_reads() -> None:
    context = TraceContext(TRACE_ID, SPAN_ID, 1, "rojo=00f067aa0ba902b7")
    carrier: dict[str, str] = {}
    context.inject(carrier)
    assert carrier == {"traceparent": TRACEPARENT, "tracestate": "rojo=00f067aa0ba902b7"}
    assert TraceContext.from_headers(carrier["traceparent"], carrier["tracestate"]) == context


def test_inject_leaves_out_an_empty_tracestate() -> None:
    carrier: dict[str, str] = {}
    TraceContext(TRACE_ID, SPAN_ID).inject(carrier)
    assert carrier == {"traceparent": TRACEPARENT}


def test_an_invalid_context_injects_nothing() -> None:
    carrier: dict[str, str] = {}
    TraceContext.INVALID.inject(carrier)
    assert carrier == {}


def test_it_round_trips_through_a_dict() -> None:
    context = TraceContext(TRACE_ID, SPAN_ID, 0, "a=1")
    assert TraceContext.from_dict(context.to_dict()) == context
    assert TraceContext.from_dict(TraceContext.INVALID.to_dict()) == TraceContext.INVALID


@pytest.mark.parametrize(
    "data",
    [
        None,
        {},
        {"trace_id": TRACE_ID},
        {"trace_id": TRACE_ID.upper(), "span_id": SPAN_ID},
        {"trace_id": TRACE_ID, "span_id": SPAN_ID, "trace_flags": 256},
        {"trace_id": TRACE_ID, "span_id": SPAN_ID, "trace_flags": "01"},
        {"trace_id": TRACE_ID, "span_id": SPAN_ID, "tracestate": None},
    ],
)
def test_it_rejects_a_malformed_dict(data: object) -> None:
    before = invalid_count()
    assert TraceContext.from_dict(data) == TraceContext.INVALID
    assert invalid_count() == before + 1


def test_it_takes_the_context_of_a_given_span() -> None:
    span_context = SpanContext(
        trace_id=int(TRACE_ID, 16),
        span_id=int(SPAN_ID, 16),
        is_remote=False,
        trace_flags=TraceFlags(1),
        trace_state=TraceState([("a", "1")]),
    )
    context = TraceContext.from_span(NonRecordingSpan(span_context))
    assert context == TraceContext(TRACE_ID, SPAN_ID, 1, "a=1")


def test_it_takes_the_context_of_the_current_span() -> None:
    tracer = TracerProvider().get_tracer(__name__)  # not installed globally: no export
    with tracer.start_as_current_span("capture_frame") as span:
        context = TraceContext.from_span()
    assert context.is_valid()
    assert context.trace_id == format(span.get_span_context().trace_id, "032x")
    assert context.span_id == format(span.get_span_context().span_id, "016x")


def test_without_a_current_span_it_is_invalid_but_not_counted() -> None:
    before = invalid_count()
    assert TraceContext.from_span() == TraceContext.INVALID
    assert invalid_count() == before


def test_it_is_immutable() -> None:
    context = TraceContext.generate()
    with pytest.raises(AttributeError):
        context.trace_id = TRACE_ID  # type: ignore[misc]
