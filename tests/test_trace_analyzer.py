"""scripts/trace_analyzer.py on rows alone: stats, slow, errors, search without a trace, the
remote API as the row source, arguments and exit codes; completeness against a Jaeger that
is down, hangs, or is slow. Against traces from a real pipeline and Jaeger's API shapes:
tests/e2e/test_trace_analyzer.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from frame_tracking import TraceContext
from frame_tracking.otlp_receiver import OTLPReceiver
from frames.analyzer import (
    FOUND_PROBLEMS,
    GIVE_UP_AFTER,
    NOT_FOUND,
    OK,
    UNAVAILABLE,
    USAGE,
    main,
)
from tests.conftest import API_TOKEN, BASE_TIME, FrameFactory
from tests.e2e.jaeger_api import JaegerQueryAPI
from tests.e2e.services import Blackhole, free_port

pytestmark = pytest.mark.django_db
WINDOW = ["--since", BASE_TIME.isoformat(), "--until", (BASE_TIME + timedelta(hours=1)).isoformat()]
CLOSED = f"http://127.0.0.1:{free_port()}"  # nothing listens: Jaeger is down
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "trace_analyzer.py"


def analyze(*argv: str) -> tuple[int, str]:
    out = StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def refused(capsys: Any, *argv: str) -> str:
    """What argparse tells the user about a bad argument: exit 2 and the message, before any
    database, API or Jaeger is asked."""
    out = StringIO()
    with pytest.raises(SystemExit) as exited:
        main(list(argv), out=out)
    assert exited.value.code == USAGE
    assert out.getvalue() == ""
    err = str(capsys.readouterr().err)
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def run_script(*argv: str) -> subprocess.CompletedProcess[str]:
    """The real script, as an operator runs it."""
    return subprocess.run([sys.executable, str(SCRIPT), *argv], capture_output=True, text=True,
                          env=os.environ, timeout=60, check=False)  # fmt: skip


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


def test_search_with_jaeger_down_says_so_prints_the_journey_and_exits_4(
    frame_factory: FrameFactory,
) -> None:
    frame = frame_factory()
    code, out = analyze("search", frame.frame_id, "--jaeger-url", CLOSED)
    assert code == UNAVAILABLE  # Jaeger could not be read: not a verdict on the trace
    assert f"no trace from Jaeger: Jaeger could not be asked (unreachable): {CLOSED}" in out
    assert "connection refused" in out
    assert "the journey detektr recorded" in out
    assert "Traceback" not in out
    code, out = analyze("search", frame.frame_id, "--jaeger-url", CLOSED, "--json")
    assert code == UNAVAILABLE
    assert json.loads(out)["trace"]["why_not"].startswith("Jaeger could not be asked")


def test_search_for_an_unknown_or_malformed_frame(db: None, capsys: Any) -> None:
    unknown = "20261129T030000.000000Z_cam01_000000000001_0000abcd"
    assert analyze("search", unknown)[0] == NOT_FOUND
    assert f"no frame {unknown}" in capsys.readouterr().err
    code, out = analyze("search", "nonsense", "--json")
    assert code == 2 and "is not a frame id" in json.loads(out)["error"]


def test_a_bad_window_is_a_usage_error(db: None) -> None:
    code, out = analyze("stats", "--since", "yesterday", "--json")
    assert code == 2
    assert json.loads(out)["error"] == (
        "--since 'yesterday': must be an ISO-8601 timestamp or an age such as 90s, 15m, 6h, 2d"
    )
    code, out = analyze("stats", "--until", "2026-13-01", "--json")
    assert code == 2
    assert json.loads(out)["error"].startswith("--until '2026-13-01': must be an ISO-8601")


@pytest.mark.parametrize(
    ("option", "text"),
    [("--since", "0001-01-01T00:00:00+01:00"), ("--until", "9999-12-31T23:59:59-01:00")],
)
def test_a_timestamp_out_of_range_is_called_that(
    db: None, capsys: Any, option: str, text: str
) -> None:
    """It is ISO-8601: in UTC it falls in the year 0 or 10000, which is what to say."""
    code, _ = analyze("stats", option, text)
    assert code == USAGE
    err = capsys.readouterr().err
    assert err == (
        f"trace_analyzer: {option} {text!r}: is out of range: in UTC it falls outside the "
        "years 1 to 9999\n"
    )
    # frames_report parses --since/--until with the same code, and says the same.
    with pytest.raises(CommandError) as raised:
        call_command("frames_report", option, text, *(["--since", "1h"] * (option != "--since")))
    assert str(raised.value) == (
        f"{option}: is out of range: in UTC it falls outside the years 1 to 9999"
    )


def test_rows_from_a_remote_detektr_match_the_local_ones(
    frames: None, live_server: Any, settings: Any
) -> None:
    settings.DETEKTR_API_TOKENS = [API_TOKEN]
    remote = ["--api-url", live_server.url, "--token", API_TOKEN]
    for command in (["stats"], ["slow", "--over", "45ms"], ["errors"]):
        assert analyze(*command, *WINDOW, *remote, "--json") == analyze(*command, *WINDOW, "--json")
    frame_id = json.loads(analyze("errors", *WINDOW, "--json")[1])["frames"][0]["frame_id"]
    code, out = analyze("search", frame_id, *remote, "--jaeger-url", CLOSED)
    assert code == UNAVAILABLE and "ValueError: bad pixels" in out  # Jaeger is down


def test_a_remote_detektr_that_refuses_the_token_is_reported(
    frames: None, live_server: Any, settings: Any
) -> None:
    settings.DETEKTR_API_TOKENS = [API_TOKEN]
    code, out = analyze("stats", *WINDOW, "--api-url", live_server.url, "--token", "x", "--json")
    assert code == UNAVAILABLE
    assert "HTTP 403: the bearer token is not valid" in json.loads(out)["error"]


def test_the_token_comes_from_DETEKTR_API_TOKEN_and_token_wins_over_it(
    frames: None, live_server: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--token on a command line shows in ps and the shell's history; the variable does not."""
    settings.DETEKTR_API_TOKENS = [API_TOKEN]
    remote = ["stats", *WINDOW, "--api-url", live_server.url, "--json"]
    monkeypatch.setenv("DETEKTR_API_TOKEN", API_TOKEN)
    assert analyze(*remote) == analyze("stats", *WINDOW, "--json")
    code, out = analyze(*remote, "--token", "x")
    assert code == UNAVAILABLE
    assert "HTTP 403: the bearer token is not valid" in json.loads(out)["error"]
    monkeypatch.setenv("DETEKTR_API_TOKEN", "x")
    assert analyze(*remote, "--token", API_TOKEN) == analyze("stats", *WINDOW, "--json")


