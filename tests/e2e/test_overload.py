"""Overload that does not depend on how fast the machine is: one worker process whose process
stage sleeps a set time per frame finishes at most 1000 / COST_MS frames a second, and the
cameras offer several times that. Capture sheds to the latency budget; every frame is
accounted for.
"""

from __future__ import annotations

import os
import statistics
from typing import Any

import pytest

from frames.models import Frame
from tests.e2e.conftest import account, finish_capture, start_capture

pytestmark = pytest.mark.e2e

SECONDS = float(os.environ.get("OVERLOAD_SECONDS", "30"))
COST_MS = 50  # the process stage's sleep: with -c 1, at most 20 frames/s, on any machine
CAP = 1000 / COST_MS
FPS = 30  # per camera, two cameras: 60 offered, 3x the most the worker can finish
BUDGET_MS = 1000
# The bound on the kept frames' p95. Why it holds on a slow, noisy machine: the limit is set
# to (measured finish rate x budget), so time in flight = frames in flight / finish rate stays
# near the budget whatever the rate is (Little's law); the factor 2 is for the spread of one
# 1-s interval's measurement and a worker briefly slower than the interval before. Before
# the first measurement each camera may have 4 in flight (ADMISSION_START), 8 in all: 8 / rate,
# and the floor (1 per camera) costs 2 / rate; both stay under the bound while the worker
# finishes more than 4 frames/s, i.e. while buffer + store take under 200 ms a frame beside
# the 50 ms sleep. Here, with two captures on two shared cores, they take ~60 ms (~9 frames/s).
P95_BOUND_MS = 2 * BUDGET_MS


def overload(env: dict[str, str], cameras: list[str]) -> dict[str, Any]:
    """Run the cameras against the capped worker; their totals and the stored frames' p95."""
    captures = [
        start_capture(env, "--camera", camera, "--source", "synthetic://?width=320&height=240",
                      "--fps", str(FPS), "--duration", str(SECONDS))
        for camera in cameras
    ]  # fmt: skip
    runs = [finish_capture(capture) for capture in captures]
    totals = {"captured": 0, "stored": 0, "dropped": 0, "failed": 0, "dropped:backpressure": 0}
    for camera, run in zip(cameras, runs, strict=True):
        counts = account(camera, run, timeout=240)  # asserts none lost, none twice
        for key in totals:
            totals[key] += counts.get(key, 0)
    stored = Frame.objects.filter(camera_id__in=cameras, status="stored")
    latencies = [ms for ms in stored.values_list("latency_ms", flat=True) if ms is not None]
    return {
        **totals,
        "p95_ms": statistics.quantiles(latencies, n=20)[-1],
        "stored_per_s": totals["stored"] / SECONDS,
        "limits": [run["inflight_limit"] for run in runs],
    }


def test_over_a_capped_worker_capture_sheds_to_the_latency_budget(start_worker, pipeline_env):
    env = {
        **pipeline_env,
        "FRAME_PROCESSORS": "tests.e2e.processors.FixedCost",
        "FIXED_COST_MS": str(COST_MS),
        "FRAME_MAX_AGE_SECONDS": "60",  # nothing goes stale: each frame ends stored or shed
        "FRAME_INFLIGHT_PER_CAMERA": "40",
        "FRAME_INFLIGHT_TOTAL": "60",
    }
    start_worker("-c", "1", env=env)

    fixed = overload({**env, "FRAME_LATENCY_BUDGET_MS": "0"}, ["cam41", "cam42"])
    adaptive = overload({**env, "FRAME_LATENCY_BUDGET_MS": str(BUDGET_MS)}, ["cam43", "cam44"])
    print(f"\nfixed bound (40 per camera, 60 in all): {fixed}\nbudget {BUDGET_MS} ms: {adaptive}")

    for run in (fixed, adaptive):
        assert run["captured"] == run["stored"] + run["dropped"] + run["failed"]
        # The worker cannot have stored more than its cap allows (plus the drain at the end):
        # the rest of what the cameras offered was shed, whatever the machine's speed.
        assert run["stored"] <= CAP * (SECONDS + 10)
        assert run["dropped:backpressure"] >= run["captured"] - CAP * (SECONDS + 10) > 0
    example = Frame.objects.filter(camera_id="cam43", reason="backpressure").first()
    assert example is not None
    assert example.error.startswith("in flight: camera ")
    assert f"(limit for a {BUDGET_MS} ms latency budget)" in example.error
    assert adaptive["p95_ms"] <= P95_BOUND_MS
    assert all(limit < 40 for limit in adaptive["limits"])  # adapted below the fixed bound
