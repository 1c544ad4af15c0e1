"""--fps: a paced source is read on a schedule; a live one is thinned to the rate, and a camera
delivering at exactly that rate loses nothing to jitter. Arrival times are simulated."""

from __future__ import annotations

import random

import pytest

from workers.pacing import RateLimit, Schedule


def arrivals(fps: float, seconds: float, jitter: float, seed: int = 7) -> list[float]:
    """A camera at `fps`, each frame up to `jitter` seconds early or late."""
    rng = random.Random(seed)
    return [n / fps + rng.uniform(-jitter, jitter) for n in range(int(fps * seconds))]


@pytest.mark.parametrize("fps", [15.0, 30.0, 60.0])
def test_a_camera_at_exactly_the_asked_rate_loses_no_frame_to_jitter(fps: float) -> None:
    limit = RateLimit(fps)
    times = sorted(arrivals(fps, seconds=60, jitter=0.4 / fps))
    assert all(limit.keep(t) for t in times)


def test_frames_arriving_in_bursts_at_the_asked_rate_are_kept() -> None:
    # An RTSP camera often delivers two or three frames at once, then nothing for a while.
    limit = RateLimit(30)
    times = [(n // 3) * 0.1 for n in range(900)]
    assert all(limit.keep(t) for t in times)


def test_a_faster_camera_is_thinned_to_the_asked_rate() -> None:
    limit = RateLimit(15)
    times = sorted(arrivals(30, seconds=60, jitter=0.01))
    kept = [t for t in times if limit.keep(t)]
    assert len(kept) == pytest.approx(15 * 60, abs=limit.burst + 1)
    for start in range(0, 59):  # never more than the rate (plus the slack) in any second
        in_second = [t for t in kept if start <= t < start + 1]
        assert len(in_second) <= 15 + limit.burst


def test_a_stream_clock_that_restarts_costs_no_frame() -> None:
    limit = RateLimit(15)
    before = [n / 15 for n in range(150)]  # ten seconds, then the stream is reopened
    after = [n / 15 for n in range(150)]
    assert all(limit.keep(t) for t in before + after)


def test_a_schedule_keeps_its_slots_without_drift() -> None:
    schedule = Schedule(period=0.1)
    now, waited = 0.0, []
    for _ in range(50):
        wait = schedule.wait(now)
        waited.append(wait)
        now += wait + 0.03  # reading and handing over the frame took 30 ms
    assert waited[0] == 0.0
    assert now == pytest.approx(50 * 0.1 - 0.1 + 0.03)


def test_after_a_stall_a_schedule_starts_afresh_instead_of_bursting() -> None:
    schedule = Schedule(period=0.1)
    schedule.wait(0.0)
    # Five seconds late: the missed slot, the one due now, then back on a 0.1 s beat.
    assert [schedule.wait(5.0) for _ in range(4)] == pytest.approx([0.0, 0.0, 0.0, 0.1])