def test_the_script_shows_help_and_exit_codes() -> None:
    script = Path(__file__).resolve().parents[1] / "scripts" / "trace_analyzer.py"
    result = subprocess.run([sys.executable, str(script), "--help"], capture_output=True,
                            text=True, check=False)  # fmt: skip
    assert result.returncode == 0
    for command in ("search", "completeness", "stats", "slow", "errors"):
        assert command in result.stdout
    assert "4  the database, the detektr API or Jaeger could not be read" in result.stdout
    assert "DETEKTR_API_TOKEN" in result.stdout  # the --token option's default
    assert "141  the output was closed" in result.stdout


# --- arguments: refused up front (exit 2) ---------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--timeout=-1", "stats"], "argument --timeout: -1 must be more than 0"),
        (["--timeout", "0", "stats"], "argument --timeout: 0 must be more than 0"),
        (["stats", "--timeout", "nan"], "argument --timeout: 'nan' is not a finite number"),
        (["stats", "--timeout", "1e300"], "argument --timeout: 1e300 must be at most 3600"),
        (["slow", "--over=-5ms"], "argument --over: '-5ms' must be a finite duration, 0 or more"),
        (["slow", "--over", "nanms"], "--over: 'nanms' must be a finite duration, 0 or more"),
        (["slow", "--over", "infs"], "--over: 'infs' must be a finite duration, 0 or more"),
        (["slow", "--over", "5"], "argument --over: '5': use e.g. 100ms or 1.5s"),
        (["slow", "--limit=-1"], "argument --limit: -1 must be at least 1"),
        (["slow", "--limit", "0"], "argument --limit: 0 must be at least 1"),
        (["errors", "--limit", "0"], "argument --limit: 0 must be at least 1"),
        (["errors", "--limit", "2.5"], "argument --limit: '2.5' is not a whole number"),
        (["completeness", "--concurrency", "0"], "argument --concurrency: 0 must be at least 1"),
        (["completeness", "--concurrency", "65"], "argument --concurrency: 65 must be at most 64"),
        (["completeness", "--min-complete", "150"], "--min-complete: 150 must be at most 100"),
        (["completeness", "--min-complete", "-1"], "--min-complete: -1 must be at least 0"),
        (["completeness", "--min-complete", "nan"], "--min-complete: 'nan' is not a finite number"),
    ],
)  # fmt: skip
def test_numbers_out_of_range_are_usage_errors(capsys: Any, argv: list[str], message: str) -> None:
    assert refused(capsys, *argv, "--api-url", CLOSED).endswith(message)


