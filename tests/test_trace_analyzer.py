"""scripts/trace_analyzer.py on rows alone: stats, slow, errors, search without a trace, the
remote API as the row source, arguments and exit codes. Against traces from a real pipeline
and Jaeger's API shapes: tests/e2e/test_trace_analyzer.py."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest

from frame_tracking import TraceContext
from frames.analyzer import FOUND_PROBLEMS, NOT_FOUND, OK, UNAVAILABLE, main
from tests.conftest import API_TOKEN, BASE_TIME, FrameFactory
from tests.e2e.services import free_port

pytestmark = pytest.mark.django_db
WINDOW = ["--since", BASE_TIME.isoformat(), "--until", (BASE_TIME + timedelta(hours=1)).isoformat()]
CLOSED = f"http://127.0.0.1:{free_port()}"  # nothing listens: Jaeger is down


def analyze(*argv: str) -> tuple[int, str]:
    out = StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


@pytest.fixture
def frames(frame_factory: FrameFactory) -> None:
    for latency in (30.0, 40.0, 50.0, 250.0):
        frame_factory(camera_id="cam01", latency_ms=latency)
    frame_factory(camera_id="cam01", status="failed", reason="processor_error",
                  stage="process", error="ValueError: bad pixels")  # fmt: skip
    frame_factory(camera_id="cam02", latency_ms=20.0)
    frame_factory(camera_id="canary", test=True, latency_ms=9000.0)


def test_stats_gives_percentiles_per_camera_and_stage(frames: None) -> None:
    code, out = analyze("stats", *WINDOW, "--json")
    assert code == OK
    cam01 = json.loads(out)["cameras"]["cam01"]
    # conftest.stage_timings: process waits 6 ms and works 16 ms for every frame.
    assert cam01["process work"] == {"n": 5, "p50": 16.0, "p95": 16.0, "p99": 16.0}
    assert cam01["process queue wait"]["p50"] == pytest.approx(6.0)
    assert cam01["end to end (stored)"]["n"] == 4
    assert cam01["end to end (stored)"]["p50"] == pytest.approx(45.0)
    assert "canary" not in json.loads(out)["cameras"]  # test frames stay out


def test_options_go_before_or_after_the_command(frames: None) -> None:
    assert analyze("--json", "stats", *WINDOW) == analyze("stats", *WINDOW, "--json")
    assert (
        analyze("--since", WINDOW[1], "stats", "--until", WINDOW[3], "--json")[1]
        == (analyze("stats", *WINDOW, "--json")[1])
    )


def test_stats_prints_a_table(frames: None) -> None:
    code, out = analyze("stats", *WINDOW, "--camera", "cam02")
    assert code == OK
    assert "camera cam02" in out and "cam01" not in out
    assert "end to end (stored)" in out


def test_slow_lists_the_frames_over_the_limit_and_where_the_time_went(frames: None) -> None:
    code, out = analyze("slow", *WINDOW, "--over", "45ms", "--json")
    assert code == FOUND_PROBLEMS
    found = json.loads(out)
    assert found["count"] == 2
    assert [f["took_ms"] for f in found["frames"]] == [250.0, 50.0]
    stages = {s["stage"]: s for s in found["frames"][0]["stages"]}
    assert stages["process"]["work_ms"] == pytest.approx(16.0)
    assert analyze("slow", *WINDOW, "--over", "1s")[0] == OK


def test_slow_judges_one_stage_with_its_queue_wait(frames: None) -> None:
    code, out = analyze("slow", *WINDOW, "--stage", "process", "--over", "21ms")
    assert code == FOUND_PROBLEMS
    assert out.startswith("6 frames took over 21 ms in process (queue wait + work)")
    assert analyze("slow", *WINDOW, "--stage", "process", "--over", "23ms")[0] == OK


def test_errors_lists_failed_frames_with_their_error(frames: None) -> None:
    code, out = analyze("errors", *WINDOW)
    assert code == FOUND_PROBLEMS
    assert "1 frames failed" in out
    assert "processor_error at process: ValueError: bad pixels" in out
    assert analyze("errors", *WINDOW, "--camera", "cam02")[0] == OK


def test_search_of_a_frame_not_sampled_prints_its_journey_and_asks_jaeger_nothing(
    frame_factory: FrameFactory,
) -> None:
    frame = frame_factory(trace_context=TraceContext.generate(sampled=False))
    code, out = analyze("search", frame.frame_id, "--jaeger-url", CLOSED)
    assert code == OK
    assert "not sampled: its trace was never exported" in out
    assert "process" in out and "16.00" in out  # the journey from the row


def test_search_with_jaeger_down_says_so_and_still_prints_the_journey(
    frame_factory: FrameFactory,
) -> None:
    frame = frame_factory()
    code, out = analyze("search", frame.frame_id, "--jaeger-url", CLOSED)
    assert code == FOUND_PROBLEMS
    assert "Jaeger could not be asked (unreachable)" in out
    assert "the journey detektr recorded" in out
    assert "Traceback" not in out


def test_search_for_an_unknown_or_malformed_frame(db: None, capsys: Any) -> None:
    unknown = "20261129T030000.000000Z_cam01_000000000001_0000abcd"
    assert analyze("search", unknown)[0] == NOT_FOUND
    assert f"no frame {unknown}" in capsys.readouterr().err
    code, out = analyze("search", "nonsense", "--json")
    assert code == 2 and "is not a frame id" in json.loads(out)["error"]


def test_a_bad_window_is_a_usage_error(db: None) -> None:
    code, out = analyze("stats", "--since", "yesterday", "--json")
    assert code == 2
    assert json.loads(out)["error"].startswith("--since/--until: must be an ISO-8601")


def test_rows_from_a_remote_detektr_match_the_local_ones(
    frames: None, live_server: Any, settings: Any
) -> None:
    settings.DETEKTR_API_TOKENS = [API_TOKEN]
    remote = ["--api-url", live_server.url, "--token", API_TOKEN]
    for command in (["stats"], ["slow", "--over", "45ms"], ["errors"]):
        assert analyze(*command, *WINDOW, *remote, "--json") == analyze(*command, *WINDOW, "--json")
    frame_id = json.loads(analyze("errors", *WINDOW, "--json")[1])["frames"][0]["frame_id"]
    code, out = analyze("search", frame_id, *remote, "--jaeger-url", CLOSED)
    assert code == FOUND_PROBLEMS and "ValueError: bad pixels" in out


def test_a_remote_detektr_that_refuses_the_token_is_reported(
    frames: None, live_server: Any, settings: Any
) -> None:
    settings.DETEKTR_API_TOKENS = [API_TOKEN]
    code, out = analyze("stats", *WINDOW, "--api-url", live_server.url, "--token", "x", "--json")
    assert code == UNAVAILABLE
    assert "HTTP 403: the bearer token is not valid" in json.loads(out)["error"]


def test_the_script_shows_help_and_exit_codes() -> None:
    script = Path(__file__).resolve().parents[1] / "scripts" / "trace_analyzer.py"
    result = subprocess.run([sys.executable, str(script), "--help"], capture_output=True,
                            text=True, check=False)  # fmt: skip
    assert result.returncode == 0
    for command in ("search", "completeness", "stats", "slow", "errors"):
        assert command in result.stdout
    assert "4  the database, the detektr API or Jaeger could not be read" in result.stdout
