"""The capture worker's reconnect backoff against the run's --duration (a simulated clock:
nothing here waits or depends on speed)."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import redis

from workers import capture
from workers.capture import CaptureConfig, CaptureWorker
from workers.sources import SourceError


class DownCamera:
    description, fps, paced = "rtsp://camera.invalid/stream", None, False

    def open(self) -> None:
        raise SourceError("cannot open rtsp://camera.invalid/stream")

    def read(self) -> np.ndarray | None:
        raise SourceError("not open")

    def frame_time(self) -> float | None:
        return None

    def close(self) -> None:
        pass


class SimulatedClock(threading.Event):
    """A stop event whose waits move a clock instead of waiting."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None
        self.waits.append(timeout)
        self.now += timeout
        return False


@pytest.mark.parametrize("duration", [2.0, 5.0, 45.0])
def test_a_camera_that_never_opens_ends_the_run_at_its_duration(
    unit_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch, duration: float
) -> None:
    clock = SimulatedClock()
    monkeypatch.setattr(capture, "time", SimpleNamespace(monotonic=lambda: clock.now,
                                                         time=time.time))  # fmt: skip
    config = CaptureConfig("cam01", "rtsp://camera.invalid/stream", duration=duration)
    worker = CaptureWorker(config, stop=clock)
    down: Any = DownCamera()
    assert worker.open_with_backoff(down, started=clock.now) is False
    # Backoffs of 0.5, 1, 2, 4 … s, the last cut to what was left of the run.
    assert sum(clock.waits) == pytest.approx(duration)
    assert clock.waits[0] == 0.5
