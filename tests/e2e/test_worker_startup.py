"""A real `celery -A detektr worker` starting up: a FRAME_PROCESSORS entry it cannot load
stops a worker of the process stage, named; a metrics port it cannot have costs a worker its
metrics, never its traces."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from frames.models import Frame
from tests.e2e.conftest import ROOT, STAGE_SPANS, run_capture, wait_until

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("entry", "error"),
    [
        ("no.such.Processor", "cannot be imported: ModuleNotFoundError: No module named 'no'"),
        (
            "tasks.processors.NoSuchProcessor",
            'cannot be imported: ImportError: Module "tasks.processors" does not define a '
            '"NoSuchProcessor" attribute/class',
        ),
        (
            "tasks.processors.ProcessorError",
            "is a class, not a processor (a subclass of tasks.processors.BaseProcessor)",
        ),
    ],
)
def test_a_worker_refuses_to_start_with_a_processor_it_cannot_load(pipeline_env, entry, error):
    env = {**pipeline_env, "FRAME_PROCESSORS": f"tasks.processors.FrameQualityProcessor,{entry}"}
    result = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "detektr", "worker", "-P", "solo", "-l", "info"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    # The reason is the last line, whole, with no traceback to bury it.
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"Refusing to start the worker: FRAME_PROCESSORS: {entry!r} {error}"
    assert "Traceback" not in result.stderr
    assert "ready." not in result.stdout + result.stderr


def test_a_worker_of_the_other_stages_starts_without_loading_processors(start_worker):
    worker = start_worker("-Q", "buffer,store", "-P", "solo",
                          env={"FRAME_PROCESSORS": "no.such.Processor"})  # fmt: skip
    assert worker.process.poll() is None


@pytest.mark.parametrize("pool", ["threads", "solo"])
def test_a_taken_metrics_port_costs_a_worker_its_metrics_not_its_traces(
    start_worker, pipeline_env, otlp, pool
):
    # Another worker on the host has the port, as two scripts/worker.sh on their default would.
    with socket.socket() as taken:
        taken.bind(("", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        worker = start_worker("-P", pool, "-c", "2", env={"WORKER_METRICS_PORT": str(port)},
                              script=True)  # fmt: skip
        run = run_capture(pipeline_env, "--camera", "cam61",
                          "--source", "synthetic://?width=320&height=240&fps=30",
                          "--frames", "10")  # fmt: skip
        assert run["captured"] == 10
        assert wait_until(lambda: Frame.objects.filter(status="stored").count() == 10, 120)
        worker.stop()
    stage_spans = [s for s in otlp.spans if s.service == "detektr-worker" and s.name in STAGE_SPANS]
    assert {span.name for span in stage_spans} == STAGE_SPANS
    assert {span.trace_id for span in stage_spans} == {f.trace_id for f in Frame.objects.all()}
    errors = [line for line in worker.output().splitlines() if " ERROR " in line]
    assert len(errors) == 1, worker.output()[-3000:]
    assert f"WORKER_METRICS_PORT={port}: cannot serve /metrics on that port" in errors[0]
