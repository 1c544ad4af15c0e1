"""Real processes for end-to-end tests: Celery workers, the capture command, an OTLP receiver.

Everything runs against the test PostgreSQL database that pytest-django created and a Redis
database of its own (REDIS_TEST_DB, default 15), which is emptied before each test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery.canvas import Signature
from django.db import connection

from detektr_project.celery import app
from frame_tracking import FrameID, FrameMetadata, TraceContext
from frame_tracking.metadata import FrameMetadataDict
from frame_tracking.otlp_receiver import OTLPReceiver
from tests.e2e.services import RabbitVhost

ROOT = Path(__file__).resolve().parents[2]
REDIS_TEST_URL = f"redis://127.0.0.1:6379/{os.environ.get('REDIS_TEST_DB', '15')}"
STAGE_SPANS = {"run/detektr.buffer", "run/detektr.process", "run/detektr.store"}


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


@pytest.fixture
def otlp() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as receiver:
        yield receiver


@pytest.fixture
def pipeline_env(transactional_db: None, otlp: OTLPReceiver, tmp_path: Path) -> dict[str, str]:
    """Environment for child processes: the test database, a clean Redis, the receiver, a
    span spool of the test's own."""
    db = connection.settings_dict
    if connection.vendor != "postgresql":
        pytest.fail("end-to-end tests need PostgreSQL: set DATABASE_URL=postgres://…")
    redis.Redis.from_url(REDIS_TEST_URL).flushdb()
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        REDIS_URL=REDIS_TEST_URL,
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint,
        OTEL_BSP_SCHEDULE_DELAY="200",
        TRACE_SPOOL_DIR=str(tmp_path / "spans"),
        OTEL_SERVICE_NAME="",
        PYTHONUNBUFFERED="1",
        DJANGO_SETTINGS_MODULE="detektr_project.settings",
        # The fixed in-flight bound: the latency budget sheds whenever frames take longer
        # than it, and how long they take here depends on the machine and on what else runs.
        # Tests that count every frame as stored must not; tests of admission set a budget.
        FRAME_LATENCY_BUDGET_MS="0",
    )
    env.pop("OTEL_SERVICE_NAME")
    return env


@pytest.fixture
def rabbitmq() -> Iterator[RabbitVhost]:
    """A RabbitMQ virtual host of the test's own on the local server, deleted afterwards."""
    with RabbitVhost() as vhost:
        yield vhost


BROKERS = ["redis", "rabbitmq"]


@pytest.fixture
def broker_env(request: pytest.FixtureRequest, pipeline_env: dict[str, str]) -> dict[str, str]:
    """pipeline_env with the broker a test is parametrized with (`broker`: redis or rabbitmq):
    Redis is the test Redis database, RabbitMQ a virtual host of the test's own."""
    if request.param == "redis":
        return {k: v for k, v in pipeline_env.items() if k != "CELERY_BROKER_URL"}
    vhost = request.getfixturevalue("rabbitmq")
    return {**pipeline_env, "CELERY_BROKER_URL": vhost.url()}


class Worker:
    def __init__(
        self, command: list[str], env: dict[str, str], log: Path, loglevel: str | None = "info"
    ) -> None:
        self.log = log
        self.process = subprocess.Popen(
            [*command, *(["-l", loglevel] if loglevel else [])],
            cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() can reap orphans
        )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.process.pid

    def children(self) -> list[int]:
        """The pool processes (prefork children) of the worker's main process."""
        found = subprocess.run(["pgrep", "-P", str(self.pid)], capture_output=True, text=True)
        return [int(pid) for pid in found.stdout.split()]

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60) -> None:
        if not wait_until(lambda: "ready." in self.output() or self.process.poll() is not None,
                          timeout):  # fmt: skip
            pytest.fail(f"worker not ready after {timeout}s:\n{self.output()[-3000:]}")
        if self.process.poll() is not None:
            pytest.fail(f"worker exited with {self.process.returncode}:\n{self.output()[-3000:]}")

    def stop(self, timeout: float = 60) -> None:
        """Warm shutdown, as SIGTERM from a service manager: children flush their spans."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass  # killed below
        self.kill()

    def kill(self) -> None:
        """SIGKILL the worker's process group: the main process, its pool processes and any
        children orphaned by a killed main process."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()