@pytest.mark.parametrize("api_url", [None, CLOSED])
@pytest.mark.parametrize("command", ["stats", "completeness", "slow", "errors"])
def test_a_camera_id_no_camera_can_have_is_refused_before_any_io(
    capsys: Any, command: str, api_url: str | None
) -> None:
    """As capture, the API and frames_report refuse it; with --api-url of a detektr that is
    down, a usage error (not exit 4) shows that nothing was asked."""
    remote = ["--api-url", api_url] if api_url else []
    assert refused(capsys, command, "--camera", "bad cam", *remote, "--jaeger-url", CLOSED) == (
        f"trace_analyzer.py {command}: error: argument --camera: 'bad cam' is not a camera id: "
        "must be 1-64 characters from A-Z a-z 0-9 . -"
    )


def test_no_camera_means_every_camera(frames: None) -> None:
    assert analyze("stats", *WINDOW, "--camera", "", "--json") == analyze(
        "stats", *WINDOW, "--json"
    )


@pytest.mark.parametrize("command", [["stats"], ["completeness"], ["slow"], ["errors"]])
def test_a_camera_with_no_frames_in_the_window_is_said_and_exits_3(
    frames: None, capsys: Any, command: list[str]
) -> None:
    """A mistyped camera, or one that was not capturing, must not pass a cron check as a
    clean window ("0 frames failed", exit 0): it is said, and the exit status is 3."""
    no_frames = (
        f"no frames of camera 'cma01' from {BASE_TIME.isoformat()} to "
        f"{(BASE_TIME + timedelta(hours=1)).isoformat()}: is the camera id right, and was it "
        "capturing?"
    )
    code, out = analyze(*command, *WINDOW, "--camera", "cma01", "--jaeger-url", CLOSED)
    assert (code, out) == (NOT_FOUND, "")
    assert capsys.readouterr().err == f"trace_analyzer: {no_frames}\n"
    code, out = analyze(*command, *WINDOW, "--camera", "cma01", "--jaeger-url", CLOSED, "--json")
    assert (code, json.loads(out)) == (NOT_FOUND, {"error": no_frames})
    # cam02 has frames (none failed, none slow): not this
    assert analyze(*command, *WINDOW, "--camera", "cam02", "--jaeger-url", CLOSED)[0] != NOT_FOUND


