"""A Celery worker started as a child process, for the demo and the load test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from django.conf import settings


class WorkerDidNotStart(Exception):
    pass


def start_worker(
    args: Sequence[str], log: Path, env: Mapping[str, str] | None = None, timeout: float = 90
) -> subprocess.Popen[bytes]:
    """`celery -A detektr worker ARGS`, its output in `log`; returns once it is ready.

    In a session of its own, so stop() can also reap pool processes a crash left behind.
    """
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "detektr", "worker", "-l", "info", *args],
        cwd=settings.BASE_DIR, env=None if env is None else dict(env),
        stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    while "ready." not in log.read_text(errors="replace"):
        if worker.poll() is not None or time.monotonic() > deadline:
            stop(worker)
            raise WorkerDidNotStart(f"the worker did not start; see {log}")
        time.sleep(0.2)
    return worker


def stop(worker: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Warm shutdown, as a service manager does (pool processes flush their spans), then
    reap whatever is left of its process group."""
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    try:
        os.killpg(worker.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
