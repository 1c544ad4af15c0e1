"""Workers killed mid-run: the broker redelivers, nothing is lost and nothing stored twice."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.e2e.conftest import account, finish_capture, start_capture

pytestmark = pytest.mark.e2e


def test_sigkilled_workers_lose_no_frame_and_store_none_twice(start_worker, pipeline_env):
    worker = start_worker("-c", "2")
    capture = start_capture(
        pipeline_env, "--camera", "cam31", "--source", "synthetic://?width=320&height=240",
        "--fps", "30", "--duration", "24",
    )  # fmt: skip
    killed = []
    for _ in range(3):
        time.sleep(4)
        child = worker.children()[0]
        os.kill(child, signal.SIGKILL)
        killed.append(child)
    time.sleep(4)
    os.kill(worker.pid, signal.SIGKILL)
    time.sleep(1)
    start_worker("-c", "2")  # as a service manager would restart it
    run = finish_capture(capture)

    counts = account("cam31", run, timeout=240)
    print(f"after 3 child kills and a parent kill: {counts}")
    assert len(set(killed)) == 3
    for pid in killed:  # the pool saw each child die and replaced it
        assert f"pid:{pid} exited with 'signal 9 (SIGKILL)'" in worker.output()
    assert counts["failed"] == 0, counts
    assert counts["stored"] + counts["dropped"] == counts["captured"], counts
