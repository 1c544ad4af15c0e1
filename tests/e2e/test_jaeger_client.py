"""frame_tracking.jaeger against Jaeger's query API shapes, filled with the spans a real
pipeline run exported (tests/e2e/jaeger_api.py says where each shape comes from: Jaeger's
source; Jaeger itself cannot be installed here)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest

from frame_tracking.jaeger import JaegerClient, JaegerError, JaegerSpan
from frame_tracking.otlp_receiver import OTLPReceiver, ReceivedSpan
from frames.models import Frame
from tests.e2e.conftest import run_capture, wait_until
from tests.e2e.jaeger_api import JaegerQueryAPI
from tests.e2e.services import Blackhole, free_port

pytestmark = pytest.mark.e2e

SYNTHETIC = "synthetic://?width=320&height=240&fps=30"


@pytest.fixture
def jaeger(otlp: OTLPReceiver) -> Iterator[JaegerQueryAPI]:
    with JaegerQueryAPI(otlp) as api:
        yield api


Comparable = tuple[str, str, str, str, str, str]


def comparable(span: JaegerSpan | ReceivedSpan, *, arrays_as_text: bool = False) -> Comparable:
    """Ids, name, service and attributes; Jaeger's older API turns arrays into JSON text."""
    attributes = {
        key: json.dumps(value, separators=(",", ":"))
        if arrays_as_text and isinstance(value, list) else value
        for key, value in span.attributes.items()
    }  # fmt: skip
    return (span.trace_id, span.span_id, span.parent_span_id, span.name, span.service,
            json.dumps(attributes, sort_keys=True))  # fmt: skip


def test_it_reads_every_exported_trace_through_api_v3_and_the_older_api(
    start_worker, pipeline_env, otlp, jaeger
):
    worker = start_worker("-c", "1")
    run_capture(pipeline_env, "--camera", "jc", "--source", SYNTHETIC, "--frames", "12")
    wait_until(lambda: Frame.objects.count() >= 12, 120)
    worker.stop()  # its spans are flushed on the way out
    frames = list(Frame.objects.order_by("sequence"))
    assert len(frames) == 12
    by_trace = otlp.traces()

    v3 = JaegerClient(jaeger.url)
    from_v3 = {frame.trace_id: v3.trace(frame.trace_id) for frame in frames}
    assert not any(path.startswith("/api/traces/") for path in jaeger.requests)

    jaeger.legacy_only = True  # a Jaeger without api/v3: the client falls back, once
    legacy = JaegerClient(jaeger.url)
    asked = len(jaeger.requests)
    from_legacy = {frame.trace_id: legacy.trace(frame.trace_id) for frame in frames}
    v3_asks = [p for p in jaeger.requests[asked:] if p.startswith("/api/v3/")]
    assert len(v3_asks) == 1, "the client keeps asking for a route the server lacks"

    for frame in frames:
        spans = by_trace[frame.trace_id]
        spans_v3, spans_legacy = from_v3[frame.trace_id], from_legacy[frame.trace_id]
        assert spans_v3 is not None and spans_legacy is not None
        assert sorted(map(comparable, spans_v3)) == sorted(map(comparable, spans))
        assert sorted(comparable(s) for s in spans_legacy) == sorted(
            comparable(s, arrays_as_text=True) for s in spans
        )
        # Times and statuses agree too (the older API has µs, so compare at that grain).
        pairs = zip(sorted(spans_v3, key=lambda s: s.span_id),
                    sorted(spans_legacy, key=lambda s: s.span_id), strict=True)  # fmt: skip
        for a, b in pairs:
            assert a.start_ns // 1000 == b.start_ns // 1000
            assert abs(a.end_ns - b.end_ns) < 2000
            assert (a.status, a.status_message) == (b.status, b.status_message)
        root = next(s for s in spans_v3 if not s.parent_span_id)
        assert (root.name, root.span_id) == ("capture_frame", frame.span_id)
        assert root.attributes["frame.id"] == frame.frame_id
        assert root.attributes["frame.sequence"] == frame.sequence  # an int, not "1"
        assert root.end_ns > root.start_ns > 0

    hidden = frames[0].trace_id
    jaeger.hide(hidden)
    assert legacy.trace(hidden) is None
    jaeger.legacy_only = False
    assert v3.trace(hidden) is None  # "not found": not an error, and not a fallback
    services = {"detektr-capture", "detektr-worker"}
    assert set(v3.services()) == services
    jaeger.legacy_only = True
    assert set(legacy.services()) == services


def test_a_real_not_found_on_api_v3_is_not_taken_for_a_missing_route(jaeger):
    client = JaegerClient(jaeger.url)
    assert client.trace("0af7651916cd43dd8448eb211c80319c") is None
    assert jaeger.requests == ["/api/v3/traces/0af7651916cd43dd8448eb211c80319c"]


def test_a_jaeger_that_is_down_is_reported_as_unreachable(jaeger):
    jaeger.down()
    with pytest.raises(JaegerError) as raised:
        JaegerClient(jaeger.url).trace("0af7651916cd43dd8448eb211c80319c")
    assert raised.value.kind == "unreachable"
    assert "connection refused" in str(raised.value)


def test_a_jaeger_that_hangs_is_reported_as_a_timeout():
    hang = Blackhole()
    try:
        with pytest.raises(JaegerError) as raised:
            JaegerClient(hang.endpoint, timeout=0.5).services()
        assert raised.value.kind == "timeout"
        assert "0.5s" in str(raised.value)
    finally:
        hang.close()


def test_something_that_is_not_jaeger_is_named_as_such():
    """A web server with neither API: say so instead of "trace not found"."""
    with OTLPReceiver() as not_jaeger:  # answers 501 to GET (http.server's default)
        with pytest.raises(JaegerError) as raised:
            JaegerClient(not_jaeger.endpoint).trace("0af7651916cd43dd8448eb211c80319c")
    assert raised.value.kind == "http_error"
    assert "neither /api/v3/traces nor /api/traces" in str(raised.value)


def test_the_token_is_sent_as_a_bearer_header():
    """Jaeger behind an authenticating proxy."""
    seen: list[str] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", free_port()))
    listener.listen(1)
    port = listener.getsockname()[1]

    def answer() -> None:
        connection, _ = listener.accept()
        request = connection.recv(65536).decode()
        seen.extend(request.split("\r\n"))
        body = b'{"services": ["a"]}'
        connection.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
        )  # fmt: skip
        connection.close()

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    assert JaegerClient(f"http://127.0.0.1:{port}", token="s3cret").services() == ["a"]
    thread.join(5)
    listener.close()
    assert "Authorization: Bearer s3cret" in seen
