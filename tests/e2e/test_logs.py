"""Log lines that name their frame and trace: a real worker's and a real capture worker's."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from opentelemetry.trace import Span

from frame_tracking import FrameMetadata
from frames.models import Frame
from tasks.processors import BaseProcessor
from tests.e2e.conftest import ROOT, Worker, account, run_capture, wait_until
from tests.e2e.services import free_port

pytestmark = pytest.mark.e2e

log = logging.getLogger("tests.e2e.test_logs")
LINE = re.compile(r"trace_id=(\S+) span_id=(\S+) frame_id=(\S+) (.*)")


class LoggingProcessor(BaseProcessor):
    """A processor that logs one line per frame, as a user's processor would."""

    name = "logging"

    def process(self, image: np.ndarray, meta: FrameMetadata, span: Span) -> dict[str, Any]:
        log.warning("looked at the frame")
        return {}


def fields(output: str, message: str) -> list[tuple[str, str, str]]:
    """(trace_id, span_id, frame_id) of each line whose message matches `message`."""
    found = []
    for line in output.splitlines():
        match = LINE.search(line)
        if match and re.match(message, match[4]):
            found.append((match[1], match[2], match[3]))
    return found


def ten_logged_frames(
    start_worker: Callable[..., Worker], pipeline_env: dict[str, str], camera: str, log_tasks: str
) -> Worker:
    """A worker (at INFO: the fixture's -l info) with LoggingProcessor, once it has logged
    its line for each of 10 stored frames of `camera`."""
    processors = "tasks.processors.FrameQualityProcessor,tests.e2e.test_logs.LoggingProcessor"
    worker = start_worker("-c", "2", env={"FRAME_PROCESSORS": processors, "LOG_TASKS": log_tasks})
    output = run_capture(
        pipeline_env, "--camera", camera, "--source", "synthetic://?width=160&height=120",
        "--fps", "20", "--frames", "10",
    )  # fmt: skip
    assert account(camera, output)["stored"] == 10
    assert wait_until(lambda: len(fields(worker.output(), "looked at the frame")) == 10, 30)
    return worker


def test_a_workers_lines_name_the_frame_its_trace_and_the_span(start_worker, pipeline_env, otlp):
    worker = ten_logged_frames(start_worker, pipeline_env, "logs01", log_tasks="true")
    rows = {frame.frame_id: frame.trace_id for frame in Frame.objects.filter(camera_id="logs01")}

    def span_name(trace_id: str, span_id: str) -> str | None:
        spans = otlp.traces().get(trace_id, [])
        return next((span.name for span in spans if span.span_id == span_id), None)

    for trace_id, span_id, frame_id in fields(worker.output(), "looked at the frame"):
        assert rows[frame_id] == trace_id
        assert wait_until(lambda: span_name(trace_id, span_id) is not None, 15)  # noqa: B023
        assert span_name(trace_id, span_id) == "processor logging"  # the span that was current
    # Celery's own line for each stage run carries them too (LOG_TASKS=true).
    succeeded = fields(worker.output(), r"Task detektr\.store\[\S+\] succeeded")
    assert len(succeeded) == 10
    assert {(trace_id, frame_id) for trace_id, _, frame_id in succeeded} == {
        (trace_id, frame_id) for frame_id, trace_id in rows.items()
    }


def test_a_worker_logs_no_line_per_task_by_default(start_worker, pipeline_env):
    """Six lines a frame (received and succeeded per stage) are off without LOG_TASKS; what
    the stages themselves log still shows."""
    worker = ten_logged_frames(start_worker, pipeline_env, "logs02", log_tasks="false")
    assert fields(worker.output(), r"Task detektr\.\w+\[\S+\] (received|succeeded)") == []


def test_scripts_worker_logs_at_log_level_unless_given_its_own(start_worker):
    """compose starts workers with scripts/worker.sh and LOG_LEVEL: without an -l of its own
    a worker logs at LOG_LEVEL (Celery's default, WARNING, used to win); with one, at that."""
    # celery.bootsteps logs once the worker has set its level (Django's LOGGING rules before).
    debug = re.compile(r"^\S+ \S+ DEBUG MainProcess celery\.bootsteps ", re.MULTILINE)

    def output(**options: Any) -> str:
        worker = start_worker(
            "--pool", "solo", "-Q", "process", script=True,
            env={"LOG_LEVEL": "DEBUG", "WORKER_METRICS_PORT": str(free_port())}, **options,
        )  # fmt: skip
        worker.stop()
        return worker.output()

    assert debug.search(output(loglevel=None))
    assert not debug.search(output(loglevel="info"))


def test_a_capture_workers_lines_name_the_frame_and_its_trace(pipeline_env, tmp_path):
    # Redis answers but the broker does not: each frame is logged as not handed over, the
    # first of each second of outage as a WARNING with the error, the others at DEBUG.
    env = {
        **pipeline_env,
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0",
        "CAPTURE_JOURNAL_DIR": str(tmp_path),
        "LOG_LEVEL": "DEBUG",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "capture", "--camera", "logs02",
         "--source", "synthetic://?width=160&height=120", "--fps", "5", "--frames", "3"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    segments = sorted((tmp_path / "logs02").glob("*.jsonl"))  # workers/ledger.py's Journal
    journal = [json.loads(line) for segment in segments for line in segment.open()]
    traces = {record["frame_id"]: record["trace_context"]["trace_id"] for record in journal}
    lines = fields(result.stderr, r"frame \S+ not handed over")
    assert {frame_id for _, _, frame_id in lines} == set(traces)
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    tried = [line for line in warnings if "not handed over (nor the next for 1s)" in line]
    assert tried and all("Error" in line for line in tried), warnings
    assert not [line for line in warnings if "not tried" in line], warnings
    for trace_id, span_id, frame_id in lines:
        assert trace_id == traces[frame_id]
        assert re.fullmatch(r"[0-9a-f]{16}", span_id)
    # Lines outside any frame say so.
    waiting = fields(result.stderr, "final records wait for the broker")
    assert waiting and waiting[0] == ("-", "-", "-")
