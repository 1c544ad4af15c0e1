"""The span spool (frame_tracking/span_spool.py): a task's spans are on disk when `write()`
returns, reach a real OTLP receiver from there, wait on disk while the backend is away, and
what a killed process spooled is shipped by the next one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from prometheus_client import REGISTRY

from frame_tracking.otlp_receiver import OTLPReceiver
from frame_tracking.span_spool import HEADER, RECORD, SpanSpool
from tests.e2e.conftest import ROOT, wait_until
from tests.e2e.services import TCPProxy

NEVER = 3600.0  # a shipping schedule longer than any test: only the test ships


@pytest.fixture
def otlp() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as receiver:
        yield receiver


def exporter_for(endpoint: str) -> OTLPSpanExporter:
    return OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces", timeout=2)


def spool_to(directory: Path, endpoint: str, **options: float) -> SpanSpool:
    return SpanSpool(directory, exporter_for(endpoint), **options)  # type: ignore[arg-type]


def end_spans(spool: SpanSpool, *names: str, sampled: bool = True) -> None:
    provider = TracerProvider(
        resource=Resource.create({"service.name": "spool-test"}), shutdown_on_exit=False
    )
    if not sampled:
        provider.sampler = ALWAYS_OFF
    provider.add_span_processor(spool)
    for name in names:
        provider.get_tracer("test").start_span(name).end()


def received(otlp: OTLPReceiver) -> list[str]:
    return sorted(span.name for spans in otlp.traces().values() for span in spans)


def counted(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def test_written_spans_are_on_disk_and_reach_the_backend_many_per_request(tmp_path, otlp):
    spool = spool_to(tmp_path, otlp.endpoint, ship_every=NEVER)
    for task in range(5):
        end_spans(spool, f"run/detektr.task{task}")
        assert spool.write()
    assert spool.path.stat().st_size > HEADER.size  # on disk, before any shipping
    assert received(otlp) == []
    exported = counted("detektr_spans_exported_total")
    assert spool.ship()
    assert received(otlp) == [f"run/detektr.task{task}" for task in range(5)]
    assert otlp.requests == 1
    assert counted("detektr_spans_exported_total") == exported + 5
    assert spool.path.stat().st_size == HEADER.size  # shipped, so the file starts over
    spool.shutdown()
    assert not spool.path.exists()


def test_the_spool_s_thread_ships_on_its_own(tmp_path, otlp):
    spool = spool_to(tmp_path, otlp.endpoint, ship_every=0.05)
    end_spans(spool, "capture_frame")  # not even written by a task: the thread does it
    assert wait_until(lambda: received(otlp) == ["capture_frame"], timeout=30)
    spool.shutdown()


def test_unsampled_spans_are_not_spooled(tmp_path, otlp):
    spool = spool_to(tmp_path, otlp.endpoint, ship_every=NEVER)
    end_spans(spool, "run/detektr.buffer", sampled=False)
    spool.write()
    assert spool.path.stat().st_size == HEADER.size
    spool.shutdown()


def test_spans_wait_on_disk_while_the_backend_is_away_and_leave_when_it_is_back(tmp_path, otlp):
    proxy = TCPProxy(otlp.port)
    proxy.unplug()
    spool = spool_to(tmp_path, f"http://127.0.0.1:{proxy.port}", ship_every=NEVER)
    end_spans(spool, "run/detektr.store")
    spool.write()
    failures = counted("detektr_span_export_failures_total")
    assert not spool.ship()
    assert counted("detektr_span_export_failures_total") == failures + 1
    assert spool.path.stat().st_size > HEADER.size
    proxy.plug()
    spool.retry_at = 0.0  # the backoff's wait, over
    assert spool.ship()
    assert received(otlp) == ["run/detektr.store"]
    spool.shutdown()
    proxy.close()


def test_a_spool_over_its_size_drops_new_spans_and_counts_them(tmp_path, otlp):
    spool = spool_to(tmp_path, otlp.endpoint, ship_every=NEVER, max_bytes=HEADER.size + 400)
    end_spans(spool, "run/detektr.first")
    assert spool.write()
    dropped = counted("detektr_spans_dropped_total")
    end_spans(spool, "run/detektr.second", "run/detektr.third")
    assert not spool.write()
    assert counted("detektr_spans_dropped_total") == dropped + 2
    assert spool.ship()
    assert received(otlp) == ["run/detektr.first"]
    spool.shutdown()


# A worker that spools three tasks' spans and is SIGKILLed before its thread ships any.
KILLED_WORKER = """
import os, signal, sys
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from frame_tracking.span_spool import SpanSpool
spool = SpanSpool(sys.argv[1], OTLPSpanExporter(endpoint=sys.argv[2]), ship_every=3600)
provider = TracerProvider()
provider.add_span_processor(spool)
for stage in ("buffer", "process", "store"):
    provider.get_tracer("t").start_span("run/detektr." + stage).end()
    spool.write()
if len(sys.argv) > 3:  # and was writing a fourth record when it died
    os.pwrite(spool.fd, b"\\0\\0\\1\\0\\0\\0\\0\\1partial", spool.end)
