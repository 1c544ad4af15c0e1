"""The frame sources on their own, without Celery or a database: what `--source` accepts, and
that files, RTSP and MJPEG cameras really deliver frames, and stop delivering loudly."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from tests.e2e.camera_servers import RTSPCamera, write_video
from workers.sources import OpenCVSource, Source, SourceError, SyntheticSource, open_source


@pytest.fixture
def short_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stall shows within a second; opening RTSP takes about two here, so that gets five."""
    monkeypatch.setenv("CAMERA_OPEN_TIMEOUT_MS", "5000")
    monkeypatch.setenv("CAMERA_READ_TIMEOUT_MS", "1000")


def read_frames(source: Source, count: int) -> list[np.ndarray]:
    frames = []
    for _ in range(count):
        frame = source.read()
        assert frame is not None
        frames.append(frame)
    return frames


def read_until_it_fails(source: Source, limit: int = 300) -> tuple[int, Exception | None]:
    """Read until read() raises: how many frames came first, and what it raised. Fail the
    test, instead of hanging it, when a read blocks."""
    frames = 0
    outcome: list[Exception | None] = []

    def reader() -> None:
        nonlocal frames
        try:
            for _ in range(limit):
                source.read()
                frames += 1
            outcome.append(None)
        except Exception as exc:  # handed over to the test's thread
            outcome.append(exc)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    # Far beyond the 1 s read timeout, well short of OpenCV's own 30 s default.
    thread.join(20)
    if not outcome:
        pytest.fail("read() still blocks 20 s into a stall: CAMERA_READ_TIMEOUT_MS is not applied")
    return frames, outcome[0]


def read_to_the_live_edge(source: Source, fps: float) -> None:
    """Read what FFmpeg buffered while opening the stream (it hands that over at once) until
    reads wait for the camera: three in a row that each took a third of a frame period."""
    waited = 0
    for _ in range(300):
        started = time.monotonic()
        assert source.read() is not None
        waited = waited + 1 if time.monotonic() - started > 1 / fps / 3 else 0
        if waited == 3:
            return
    pytest.fail("300 frames read and the reads still never wait for the camera")


# --- what --source accepts -------------------------------------------------------------------


def test_synthetic_options_set_size_and_fps():
    source = open_source("synthetic://?width=640&height=360&fps=12.5")
    assert isinstance(source, SyntheticSource)
    assert (source.width, source.height, source.fps) == (640, 360, 12.5)
    assert source.paced


@pytest.mark.parametrize(
    "text",
    [
        "synthetic://?colour=red",
        "synthetic://?width=wide",
        "synthetic://?fps=0",
        "synthetic://?width=8&height=8",
        "synthetic://?width=100000",
    ],
)
def test_it_rejects_bad_synthetic_options(text):
    with pytest.raises(SourceError, match="synthetic://"):
        open_source(text)


@pytest.mark.parametrize("text", ["", "camera-one", "/no/such/video.mp4", "ftp://host/cam"])
def test_it_rejects_text_that_names_no_source(text):
    with pytest.raises(SourceError, match="not a stream URL"):
        open_source(text)


def test_credentials_stay_out_of_an_rtsp_description_but_reach_the_camera():
    source = open_source("rtsp://admin:s3cret@10.0.0.5:554/Streaming/101")
    assert isinstance(source, OpenCVSource)
    assert source.description == "rtsp://10.0.0.5:554/Streaming/101"
    assert source.target == "rtsp://admin:s3cret@10.0.0.5:554/Streaming/101"
    assert not source.paced


def test_a_mistyped_scheme_is_refused_without_the_password():
    with pytest.raises(SourceError) as error:
        open_source("rtps://admin:Secr3t@10.0.0.5/stream1")
    assert "Secr3t" not in str(error.value)
    assert "10.0.0.5/stream1" in str(error.value)


def test_a_device_index_and_a_file_are_sources(tmp_path):
    video = write_video(tmp_path / "clip.mp4", frames=3)
    device = open_source("0")
    file = open_source(str(video))
    assert isinstance(device, OpenCVSource) and device.target == 0 and not device.paced
    assert isinstance(file, OpenCVSource) and file.target == str(video) and file.paced


def test_stream_timeouts_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("CAMERA_OPEN_TIMEOUT_MS", "2500")
    monkeypatch.setenv("CAMERA_READ_TIMEOUT_MS", "750")
    source = open_source("http://127.0.0.1:8080/video.mjpg")
    assert isinstance(source, OpenCVSource)
    assert (source.open_timeout_ms, source.read_timeout_ms) == (2500, 750)


def test_stream_timeouts_default_to_ten_and_five_seconds(monkeypatch):
    monkeypatch.delenv("CAMERA_OPEN_TIMEOUT_MS", raising=False)
    monkeypatch.delenv("CAMERA_READ_TIMEOUT_MS", raising=False)
    source = open_source("rtsp://127.0.0.1/camera")
    assert isinstance(source, OpenCVSource)
    assert (source.open_timeout_ms, source.read_timeout_ms) == (10_000, 5_000)


