"""GET /frames/<frame_id>: the frame, its journey through the stages, its Jaeger link."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from frame_tracking import TraceContext
from frames.models import Frame
from tests.conftest import BASE_TIME, FrameFactory

pytestmark = pytest.mark.django_db


def test_a_frame_whose_trace_was_not_sampled_says_so_and_has_no_jaeger_url(
    api_client: Client, frame_factory: FrameFactory
) -> None:
    frame = frame_factory(trace_context=TraceContext.generate(sampled=False))
    body = api_client.get(f"/frames/{frame.frame_id}").json()
    assert (body["sampled"], body["jaeger_url"]) == (False, None)
    assert body["trace_id"] == frame.trace_id  # the id is still the frame's context
    assert len(body["journey"]) == 4  # the row keeps the whole journey
    listed = api_client.get("/frames", {"frame_id": frame.frame_id}).json()["frames"][0]
    assert (listed["sampled"], listed["jaeger_url"]) == (False, None)


def test_it_returns_the_frame_with_its_journey_and_jaeger_url(
    api_client: Client, frame_factory: FrameFactory, settings: Any
) -> None:
    settings.JAEGER_UI_URL = "https://jaeger.example.org"
    frame = frame_factory(captured_at=BASE_TIME, results={"quality": {"blur": 0.25}})
    response = api_client.get(f"/frames/{frame.frame_id}")
    assert response.status_code == 200
    body = response.json()
    assert body["frame_id"] == frame.frame_id
    assert body["status"] == "stored"
    assert body["results"] == {"quality": {"blur": 0.25}}
    assert body["jaeger_url"] == f"https://jaeger.example.org/trace/{frame.trace_id}"
    assert (body["sampled"], body["test"]) == (True, False)
    stages = [stage["stage"] for stage in body["journey"]]
    assert stages == ["capture", "buffer", "process", "store"]


def test_its_journey_gives_each_stage_start_end_duration_and_queue_wait(
    api_client: Client, frame_factory: FrameFactory
) -> None:
    frame = frame_factory(captured_at=BASE_TIME)
    process = api_client.get(f"/frames/{frame.frame_id}").json()["journey"][2]
    # conftest.stage_timings: process queued at +9 ms, started at +15 ms, ended at +31 ms.
    assert process == {
        "stage": "process",
        "queued_at": "2026-11-29T03:00:00.009000+00:00",
        "start": "2026-11-29T03:00:00.015000+00:00",
        "end": "2026-11-29T03:00:00.031000+00:00",
        "duration_ms": 16.0,
        "queue_wait_ms": 6.0,
    }


def test_the_capture_stage_has_no_queue_wait(
    api_client: Client, frame_factory: FrameFactory
) -> None:
    frame = frame_factory()
    capture = api_client.get(f"/frames/{frame.frame_id}").json()["journey"][0]
    assert capture["queued_at"] is None
    assert capture["queue_wait_ms"] is None
    assert capture["duration_ms"] == 4.0


def test_its_journey_lists_only_the_stages_a_dropped_frame_reached(
    api_client: Client, frame_factory: FrameFactory
) -> None:
    t = BASE_TIME.timestamp()
    timings = {"capture": {"started_at": t, "ended_at": t + 0.004}, "buffer": {"queued_at": t}}
    frame = frame_factory(status="dropped", reason="backpressure", stage="buffer", timings=timings)
    body = api_client.get(f"/frames/{frame.frame_id}").json()
    assert body["reason"] == "backpressure"
    assert body["journey"][1] == {
        "stage": "buffer",
        "queued_at": "2026-11-29T03:00:00+00:00",
        "start": None,
        "end": None,
        "duration_ms": None,
        "queue_wait_ms": None,
    }


def test_it_tolerates_timings_that_are_not_numbers(
    api_client: Client, frame_factory: FrameFactory
) -> None:
    frame = frame_factory()
    Frame.objects.filter(pk=frame.pk).update(
        timings={"buffer": {"started_at": "soon", "ended_at": None}, "odd": 7}
    )
    response = api_client.get(f"/frames/{frame.frame_id}")
    assert response.status_code == 200
    assert [s["duration_ms"] for s in response.json()["journey"]] == [None, None]


def test_a_frame_without_a_trace_has_no_jaeger_url(
    api_client: Client, frame_factory: FrameFactory
) -> None:
    frame = frame_factory()
    Frame.objects.filter(pk=frame.pk).update(trace_id="")
    assert api_client.get(f"/frames/{frame.frame_id}").json()["jaeger_url"] is None


def test_it_answers_404_for_an_unknown_frame(
    api_client: Client, frame_factory: FrameFactory
) -> None:
    frame = frame_factory()
    unknown = frame.frame_id[:-8] + "ffffffff"
    response = api_client.get(f"/frames/{unknown}")
    assert response.status_code == 404
    assert response.json() == {"error": f"no frame with id {unknown}"}


@pytest.mark.parametrize(
    "frame_id",
    [
        "nope",
        "20261129T030000.000000Z_cam01_000000000001",
        "20261129T250000.000000Z_cam01_000000000001_0000abcd",
        "20261129T030000.000000Z_cam 01_000000000001_0000abcd",
    ],
)
def test_it_rejects_a_malformed_frame_id(api_client: Client, frame_id: str) -> None:
    response = api_client.get(f"/frames/{frame_id}")
    assert response.status_code == 400
    assert response.json() == {"error": "frame_id: not a valid frame id"}


def test_it_rejects_query_parameters(api_client: Client, frame_factory: FrameFactory) -> None:
    frame = frame_factory()
    response = api_client.get(f"/frames/{frame.frame_id}", {"verbose": "1"})
    assert response.status_code == 400
    assert response.json() == {"error": "unknown parameter: verbose"}


def test_it_requires_credentials(client: Client, frame_factory: FrameFactory) -> None:
    frame = frame_factory()
    response = client.get(f"/frames/{frame.frame_id}")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "error" in response.json()


def test_it_rejects_a_wrong_token(api_client: Client, frame_factory: FrameFactory) -> None:
    frame = frame_factory()
    response = api_client.get(
        f"/frames/{frame.frame_id}", headers={"Authorization": "Bearer wrong"}
    )
    assert response.status_code == 403
    assert response.json() == {"error": "the bearer token is not valid"}


def test_it_answers_a_staff_session(
    client: Client, staff_user: Any, frame_factory: FrameFactory
) -> None:
    frame = frame_factory()
    client.force_login(staff_user)
    assert client.get(f"/frames/{frame.frame_id}").json()["frame_id"] == frame.frame_id
