"""A real `celery -A detektr worker`: it answers ping, and a dead tracing backend stops nothing."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from frames.models import Frame
from tests.e2e.conftest import ROOT, run_capture, wait_until

pytestmark = pytest.mark.e2e


def test_a_running_worker_answers_inspect_ping(start_worker, pipeline_env):
    start_worker("-c", "1", "-n", "ping@%h")
    ping = ["inspect", "ping", "-t", "10", "-d", f"ping@{socket.gethostname()}"]
    result = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "detektr", *ping],
        cwd=ROOT, env=pipeline_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ping@" in result.stdout
    assert "pong" in result.stdout


def test_frames_flow_with_the_otlp_endpoint_on_a_closed_port(start_worker, pipeline_env, otlp):
    closed = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}  # discard port: nobody listens
    worker = start_worker("-c", "2", env=closed)
    run = run_capture({**pipeline_env, **closed}, "--camera", "cam09",
                         "--source", "synthetic://?width=320&height=240&fps=30",
                         "--frames", "60")  # fmt: skip
    assert run["captured"] == 60
    assert wait_until(lambda: Frame.objects.filter(status="stored").count() == 60, 120)
    worker.stop()
    assert "Traceback" not in worker.output()
    assert otlp.spans == []  # they went to the closed port, not here
