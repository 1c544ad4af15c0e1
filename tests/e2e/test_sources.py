"""Real sources through the capture command and a real worker: a video file, an RTSP camera,
an MJPEG camera, an MJPEG camera that stalls mid-stream and comes back, and an RTSP camera
that freezes and comes back."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from frames.models import Frame
from tests.e2e.camera_servers import write_video
from tests.e2e.conftest import ROOT, run_capture, summary_of, wait_until

pytestmark = pytest.mark.e2e


def stored_frames(camera_id: str, count: int) -> list[Frame]:
    """The camera's rows once `count` are there (or what there is after the wait)."""
    frames = Frame.objects.filter(camera_id=camera_id)
    wait_until(lambda: frames.count() >= count, 120, interval=0.5)
    return list(frames.order_by("sequence"))


def outcomes(frames: list[Frame]) -> set[tuple[str, int | None, int | None]]:
    return {(frame.status, frame.width, frame.height) for frame in frames}


def test_every_frame_of_a_video_file_is_stored_with_its_size(start_worker, pipeline_env,
                                                               tmp_path):  # fmt: skip
    video = write_video(tmp_path / "entrance.mp4", frames=45, width=352, height=288)
    start_worker("-c", "2")
    run = run_capture(pipeline_env, "--camera", "file01", "--source", str(video))

    assert run["captured"] == 45  # the file's end ends the run
    frames = stored_frames("file01", 45)
    assert len(frames) == 45
    assert [frame.sequence for frame in frames] == list(range(1, 46))
    assert outcomes(frames) == {("stored", 352, 288)}
    assert {frame.source for frame in frames} == {str(video)}


def test_an_rtsp_camera_is_captured_without_its_password_in_the_rows(start_worker, pipeline_env,
                                                                      rtsp_camera):  # fmt: skip
    # The test server asks for no credentials; FFmpeg only sends them when challenged.
    with_password = rtsp_camera.url.replace("rtsp://", "rtsp://viewer:s3cret@")
    start_worker("-c", "2")
    # --fps at the camera's own rate: jitter costs no frame.
    run = run_capture(pipeline_env, "--camera", "rtsp01", "--source", with_password,
                      "--frames", "30", "--fps", "15")  # fmt: skip

    assert (run["captured"], run["skipped"]) == (30, 0)
    frames = stored_frames("rtsp01", 30)
    assert len(frames) == 30
    assert outcomes(frames) == {("stored", 320, 240)}
    assert {frame.source for frame in frames} == {rtsp_camera.url}


def test_an_mjpeg_camera_over_http_is_captured(start_worker, pipeline_env, mjpeg_camera):
    start_worker("-c", "2")
    run = run_capture(pipeline_env, "--camera", "mjpeg01", "--source", mjpeg_camera.url,
                         "--frames", "30")  # fmt: skip

    assert run["captured"] == 30
    frames = stored_frames("mjpeg01", 30)
    assert len(frames) == 30
    assert outcomes(frames) == {("stored", 320, 240)}
    assert [frame.sequence for frame in frames] == list(range(1, 31))


def test_a_camera_that_stalls_is_reconnected_and_the_run_completes(start_worker, pipeline_env,
                                                                    mjpeg_camera):  # fmt: skip
    # After 10 frames the camera goes silent without hanging up. It comes back once the worker
    # has given up on the silent connection and opened a new one, so the run can only finish
    # if the read timeout fires and the worker reconnects.
    mjpeg_camera.stall_after(frames=10, resume_after_connections=1)
    env = {**pipeline_env, "CAMERA_OPEN_TIMEOUT_MS": "1000", "CAMERA_READ_TIMEOUT_MS": "1000"}
    start_worker("-c", "2")
    result = subprocess.run(  # run_capture() with stderr too: the reconnect is logged there
        [sys.executable, "manage.py", "capture", "--camera", "stall01",
         "--source", mjpeg_camera.url, "--frames", "30", "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr

    run = summary_of(result.stdout)
    assert (run["captured"], run["reconnects"]) == (30, 1)
    assert "stopped delivering frames; reconnecting" in result.stderr
    assert mjpeg_camera.connections == 2
    frames = stored_frames("stall01", 30)
    assert [frame.sequence for frame in frames] == list(range(1, 31))
    assert {frame.status for frame in frames} == {"stored"}


def test_a_frozen_rtsp_camera_is_reconnected_and_no_late_frame_is_stored(start_worker,
        pipeline_env, rtsp_camera, tmp_path):  # fmt: skip
    # The camera freezes (SIGSTOP) once frames flow, and thaws once the capture has given up
    # on it. Cut off by the read timeout, FFmpeg still hands over the frames its decoder held,
    # one per timeout: stored, they would be rows captured a timeout or more after the freeze.
    env = {**pipeline_env, "CAMERA_OPEN_TIMEOUT_MS": "5000", "CAMERA_READ_TIMEOUT_MS": "2000"}
    start_worker("-c", "2")
    log = tmp_path / "capture.log"
    with log.open("w") as stderr:
        capture = subprocess.Popen(
            [sys.executable, "manage.py", "capture", "--camera", "freeze01",
             "--source", rtsp_camera.url, "--frames", "90", "--json"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True,
        )  # fmt: skip
        try:
            rows = Frame.objects.filter(camera_id="freeze01")
            assert wait_until(lambda: rows.count() >= 30, 60), log.read_text()
            rtsp_camera.freeze()
            frozen_at = time.time()
            assert wait_until(lambda: "reconnecting" in log.read_text(), 60), log.read_text()
            thawed_at = time.time()
            rtsp_camera.thaw()
            out, _ = capture.communicate(timeout=180)
        finally:
            if capture.poll() is None:
                capture.kill()
                capture.wait()
    assert capture.returncode == 0, log.read_text()

    run = summary_of(out)
    assert run["captured"] == 90 and run["reconnects"] >= 1
    frames = stored_frames("freeze01", 90)
    assert [frame.sequence for frame in frames] == list(range(1, 91))
    # Frames FFmpeg had buffered come within moments of the freeze; a late one a timeout after.
    late = [f.sequence for f in frames if frozen_at + 1 < f.captured_at.timestamp() < thawed_at]
    assert late == []
    assert "none within CAMERA_READ_TIMEOUT_MS (2000 ms); reconnecting" in log.read_text()


def test_the_capture_command_names_a_malformed_timeout_variable(pipeline_env, mjpeg_camera):
    env = {**pipeline_env, "CAMERA_READ_TIMEOUT_MS": "5s"}
    result = subprocess.run(
        [sys.executable, "manage.py", "capture", "--camera", "cam01",
         "--source", mjpeg_camera.url, "--frames", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert "CAMERA_READ_TIMEOUT_MS='5s'" in result.stderr
    assert mjpeg_camera.connections == 0  # refused before it touched the camera