@pytest.mark.parametrize("variable", ["CAMERA_OPEN_TIMEOUT_MS", "CAMERA_READ_TIMEOUT_MS"])
@pytest.mark.parametrize("value", ["soon", "0", "-5", "1.5", "5s"])
def test_it_rejects_a_malformed_timeout_naming_the_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SourceError, match=f"{variable}='{value}'"):
        open_source("rtsp://127.0.0.1/camera")


# --- frames ----------------------------------------------------------------------------------


def test_the_synthetic_source_delivers_moving_frames_of_the_asked_size():
    source = open_source("synthetic://?width=320&height=200")
    source.open()
    first, second = read_frames(source, 2)
    assert first.shape == second.shape == (200, 320, 3)
    assert first.dtype == np.uint8
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("name, codec", [("clip.mp4", "mp4v"), ("clip.avi", "MJPG")])
def test_a_video_file_gives_every_frame_then_none(tmp_path, name, codec):
    video = write_video(tmp_path / name, frames=45, width=352, height=288, codec=codec)
    source = open_source(str(video))
    source.open()
    frames = read_frames(source, 45)
    assert source.read() is None  # the end of a file is not an error
    source.close()
    assert {frame.shape for frame in frames} == {(288, 352, 3)}
    assert not np.array_equal(frames[0], frames[-1])


def test_a_stream_that_cannot_be_opened_raises_source_error(short_timeouts, mjpeg_camera):
    mjpeg_camera.stop()  # nothing listens on its port any more
    source = open_source(mjpeg_camera.url)
    with pytest.raises(SourceError, match="cannot open"):
        source.open()


def test_an_rtsp_camera_delivers_frames(short_timeouts, rtsp_camera):
    source = open_source(rtsp_camera.url)
    source.open()
    frames = read_frames(source, 20)
    source.close()
    assert {frame.shape for frame in frames} == {(240, 320, 3)}
    assert source.fps == 15
    assert not np.array_equal(frames[0], frames[-1])


def test_an_mjpeg_camera_delivers_frames(short_timeouts, mjpeg_camera):
    source = open_source(mjpeg_camera.url)
    source.open()
    frames = read_frames(source, 20)
    source.close()
    assert {frame.shape for frame in frames} == {(240, 320, 3)}
    assert not np.array_equal(frames[0], frames[-1])


def test_a_stalled_mjpeg_camera_fails_the_read_and_can_be_reopened(short_timeouts, mjpeg_camera):
    source = open_source(mjpeg_camera.url)
    source.open()
    read_frames(source, 5)
    mjpeg_camera.stall()  # the connection stays open; no more frames come
    _, error = read_until_it_fails(source)
    assert isinstance(error, SourceError) and "stopped delivering" in str(error)
    source.close()
    mjpeg_camera.resume()
    source.open()
    assert read_frames(source, 3)[0].shape == (240, 320, 3)
    source.close()


def test_a_frozen_rtsp_camera_fails_the_first_read_and_can_be_reopened(short_timeouts,
                                                                      rtsp_camera):  # fmt: skip
    source = open_source(rtsp_camera.url)
    source.open()
    read_to_the_live_edge(source, fps=15)
    rtsp_camera.freeze()
    # Cut off by the read timeout, FFmpeg hands over the frames its decoder still held, one
    # per timeout: none of them may come out as a frame, as if the camera had just made it.
    frames, error = read_until_it_fails(source)
    assert isinstance(error, SourceError) and "stopped delivering" in str(error)
    assert frames == 0
    source.close()
    rtsp_camera.thaw()
    source.open()
    assert read_frames(source, 3)[0].shape == (240, 320, 3)
    source.close()


def test_a_slow_rtsp_camera_is_not_a_stall(monkeypatch):
    # One frame a second, each read waits most of it: under the 1.5 s timeout, every frame
    # is live. (Opening takes seconds: FFmpeg probes a few frames first.)
    monkeypatch.setenv("CAMERA_OPEN_TIMEOUT_MS", "15000")
    monkeypatch.setenv("CAMERA_READ_TIMEOUT_MS", "1500")
    with RTSPCamera(width=320, height=240, fps=1) as camera:
        source = open_source(camera.url)
        source.open()
        frames = read_frames(source, 8)  # past the opening burst, into reads that wait
        source.close()
    assert {frame.shape for frame in frames} == {(240, 320, 3)}


@pytest.mark.parametrize(
    "target, paced, blocked, cut_off",
    [
        ("rtsp://camera/live", False, 0.999, False),  # in time, however slow
        ("rtsp://camera/live", False, 1.0, True),  # the read timeout ended the wait
        ("http://camera/video.mjpg", False, 1.2, True),
        ("clip.mp4", True, 1.2, False),  # a file: late is not a stall
        (0, False, 1.2, False),  # a device: V4L2, no FFmpeg read timeout
    ],
)
def test_a_read_the_timeout_ended_is_cut_off(target, paced, blocked, cut_off):
    source = OpenCVSource(target=target, description="camera", paced=paced, read_timeout_ms=1000)
    assert source.cut_off(blocked) is cut_off