@pytest.mark.parametrize("url", ["foo", "jaeger:16686", "ftp://jaeger", "http://", "http://j:x"])
def test_a_jaeger_url_that_is_not_an_http_url_is_refused(
    capsys: Any, frame_factory: FrameFactory, url: str
) -> None:
    frame = frame_factory()
    assert refused(capsys, "search", frame.frame_id, "--jaeger-url", url) == (
        "trace_analyzer.py search: error: argument --jaeger-url: must be an http(s) URL such "
        f"as http://jaeger:16686, not {url!r}"
    )


def test_the_script_refuses_bad_arguments_with_exit_2_and_no_traceback() -> None:
    for argv, message in (
        (["stats", "--timeout=-1"], "argument --timeout: -1 must be more than 0"),
        (["--jaeger-url", "foo", "completeness"], "argument --jaeger-url: must be an http(s) URL"),
    ):
        result = run_script(*argv)
        assert result.returncode == USAGE, result.stderr
        assert message in result.stderr and "Traceback" not in result.stderr
        assert result.stdout == ""


# --- --api-url ------------------------------------------------------------------------------


def test_an_api_url_ending_in_frames_means_the_detektr_it_belongs_to(
    frames: None, live_server: Any, settings: Any
) -> None:
    """The help and the guide ask for the detektr's URL; the /frames API's own address is the
    likely mistake, and reads the same rows."""
    settings.DETEKTR_API_TOKENS = [API_TOKEN]
    base = ["--api-url", live_server.url, "--token", API_TOKEN]
    for api_url in (f"{live_server.url}/frames", f"{live_server.url}/frames/"):
        given = ["--api-url", api_url, "--token", API_TOKEN]
        for command in (["stats"], ["slow", "--over", "45ms"], ["errors"]):
            assert analyze(*command, *WINDOW, *given, "--json") == analyze(
                *command, *WINDOW, *base, "--json"
            )
        frame_id = json.loads(analyze("errors", *WINDOW, *given, "--json")[1])["frames"][0][
            "frame_id"
        ]
        code, out = analyze("search", frame_id, *given, "--jaeger-url", CLOSED, "--json")
        assert code == UNAVAILABLE  # the row was found; Jaeger is down
        assert json.loads(out)["frame"]["error"] == "ValueError: bad pixels"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("detektr:8000", "must be an http(s) URL such as http://detektr:8000, not 'detektr:8000'"),
        ("http://detektr/frames?since=1h", "'http://detektr/frames?since=1h': give the URL "
                                           "without ? or #"),
    ],
)  # fmt: skip
def test_an_api_url_that_is_not_a_detektr_url_is_refused(
    capsys: Any, url: str, message: str
) -> None:
    assert refused(capsys, "stats", "--api-url", url).endswith(f"argument --api-url: {message}")


# --- completeness against a Jaeger that is down, hangs or is slow ----------------------------


@pytest.fixture
def sampled_frames(frame_factory: FrameFactory) -> int:
    """40 sampled frames and 5 that are not: a window Jaeger has to be asked about 40 times."""
    for _ in range(40):
        frame_factory(camera_id="cam01")
    for _ in range(5):
        frame_factory(camera_id="cam02", trace_context=TraceContext.generate(sampled=False))
    return 40


