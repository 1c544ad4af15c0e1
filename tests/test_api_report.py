"""GET /frames/report and manage.py frames_report: per-camera accounting and loss."""

from __future__ import annotations

import time
from datetime import timedelta
from io import StringIO

import pytest
import redis
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from frames.report import run_report
from tasks.frame_bytes import SEQUENCE_KEY
from tests.conftest import BASE_TIME, FrameFactory
from workers.lease import LEASE_KEY
from workers.ledger import ADMISSION_KEY, CameraLoad

pytestmark = pytest.mark.django_db
WINDOW = {"since": BASE_TIME.isoformat(), "until": (BASE_TIME + timedelta(hours=1)).isoformat()}


@pytest.fixture
def frames(frame_factory: FrameFactory) -> None:
    # cam01: 0..9 captured; 3, 4 and 7 never reached an end; 8 shed, 9 stale, 6 failed.
    for sequence, latency in zip((0, 1, 2, 5), (10.0, 20.0, 30.0, 40.0), strict=True):
        frame_factory(camera_id="cam01", sequence=sequence, latency_ms=latency)
    frame_factory(camera_id="cam01", sequence=6, status="failed", reason="corrupt_frame")
    frame_factory(camera_id="cam01", sequence=8, status="dropped", reason="backpressure")
    frame_factory(camera_id="cam01", sequence=9, status="dropped", reason="stale")
    frame_factory(camera_id="cam02", sequence=0)


def test_it_reports_outcomes_loss_and_latency_per_camera(api_client: Client, frames: None):
    response = api_client.get("/frames/report", WINDOW)
    assert response.status_code == 200
    cam01, cam02 = response.json()["cameras"]
    assert cam01["camera_id"] == "cam01"
    assert (cam01["captured"], cam01["stored"], cam01["dropped"], cam01["failed"]) == (10, 4, 2, 1)
    assert cam01["dropped_by_reason"] == {"backpressure": 1, "stale": 1}
    assert cam01["failed_by_reason"] == {"corrupt_frame": 1}
    assert (cam01["lost"], cam01["loss_pct"]) == (3, 30.0)
    assert cam01["gaps"] == [[3, 4], [7, 7]]
    assert cam01["p50_latency_ms"] == pytest.approx(25.0)  # over the stored frames only
    assert cam01["p99_latency_ms"] == pytest.approx(39.7)
    assert (cam02["captured"], cam02["lost"], cam02["gaps"]) == (1, 0, [])


def test_test_frames_stay_out_of_the_figures(api_client: Client, frame_factory: FrameFactory):
    frame_factory(camera_id="cam03", sequence=1)
    frame_factory(camera_id="cam03", sequence=0, test=True, latency_ms=5000.0)
    frame_factory(camera_id="canary", sequence=0, test=True, status="failed")
    (cam03,) = api_client.get("/frames/report", WINDOW).json()["cameras"]
    assert (cam03["camera_id"], cam03["captured"], cam03["stored"]) == ("cam03", 1, 1)
    assert cam03["p99_latency_ms"] == pytest.approx(40.0)


def test_it_filters_by_camera(api_client: Client, frames: None):
    response = api_client.get("/frames/report", {**WINDOW, "camera": "cam02"})
    assert [camera["camera_id"] for camera in response.json()["cameras"]] == ["cam02"]


def test_it_takes_an_age_for_since(api_client: Client, frame_factory: FrameFactory):
    frame_factory(camera_id="cam03", captured_at=BASE_TIME.replace(year=2099))
    assert api_client.get("/frames/report", {"since": "15m"}).json()["cameras"] == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "since: is required"),
        ({"since": "yesterday"}, "since: must be an ISO-8601 timestamp or an age"),
        ({"since": "1h", "until": "2h"}, "since must not be later than until"),
        ({"since": "1h", "camera": "cam 01"}, "camera: must be 1-64 characters"),
        ({"since": "1h", "window": "5m"}, "unknown parameter: window"),
    ],
)
def test_it_rejects_bad_input(api_client: Client, params: dict[str, str], message: str):
    response = api_client.get("/frames/report", params)
    assert response.status_code == 400
    assert response.json()["error"].startswith(message)


def test_it_requires_credentials(client: Client):
    assert client.get("/frames/report", {"since": "1h"}).status_code == 401


def test_the_command_prints_the_same_numbers(frames: None):
    out = StringIO()
    call_command("frames_report", "--since", WINDOW["since"], "--until", WINDOW["until"],
                 stdout=out)  # fmt: skip
    text = out.getvalue()
    assert "camera cam01" in text
    assert "captured 10" in text
    assert "dropped  2   (backpressure 1, stale 1)" in text
    assert "lost     3   (30.0%)" in text
    assert "lost sequence numbers: 3-4, 7" in text
    assert "failed   1   (corrupt_frame 1)" in text
    assert "p50 25.0 ms" in text