os.kill(os.getpid(), signal.SIGKILL)
"""


def spool_and_die(directory: Path, endpoint: str, *extra: str) -> None:
    died = subprocess.run(
        [sys.executable, "-c", KILLED_WORKER, str(directory), f"{endpoint}/v1/traces", *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert died.returncode == -signal.SIGKILL, died.stderr


@pytest.mark.parametrize("torn", [False, True], ids=["whole", "torn-last-record"])
def test_what_a_killed_process_spooled_is_shipped_by_the_next_one(tmp_path, otlp, torn):
    spool_and_die(tmp_path, otlp.endpoint, *(["torn"] if torn else []))
    [left] = list(tmp_path.glob("*.spool"))
    assert received(otlp) == []
    successor = spool_to(tmp_path, otlp.endpoint, ship_every=NEVER)
    successor.adopt_orphans()
    assert received(otlp) == ["run/detektr.buffer", "run/detektr.process", "run/detektr.store"]
    assert not left.exists()
    successor.adopt_orphans()  # nothing twice
    assert len(received(otlp)) == 3
    successor.shutdown()


def test_a_live_process_s_spool_and_another_endpoint_s_are_left_alone(tmp_path, otlp):
    with OTLPReceiver() as elsewhere:
        spool_and_die(tmp_path, elsewhere.endpoint)
        live = spool_to(tmp_path, otlp.endpoint, ship_every=NEVER)
        end_spans(live, "run/detektr.buffer")
        live.write()
        other = spool_to(tmp_path, otlp.endpoint, ship_every=NEVER)
        other.adopt_orphans()
        assert received(otlp) == [] and received(elsewhere) == []
        assert len(list(tmp_path.glob("*.spool"))) == 3
        for spool in (live, other):
            spool.shutdown()
        assert received(otlp) == ["run/detektr.buffer"]


def test_a_record_larger_than_a_batch_is_still_shipped(tmp_path, otlp, monkeypatch):
    monkeypatch.setattr("frame_tracking.span_spool.BATCH_BYTES", RECORD.size + 8)
    spool = spool_to(tmp_path, otlp.endpoint, ship_every=NEVER)
    end_spans(spool, "run/detektr.buffer")
    spool.write()
    end_spans(spool, "run/detektr.process")
    spool.write()
    assert spool.ship()
    assert received(otlp) == ["run/detektr.buffer", "run/detektr.process"]
    assert otlp.requests == 2  # one record per request
    spool.shutdown()


def test_a_directory_it_cannot_write_leaves_tracing_on_the_batch_processor(tmp_path, otlp):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    script = (
        "from frame_tracking import telemetry\n"
        f"provider = telemetry.configure_tracing('t', spool_dir={str(blocked / 'spans')!r})\n"
        "assert provider is not None and telemetry._spool is None\n"
        "provider.get_tracer('t').start_span('capture_frame').end()\n"
        "telemetry.shutdown_tracing()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "no span spool in" in result.stderr
    assert received(otlp) == ["capture_frame"]


@pytest.mark.parametrize("endpoint", ["same", "another"])
def test_a_dead_worker_s_spans_nobody_shipped_for_a_day_are_let_go_and_counted(
    tmp_path, otlp, endpoint
):
    with OTLPReceiver() as elsewhere:
        spool_and_die(tmp_path, (otlp if endpoint == "same" else elsewhere).endpoint)
    [left] = list(tmp_path.glob("*.spool"))
    a_day_ago = time.time() - 24 * 3600 - 60
    os.utime(left, (a_day_ago, a_day_ago))
    dropped = counted("detektr_spans_dropped_total")
    successor = spool_to(tmp_path, otlp.endpoint, ship_every=NEVER)
    successor.adopt_orphans()
    assert not left.exists()
    assert received(otlp) == []
    assert counted("detektr_spans_dropped_total") == dropped + 3
    successor.shutdown()


def test_a_worker_stopping_while_the_backend_is_away_leaves_its_spans_to_the_next(tmp_path, otlp):
    proxy = TCPProxy(otlp.port)
    proxy.unplug()
    endpoint = f"http://127.0.0.1:{proxy.port}"
    stopping = spool_to(tmp_path, endpoint, ship_every=NEVER)
    end_spans(stopping, "run/detektr.process")
    assert not stopping.force_flush()
    stopping.shutdown()  # does not wait for the backend again
    assert stopping.path.stat().st_size > HEADER.size
    proxy.plug()
    successor = spool_to(tmp_path, endpoint, ship_every=NEVER)
    successor.adopt_orphans()
    assert received(otlp) == ["run/detektr.process"]
    assert not stopping.path.exists()
    successor.shutdown()
    proxy.close()


class Unavailable:
    """A tracing backend that answers every export 503, which the exporter retries."""

    def __init__(self) -> None:
        backend = self
        self.requests = 0

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                backend.requests += 1
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_stopping_process_tries_a_failing_backend_once_and_leaves_its_spans_on_disk(tmp_path):
    backend = Unavailable()
    stopping = spool_to(tmp_path, backend.endpoint, ship_every=NEVER)
    end_spans(stopping, "capture_frame")
    stopping.shutdown()
    backend.close()
    # One attempt: the exporter's retries (after 1 s, then 2 s, …) would hold the process's
    # exit for as long as its timeout, and ship nothing more.
    assert backend.requests == 1
    [left] = list(tmp_path.glob("*.spool"))
    assert left == stopping.path and left.stat().st_size > HEADER.size