def test_completeness_with_jaeger_refusing_connections_gives_up_in_one_line(
    sampled_frames: int, capsys: Any
) -> None:
    # One trace at a time: exactly GIVE_UP_AFTER are asked for.
    code, out = analyze("completeness", *WINDOW, "--jaeger-url", CLOSED, "--concurrency", "1")
    assert code == UNAVAILABLE
    assert out == ""  # nothing was checked: no table of zeros
    assert capsys.readouterr().err == (
        f"trace_analyzer: Jaeger at {CLOSED} could not be read (unreachable: "
        f"{CLOSED}/api/v3/traces/<trace id>: connection refused); gave up after "
        f"{GIVE_UP_AFTER} traces in a row, {sampled_frames - GIVE_UP_AFTER} more sampled "
        "frames not asked\n"
    )
    # Eight at a time: the traces already in flight when it gave up are asked too.
    code, out = analyze("completeness", *WINDOW, "--jaeger-url", CLOSED, "--json")
    assert code == UNAVAILABLE
    report = json.loads(out)
    assert (report["frames"], report["not_sampled"], report["checked"]) == (45, 5, 0)
    assert report["unreadable"] == sampled_frames  # every sampled frame: not checked
    refused_key = f"unreachable: {CLOSED}/api/v3/traces/<trace id>: connection refused"
    skipped_key = "skipped: not asked: Jaeger could not be read"
    assert set(report["errors"]) == {refused_key, skipped_key}  # one line per kind of failure
    asked = report["errors"][refused_key]
    assert GIVE_UP_AFTER <= asked < GIVE_UP_AFTER + 8
    assert report["errors"][skipped_key] == sampled_frames - asked
    assert report["error"].endswith(
        f"gave up after {GIVE_UP_AFTER} traces in a row, {sampled_frames - asked} more "
        "sampled frames not asked"
    )


def test_completeness_stops_asking_a_jaeger_that_answers_only_errors(
    sampled_frames: int, capsys: Any
) -> None:
    with OTLPReceiver() as receiver, JaegerQueryAPI(receiver) as proxy:
        proxy.bad_gateway = True
        code, out = analyze("completeness", *WINDOW, "--jaeger-url", proxy.url, "--json",
                            "--concurrency", "4")  # fmt: skip
    assert code == UNAVAILABLE
    report = json.loads(out)
    assert report["error"].startswith(f"Jaeger at {proxy.url} could not be read (http_error: ")
    assert "HTTP 502" in report["error"]
    # It stopped: the failures in a row, and at most the traces already in flight.
    assert GIVE_UP_AFTER <= len(proxy.requests) <= GIVE_UP_AFTER + 4 < sampled_frames
    assert report["unreadable"] == sampled_frames


def test_completeness_waits_for_a_jaeger_that_times_out_and_walks_every_trace(
    frame_factory: FrameFactory,
) -> None:
    """Timeouts are not a reason to give up (a busy Jaeger); the error still reads as one."""
    for _ in range(GIVE_UP_AFTER + 4):
        frame_factory()
    hang = Blackhole()
    try:
        code, out = analyze("completeness", *WINDOW, "--jaeger-url", hang.endpoint,
                            "--timeout", "0.2", "--concurrency", "8", "--json")  # fmt: skip
    finally:
        hang.close()
    assert code == UNAVAILABLE  # nothing could be read at all
    report = json.loads(out)
    assert report["error"] == f"Jaeger at {hang.endpoint} could not be read"
    assert report["errors"] == {
        f"timeout: {hang.endpoint}/api/v3/traces/<trace id>: no answer within 0.2s": (
            GIVE_UP_AFTER + 4
        )
    }


@pytest.fixture
def slow_jaeger() -> Iterator[JaegerQueryAPI]:
    """Jaeger's API, up but slow to answer: it has none of the traces (no spans arrived)."""
    with OTLPReceiver() as receiver, JaegerQueryAPI(receiver) as jaeger:
        jaeger.delay = 0.02
        yield jaeger


def test_completeness_walks_a_slow_jaeger_to_the_end(
    sampled_frames: int, slow_jaeger: JaegerQueryAPI
) -> None:
    code, out = analyze("completeness", *WINDOW, "--jaeger-url", slow_jaeger.url, "--json")
    assert code == FOUND_PROBLEMS
    report = json.loads(out)
    assert "error" not in report
    assert (report["checked"], report["missing_from_backend"]) == (sampled_frames,) * 2
    trace_requests = [r for r in slow_jaeger.requests if r.startswith("/api/v3/traces/")]
    assert len(trace_requests) == sampled_frames
