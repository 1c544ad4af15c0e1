"""The per-camera per-minute rollup behind the camera overview: its counts equal a count over
the frames, whatever order records arrive in, however often they are sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db.models import Count, Q

from frame_tracking import FrameID, FrameMetadata, FrameStatus, TraceContext
from frame_tracking.status import parse_reason
from frames.models import CameraMinute, Frame
from frames.report import CAMERA_FRAMES, camera_overview, overview
from tests.conftest import FrameFactory, stage_timings

pytestmark = pytest.mark.django_db
START = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
COUNTS = ("frames", "stored", "dropped", "failed", "dropped_by_reason", "failed_by_reason",
          "lost", "duplicates", "captured", "fps")  # fmt: skip


def record(camera: str, sequence: int, status: str = "stored", reason: str = "", **kw: Any) -> None:
    """Like frame_factory: one frame every 0.9 s, so the frames cross minute boundaries."""
    at = START + timedelta(seconds=0.9 * sequence)
    meta = FrameMetadata(
        frame_id=FrameID.from_parts(at, camera, sequence, "0000abcd"),
        timestamp=at,
        camera_id=camera,
        sequence=sequence,
        status=FrameStatus(status),
        reason=parse_reason(reason),
        trace_context=TraceContext.generate(),
        timings=stage_timings(at),
        **kw,
    )
    Frame.record_many([meta, meta], finished_at=at + timedelta(milliseconds=20 + sequence))


def fill() -> None:
    for sequence in range(0, 400):
        if sequence % 17 == 5:
            continue  # lost
        if sequence % 11 == 0:  # reaped as expired, then the store got to it after all
            record("gate", sequence, "dropped", "expired")
            record("gate", sequence)
        elif sequence % 13 == 0:  # stored, then a late duplicate drop: stays stored
            record("gate", sequence)
            record("gate", sequence, "dropped", "expired")
        elif sequence % 7 == 0:
            record("gate", sequence, "dropped", "backpressure")
            record("gate", sequence, "failed", "processor_error")  # the first status stands
        elif sequence % 19 == 0:
            record("gate", sequence, "failed", "corrupt_frame")
        else:
            record("gate", sequence)
            record("gate", sequence)  # a redelivered store
        if sequence % 3 == 0:
            record("yard", sequence, "dropped" if sequence % 2 else "stored",
                   "backpressure" if sequence % 2 else "")  # fmt: skip
        if sequence % 50 == 0:
            record("canary", sequence, test=True)  # never in the camera figures


def test_the_rollup_counts_equal_a_count_over_the_frames() -> None:
    fill()
    by_minute = (
        Frame.objects.filter(CAMERA_FRAMES)
        .order_by()
        .values("camera_id", "captured_at__minute", "captured_at__hour")
        .annotate(
            frames=Count("frame_id"),
            stored=Count("frame_id", filter=Q(status="stored")),
            dropped=Count("frame_id", filter=Q(status="dropped")),
            failed=Count("frame_id", filter=Q(status="failed")),
        )
    )
    expected = {
        (r["camera_id"], r["captured_at__hour"], r["captured_at__minute"]): (
            r["frames"], r["stored"], r["dropped"], r["failed"]
        )
        for r in by_minute
    }  # fmt: skip
    rollup = {
        (m.camera_id, m.minute.hour, m.minute.minute): (m.frames, m.stored, m.dropped, m.failed)
        for m in CameraMinute.objects.all()
    }
    assert rollup == expected
    assert len(expected) >= 12  # two cameras over six minutes and more
    gate = CameraMinute.objects.filter(camera_id="gate")
    reasons: dict[str, int] = {}
    for minute in gate:
        for key, n in minute.reasons.items():
            reasons[key] = reasons.get(key, 0) + n
    dropped = Frame.objects.filter(camera_id="gate", status="dropped")
    assert {k: n for k, n in reasons.items() if n} == {
        "dropped:backpressure": dropped.filter(reason="backpressure").count(),
        "failed:corrupt_frame": Frame.objects.filter(reason="corrupt_frame").count(),
    }
    assert not dropped.filter(reason="expired").exists()  # every expired one got stored


@pytest.mark.parametrize(
    ("since", "until"),
    [
        (START, START + timedelta(minutes=7)),  # whole minutes: the rollup alone
        (START + timedelta(seconds=75.3), START + timedelta(seconds=301.7)),  # part-minutes
        (START + timedelta(seconds=61), START + timedelta(seconds=119)),  # within a minute
    ],
)
def test_the_overview_from_the_rollup_counts_what_the_frames_count(
    since: datetime, until: datetime
) -> None:
    fill()
    exact = overview(Frame.objects.all(), since, until)
    rolled = camera_overview(since, until)
    assert [c["camera_id"] for c in rolled] == [c["camera_id"] for c in exact] == ["gate", "yard"]
    for fast, slow in zip(rolled, exact, strict=True):
        assert {k: fast[k] for k in COUNTS} == {k: slow[k] for k in COUNTS}  # type: ignore[literal-required]
        for p in ("p50_latency_ms", "p95_latency_ms", "p99_latency_ms"):
            assert fast[p] == pytest.approx(slow[p], rel=0.06)  # type: ignore[literal-required]


def test_a_day_of_the_overview_reads_one_row_a_minute(frame_factory: FrameFactory) -> None:
    end = START + timedelta(days=1)
    for minute in range(0, 24 * 60, 7):
        frame_factory(camera_id="gate", captured_at=START + timedelta(minutes=minute, seconds=3))
    assert CameraMinute.objects.count() == len(range(0, 24 * 60, 7))
    (gate,) = camera_overview(START, end)
    assert gate["frames"] == len(range(0, 24 * 60, 7))