@pytest.fixture
def start_worker(pipeline_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    workers: list[Worker] = []

    def start(
        *args: str,
        env: dict[str, str] | None = None,
        script: bool = False,
        loglevel: str | None = "info",
    ) -> Worker:
        """`celery -A detektr worker ARGS -l LOGLEVEL`, or with script=True
        `scripts/worker.sh ARGS -l LOGLEVEL`; no -l with loglevel=None."""
        log = tmp_path / f"worker-{len(workers)}.log"
        command = (
            [str(ROOT / "scripts" / "worker.sh")]
            if script
            else [sys.executable, "-m", "celery", "-A", "detektr", "worker"]
        )
        worker = Worker([*command, *args], {**pipeline_env, **(env or {})}, log, loglevel)
        workers.append(worker)
        worker.wait_ready()
        return worker

    yield start
    # After the test, no warm shutdown: a prefork worker's takes ~1.8 s (billiard joins its
    # pool), and what a worker holds then is no test's business; the next test's Redis
    # database is emptied and a RabbitMQ virtual host is the test's own. A test that needs
    # what a warm shutdown does (its children's spans flushed) calls worker.stop() itself.
    for worker in workers:
        worker.kill()


def run_capture(env: dict[str, str], *args: str, timeout: float = 300) -> dict[str, Any]:
    """Run the capture command to its end; its --json summary."""
    result = subprocess.run(
        [sys.executable, "manage.py", "capture", *args, "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return summary_of(result.stdout)


def start_capture(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "manage.py", "capture", *args, "--json"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def finish_capture(capture: subprocess.Popen[str], timeout: float = 300) -> dict[str, Any]:
    out, err = capture.communicate(timeout=timeout)
    assert capture.returncode == 0, out + err
    return summary_of(out)


def summary_of(stdout: str) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads(stdout)
    return summary


def account(camera: str, run: dict[str, Any], timeout: float = 180) -> dict[str, int]:
    """Wait until every frame of the capture run has a row; count them by status.

    Asserts the accounting identity: one row per captured sequence number, none missing
    (lost) and none twice.
    """
    from frames.models import Frame

    first, last = run["first_sequence"], run["last_sequence"]
    rows = Frame.objects.filter(camera_id=camera, sequence__range=(first, last))
    wait_until(lambda: rows.count() >= last - first + 1, timeout, interval=0.5)
    sequences = sorted(rows.values_list("sequence", flat=True))
    missing = sorted(set(range(first, last + 1)) - set(sequences))
    assert missing == [], f"lost frames (no final status): {missing[:20]}…"
    assert len(sequences) == len(set(sequences)), "a frame was recorded twice"
    counts: dict[str, int] = {"stored": 0, "dropped": 0, "failed": 0}
    for status, reason in rows.values_list("status", "reason"):
        counts[status] += 1
        if reason:
            counts[f"{status}:{reason}"] = counts.get(f"{status}:{reason}", 0) + 1
    counts["captured"] = last - first + 1
    return counts


def publish(signature: Signature, **options: Any) -> None:
    """Send to the workers' broker (the test Redis database), not the default one."""
    with app.connection_for_write(REDIS_TEST_URL) as connection:
        signature.apply_async(connection=connection, **options)


def frame_payload(camera: str, frame_id: str | None = None) -> FrameMetadataDict:
    generated = FrameID.generate(camera)
    meta = FrameMetadata(
        frame_id=frame_id or generated,
        timestamp=generated.timestamp,
        camera_id=camera,
        sequence=generated.sequence,
        trace_context=TraceContext.generate(),
    )
    return meta.to_dict()


def completeness(frames: list[Any], otlp: OTLPReceiver) -> tuple[int, list[str]]:
    """How many of the frames have a complete trace (capture_frame and a run span of every
    stage), and the names of the spans, in any of their traces, whose parent never arrived."""
    traces = otlp.traces()
    complete, orphans = 0, []
    for frame in frames:
        spans = traces.get(frame.trace_id, [])
        ids = {span.span_id for span in spans}
        orphans += [s.name for s in spans if s.parent_span_id and s.parent_span_id not in ids]
        names = {span.name for span in spans}
        if "capture_frame" in names and STAGE_SPANS <= names:
            complete += 1
    return complete, orphans
