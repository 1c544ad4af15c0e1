"""The admin frame browser: list, exact search, filters, journey page, camera overview."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from frame_tracking import TraceContext
from frame_tracking.status import REASONS
from frames.admin import waterfall
from frames.models import Frame, StageEpochs
from frames.report import overview, percentile_cont
from tests.conftest import BASE_TIME, FrameFactory

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/frames/frame/"


@pytest.fixture
def admin(client: Client, superuser: Any) -> Client:
    client.force_login(superuser)
    return client


def test_the_list_shows_camera_status_latency_drop_reason_and_trace_link(
    admin: Client, frame_factory: FrameFactory
) -> None:
    frame = frame_factory(camera_id="gate", status="dropped", reason="stale", latency_ms=1234.5)
    html = admin.get(CHANGELIST).content.decode()
    assert "gate" in html
    assert "1,234.5 ms" in html
    assert '<td class="field-drop_reason">stale</td>' in html
    assert f'href="http://localhost:16686/trace/{frame.trace_id}"' in html


def test_search_by_frame_id_finds_that_frame_with_an_exact_lookup(
    admin: Client, frame_factory: FrameFactory
) -> None:
    wanted, other = frame_factory(), frame_factory()
    with CaptureQueriesContext(connection) as queries:
        html = admin.get(CHANGELIST, {"q": wanted.frame_id}).content.decode()
    assert wanted.frame_id in html
    assert other.frame_id not in html
    assert not any("LIKE" in q["sql"].upper() for q in queries.captured_queries)


def test_search_by_trace_id_finds_that_frame(admin: Client, frame_factory: FrameFactory) -> None:
    wanted, other = frame_factory(), frame_factory()
    html = admin.get(CHANGELIST, {"q": wanted.trace_id.upper()}).content.decode()
    assert wanted.frame_id in html
    assert other.frame_id not in html


def test_search_for_anything_else_finds_nothing(admin: Client, frame_factory: FrameFactory) -> None:
    frame = frame_factory()
    html = admin.get(CHANGELIST, {"q": frame.frame_id[:20]}).content.decode()
    assert frame.frame_id not in html
    assert "0 frames" in html


def test_it_filters_by_camera_status_and_date(admin: Client, frame_factory: FrameFactory) -> None:
    a = frame_factory(camera_id="a", captured_at=timezone.now() - timedelta(minutes=1))
    long_ago = timezone.now() - timedelta(days=3)
    b = frame_factory(camera_id="b", status="failed", error="boom", captured_at=long_ago)
    html = admin.get(CHANGELIST).content.decode()
    assert "?camera=a" in html and "?camera=b" in html  # the filter offers each camera
    by_camera = admin.get(CHANGELIST, {"camera": "a"}).content.decode()
    assert a.frame_id in by_camera and b.frame_id not in by_camera
    by_status = admin.get(CHANGELIST, {"status__exact": "failed"}).content.decode()
    assert b.frame_id in by_status and a.frame_id not in by_status
    today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    tomorrow = today + timedelta(days=1)
    by_date = admin.get(
        CHANGELIST, {"captured_at__gte": today.isoformat(), "captured_at__lt": tomorrow.isoformat()}
    ).content.decode()
    assert a.frame_id in by_date and b.frame_id not in by_date


def test_it_filters_by_reason_with_every_reason_offered(
    admin: Client, frame_factory: FrameFactory
) -> None:
    stale = frame_factory(status="dropped", reason="stale", stage="buffer")
    shed = frame_factory(status="dropped", reason="backpressure", stage="capture")
    html = admin.get(CHANGELIST).content.decode()
    for reason in REASONS:
        assert f"?reason__exact={reason}" in html
    by_reason = admin.get(CHANGELIST, {"reason__exact": "stale"}).content.decode()
    assert stale.frame_id in by_reason and shed.frame_id not in by_reason


def test_camera_ids_lists_each_camera_once_in_order(frame_factory: FrameFactory) -> None:
    for camera in ("b", "a", "b", "c", "a"):
        frame_factory(camera_id=camera)
    assert Frame.objects.camera_ids() == ["a", "b", "c"]


def test_it_is_read_only(admin: Client, frame_factory: FrameFactory) -> None:
    frame = frame_factory()
    assert admin.get(f"{CHANGELIST}add/").status_code == 403
    assert admin.get(f"{CHANGELIST}{frame.pk}/delete/").status_code == 403
    admin.post(f"{CHANGELIST}{frame.pk}/change/", {"status": "failed"})
    frame.refresh_from_db()
    assert frame.status == "stored"


def test_the_frame_page_shows_its_journey_results_and_jaeger_link(
    admin: Client, frame_factory: FrameFactory
) -> None:
    frame = frame_factory(results={"quality": {"blur": 0.25, "ok": True}})
    html = admin.get(f"{CHANGELIST}{frame.pk}/change/").content.decode()
    for stage in ("capture", "buffer", "process", "store"):
        assert f'<tr class="stage-{stage}">' in html
    assert "16.0 ms" in html  # process duration, conftest.stage_timings
    assert f'href="http://localhost:16686/trace/{frame.trace_id}"' in html
    assert "&quot;blur&quot;: 0.25" in html


def test_a_frame_not_sampled_says_so_instead_of_linking_to_jaeger(
    admin: Client, frame_factory: FrameFactory
) -> None:
    frame = frame_factory(trace_context=TraceContext.generate(sampled=False))
    page = admin.get(f"{CHANGELIST}{frame.pk}/change/").content.decode()
    listing = admin.get(CHANGELIST).content.decode()
    for html in (page, listing):
        assert "not sampled" in html
        assert "/trace/" not in html
    assert '<tr class="stage-store">' in page  # the journey is the row's own


def test_the_waterfall_places_stages_on_one_time_axis() -> None:
    t = BASE_TIME.timestamp()
    stages = [
        StageEpochs("capture", None, t, t + 0.01),
        StageEpochs("buffer", t + 0.01, t + 0.03, t + 0.04),
        StageEpochs("store", t + 0.05, None, None),
    ]
    capture, buffer, store = waterfall(BASE_TIME, stages)
    assert (capture["work_left"], capture["work_width"]) == (0.0, 20.0)
    assert (buffer["wait_left"], buffer["wait_width"]) == (20.0, 40.0)
    assert (buffer["work_left"], buffer["work_width"]) == (60.0, 20.0)
    assert buffer["queue_wait_ms"] == 20.0
    assert (store["work_width"], store["duration_ms"]) == (0.0, None)


def test_the_changelist_links_to_the_camera_overview(admin: Client) -> None:
    assert 'href="/admin/frames/frame/overview/"' in admin.get(CHANGELIST).content.decode()


def test_the_overview_counts_outcomes_loss_and_latency_per_camera(
    admin: Client, frame_factory: FrameFactory
) -> None:
    now = timezone.now()
    for sequence in (0, 1, 2, 5, 6):  # 3 and 4 never arrived
        frame_factory(camera_id="gate", sequence=sequence, captured_at=now - timedelta(seconds=10))
    an_hour_ago = now - timedelta(hours=1)
    frame_factory(camera_id="gate", sequence=7, status="dropped", reason="stale",
                  captured_at=an_hour_ago)  # fmt: skip
    frame_factory(camera_id="gate", sequence=8, status="dropped", reason="stale",
                  captured_at=now - timedelta(seconds=5))  # fmt: skip
    frame_factory(camera_id="old", captured_at=an_hour_ago)
    response = admin.get("/admin/frames/frame/overview/", {"window": "5m"})
    (gate,) = response.context["cameras"]
    assert gate["camera_id"] == "gate"
    assert (gate["frames"], gate["stored"], gate["dropped"], gate["failed"]) == (6, 5, 1, 0)
    assert gate["dropped_by_reason"] == {"stale": 1}
    assert gate["lost"] == 3  # 3, 4 and 7 (7 was captured before the window)
    # From the per-minute rollup's latency histogram: within 5 %.
    assert gate["p95_latency_ms"] == pytest.approx(40.0, rel=0.05)
    # The rate while it captured (6 frames over 5 s, plus one frame's time), not over 5 min.
    assert gate["fps"] == pytest.approx(1.0, rel=1e-3)
    assert b"stale: 1" in response.content


def test_the_overview_window_defaults_to_an_hour_and_rejects_nothing(admin: Client) -> None:
    assert admin.get("/admin/frames/frame/overview/").context["window"] == "1h"
    assert admin.get("/admin/frames/frame/overview/", {"window": "7y"}).context["window"] == "1h"
    assert admin.get("/admin/frames/frame/overview/", {"window": "24h"}).status_code == 200


def test_the_overview_is_for_staff_only(client: Client) -> None:
    response = client.get("/admin/frames/frame/overview/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_postgres_p95_matches_the_python_fallback(frame_factory: FrameFactory) -> None:
    latencies = [3.0, 10.0, 11.5, 40.0, 41.0, 90.0, 250.0]
    start = datetime(2026, 11, 29, tzinfo=UTC)
    for i, latency in enumerate(latencies):
        frame_factory(captured_at=start + timedelta(seconds=i), latency_ms=latency)
    (camera,) = overview(Frame.objects.all(), start, start + timedelta(minutes=1))
    assert camera["p95_latency_ms"] == pytest.approx(percentile_cont(latencies, 0.95))
    assert percentile_cont(latencies, 0.95) == pytest.approx(202.0)


def test_percentile_cont_interpolates_like_postgres() -> None:
    assert percentile_cont([], 0.95) is None
    assert percentile_cont([7.0], 0.95) == 7.0
    assert percentile_cont([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5


def test_the_admin_has_its_css_with_debug_off(client: Client, settings: Any) -> None:
    """WhiteNoise serves /static/ from the web process itself; nothing else does in production."""
    assert settings.DEBUG is False
    login = client.get("/admin/login/").content.decode()
    assert "/static/admin/css/base.css" in login
    response = client.get("/static/admin/css/base.css")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/css")
    assert b"--body-bg" in response.getvalue()


@pytest.mark.parametrize(
    "lookup",
    ["error__icontains", "trace_id__regex", "frame_id__contains", "status", "camera_id", "id__gt"],
)
def test_it_refuses_any_filter_it_does_not_offer(
    admin: Client, frame_factory: FrameFactory, lookup: str
) -> None:
    """Each would be a full scan of a 20M-row table; the declared filters use indexes."""
    frame_factory(status="failed", error="boom")
    response = admin.get(CHANGELIST, {lookup: "o"})
    assert response.status_code == 400


def test_a_nul_byte_in_a_filter_is_a_400_not_a_database_error(admin: Client) -> None:
    assert admin.get(CHANGELIST, {"camera": "\x00"}).status_code == 400
    assert admin.get(CHANGELIST, {"status__exact": "\x00"}).status_code == 400


def test_search_by_camera_id_lists_that_cameras_frames(
    admin: Client, frame_factory: FrameFactory
) -> None:
    gate, door = frame_factory(camera_id="gate"), frame_factory(camera_id="door")
    html = admin.get(CHANGELIST, {"q": "gate"}).content.decode()
    assert gate.frame_id in html and door.frame_id not in html
    assert "a camera id" in html  # the search box says what it accepts


def test_a_search_that_can_match_nothing_says_what_the_box_accepts(admin: Client) -> None:
    html = admin.get(CHANGELIST, {"q": "gate 3"}, follow=True).content.decode()
    assert "Nothing can match" in html
    assert "An exact frame id, a 32-hex trace id, or a camera id" in html


def test_the_list_shows_capture_times_to_the_millisecond(
    admin: Client, frame_factory: FrameFactory
) -> None:
    frame_factory(captured_at=datetime(2026, 11, 29, 3, 0, 0, 33_456, tzinfo=UTC))
    html = admin.get(CHANGELIST).content.decode()
    assert '<td class="field-captured_at_ms">2026-11-29 03:00:00.033</td>' in html


def test_repeated_wrong_passwords_lock_the_login_out(
    client: Client, superuser: Any, settings: Any
) -> None:
    form = {"username": "admin", "password": "wrong", "next": "/admin/"}
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert client.post("/admin/login/", form).status_code == 200  # the form again
    assert client.post("/admin/login/", form).status_code == 429
    # Locked out: now even the right password is refused, until the cool-off or axes_reset.
    right = {**form, "password": "admin-password"}
    assert client.post("/admin/login/", right).status_code == 429
    assert "_auth_user_id" not in client.session