def test_the_command_names_a_bad_argument():
    with pytest.raises(CommandError, match="--since: must be an ISO-8601"):
        call_command("frames_report", "--since", "last week")


def test_two_captures_of_one_camera_show_as_duplicates_not_as_less_loss(
    api_client: Client, frame_factory: FrameFactory
):
    for sequence in range(5):
        frame_factory(camera_id="cam05", sequence=sequence)
    for sequence in (2, 3, 4):  # a second process that reused the sequence numbers
        frame_factory(camera_id="cam05", sequence=sequence, nonce="0000ffff")
    frame_factory(camera_id="cam05", sequence=7)
    (camera,) = api_client.get("/frames/report", {**WINDOW, "camera": "cam05"}).json()["cameras"]
    assert (camera["captured"], camera["frames"], camera["duplicates"]) == (8, 9, 3)
    assert (camera["lost"], camera["gaps"]) == (2, [[5, 6]])


def test_a_run_counts_the_frames_it_lost_at_its_ends(frame_factory: FrameFactory):
    for sequence in range(12, 18):
        frame_factory(camera_id="cam06", sequence=sequence)
    run = run_report("cam06", 10, 19)
    assert (run["captured"], run["stored"], run["lost"], run["loss_pct"]) == (10, 6, 4, 40.0)
    assert run["gaps"] == [(10, 11), (18, 19)]


def test_a_run_with_no_rows_lost_every_frame(db: None):
    run = run_report("cam07", 1, 5)
    assert (run["captured"], run["frames"], run["lost"], run["gaps"]) == (5, 0, 5, [(1, 5)])


def test_it_shows_each_running_cameras_in_flight_limit(
    api_client: Client, frames: None, unit_redis: redis.Redis
):
    now = time.time()
    for camera, limit, at in (("cam01", 7, now), ("cam02", 40, now - 3600)):  # cam02 stopped
        load = CameraLoad(offered=30, finished=25, in_flight=5, limit=limit, at=at)
        unit_redis.hset(ADMISSION_KEY, camera, load.to_json())
    cam01, cam02 = api_client.get("/frames/report", WINDOW).json()["cameras"]
    assert (cam01["inflight_limit"], cam02["inflight_limit"]) == (7, None)
    out = StringIO()
    call_command("frames_report", "--since", WINDOW["since"], "--until", WINDOW["until"],
                 stdout=out)  # fmt: skip
    assert "in-flight limit now  7 frames   (latency budget 100 ms)" in out.getvalue()


def test_frames_numbered_after_the_newest_row_show_when_no_capture_runs_the_camera(
    api_client: Client, frame_factory: FrameFactory, unit_redis: redis.Redis
):
    # A capture killed after Redis numbered frames 4 and 5 and before any row for them, and
    # not run again: no window's `lost` sees them (no row after them), the report must.
    for sequence in (1, 2, 3):
        frame_factory(camera_id="cam08", sequence=sequence)
    unit_redis.set(SEQUENCE_KEY.format("cam08"), 5)

    def cam08() -> dict:
        (camera,) = api_client.get("/frames/report", {**WINDOW, "camera": "cam08"}).json()[
            "cameras"
        ]
        return camera

    assert (cam08()["unrecorded"], cam08()["lost"]) == (2, 0)
    out = StringIO()
    call_command("frames_report", "--since", WINDOW["since"], "--until", WINDOW["until"],
                 "--camera", "cam08", stdout=out)  # fmt: skip
    assert "NOT RECORDED: 2 frames numbered after its newest row" in out.getvalue()

    unit_redis.set(LEASE_KEY.format("cam08"), "a capture run")  # one runs it: in flight
    assert cam08()["unrecorded"] is None
    unit_redis.delete(LEASE_KEY.format("cam08"))
    frame_factory(camera_id="cam08", sequence=4)
    frame_factory(camera_id="cam08", sequence=5)  # the next run reaped and recorded them
    assert cam08()["unrecorded"] == 0
    unit_redis.flushdb()  # a Redis restarted without its data: nothing to compare with
    assert cam08()["unrecorded"] is None


def test_a_camera_stopped_just_now_is_not_called_unrecorded(
    api_client: Client, frame_factory: FrameFactory, unit_redis: redis.Redis
):
    # Its last frames may still be on their way through the pipeline.
    now = timezone.now()
    frame_factory(camera_id="cam09", sequence=1, captured_at=now - timedelta(seconds=1))
    unit_redis.set(SEQUENCE_KEY.format("cam09"), 3)
    window = {"since": "1m", "camera": "cam09"}
    (cam09,) = api_client.get("/frames/report", window).json()["cameras"]
    assert cam09["unrecorded"] is None
