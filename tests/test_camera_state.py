"""What a capture worker says about its camera: up, stalled, reconnecting, since when."""

from __future__ import annotations

import logging
from datetime import datetime

from prometheus_client import REGISTRY

from workers.camera_state import CameraState


def gauge(name: str, camera: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"camera": camera})


def test_a_camera_is_not_healthy_until_its_first_frame():
    state = CameraState("cs-start", stall_seconds=5)
    status, body = state.health()
    assert (status, body["status"], body["last_frame_at"]) == (503, "starting", None)
    assert gauge("detektr_camera_up", "cs-start") == 0


def test_frames_make_it_up_and_report_when_the_last_one_came():
    state = CameraState("cs-up", stall_seconds=5)
    state.frame()
    status, body = state.health()
    assert (status, body["status"]) == (200, "up")
    assert gauge("detektr_camera_up", "cs-up") == 1
    assert gauge("detektr_camera_last_frame_timestamp_seconds", "cs-up") == state.last_frame_at
    reported = datetime.fromisoformat(body["last_frame_at"] or "").timestamp()
    assert abs(reported - (state.last_frame_at or 0)) < 1e-5


def test_no_frame_for_longer_than_the_stall_timeout_is_stalled_since_the_last_frame():
    state = CameraState("cs-stall", stall_seconds=5)
    state.frame()
    assert state.last_frame_at is not None
    body = state.snapshot(now=state.last_frame_at + 6)
    assert body["status"] == "stalled"
    assert body["since"] == body["last_frame_at"]
    assert "no frame for 6.0s" in body["detail"]
    assert state.snapshot(now=state.last_frame_at + 4)["status"] == "up"


def test_a_reconnect_is_counted_and_reported_with_its_cause_until_frames_flow_again():
    before = REGISTRY.get_sample_value("detektr_camera_reconnects_total", {"camera": "cs-re"})
    state = CameraState("cs-re", stall_seconds=5)
    state.frame()
    state.reconnecting("stream stopped delivering frames")
    state.retrying_open("cannot open http://camera/: refused")
    status, body = state.health()
    assert (status, body["status"], body["reconnects"]) == (503, "reconnecting", 1)
    assert body["detail"] == "cannot open http://camera/: refused"
    assert gauge("detektr_camera_up", "cs-re") == 0
    after = REGISTRY.get_sample_value("detektr_camera_reconnects_total", {"camera": "cs-re"})
    assert (after or 0) - (before or 0) == 1
    state.frame()
    assert state.health()[0] == 200


def test_frames_arriving_again_are_logged_once(caplog):
    state = CameraState("cs-log", stall_seconds=5)
    with caplog.at_level(logging.INFO, logger="workers.camera_state"):
        state.frame()
        state.frame()
        state.reconnecting("stream stopped delivering frames")
        state.frame()
    lines = [r.getMessage() for r in caplog.records if r.name == "workers.camera_state"]
    assert [line.split(" (")[0] for line in lines] == ["camera cs-log: frames arrive"] * 2
    assert "(starting for " in lines[0]
    assert "(reconnecting for " in lines[1]


def test_a_finished_run_is_not_healthy():
    state = CameraState("cs-stop", stall_seconds=5)
    state.frame()
    state.stopped()
    assert state.health()[1]["status"] == "stopped"
    assert gauge("detektr_camera_up", "cs-stop") == 0
