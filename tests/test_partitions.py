"""The frames table's daily partitions on PostgreSQL: retention drops whole days, frames of a
day without a partition are kept, and lookups by frame id or trace id stay index scans."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from frame_tracking import FrameID
from frames import partitions
from frames.models import CameraMinute, Frame
from tests.conftest import FrameFactory

pytestmark = pytest.mark.django_db


def midnight(days_ago: int) -> datetime:
    return datetime.combine(timezone.now().date() - timedelta(days=days_ago), time(), UTC)


def fill_day(day: datetime, rows: int) -> None:
    """rows frames of one camera across one day, with planner statistics, so the plans are
    the ones a full table gets."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO frames_frame (frame_id, camera_id, sequence, captured_at, status, reason,
                stage, error, source, format, trace_id, span_id, trace_context, timings,
                results, finished_at)
            SELECT to_char(t AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS.US"Z"') || '_fill_'
                       || lpad(n::text, 12, '0') || '_0000beef',
                   'fill', n, t, 'stored', '', '', '', '', '', md5(t::text), '', '{}', '{}',
                   '{}', t
            FROM generate_series(1, %s) AS n,
                 LATERAL (SELECT %s + n * (interval '1 day' / %s) AS t) AS times
            """,
            [rows, day, rows + 1],
        )
        cursor.execute("ANALYZE frames_frame")


def plan_of(query: Any) -> str:
    return str(query.explain())


def test_retention_drops_old_days_and_lookups_on_the_rest_are_unchanged_index_scans(
    frame_factory: FrameFactory, api_client: Client, superuser: Any
) -> None:
    partitions.create_ahead(midnight(40).date(), 41)
    old = [frame_factory(camera_id="gate", captured_at=midnight(d) + timedelta(hours=1))
           for d in (40, 31)]  # fmt: skip
    kept = [frame_factory(camera_id="gate", captured_at=midnight(d) + timedelta(hours=1))
            for d in (30, 2, 0)]  # fmt: skip
    for d in (31, 30, 2, 0):
        fill_day(midnight(d), 5_000)
    before = {f.frame_id: api_client.get(f"/frames/{f.frame_id}").json() for f in kept}

    out = io.StringIO()
    call_command("frames_partitions", "--retention-days", "30", "--json", stdout=out)
    done = json.loads(out.getvalue())

    assert partitions.partition_name(midnight(40).date()) in done["dropped"]
    assert partitions.partition_name(midnight(31).date()) in done["dropped"]
    days = partitions.partition_days()
    assert days[0] == midnight(30).date()  # the day 30 days ago is whole: it stays
    assert days[-1] >= timezone.now().date() + timedelta(days=7)  # and a week ahead
    assert not Frame.objects.filter(frame_id__in=[f.frame_id for f in old]).exists()
    assert not CameraMinute.objects.filter(minute__lt=midnight(30)).exists()
    client = Client()
    client.force_login(superuser)
    for frame in kept:
        assert api_client.get(f"/frames/{frame.frame_id}").json() == before[frame.frame_id]
        listed = api_client.get("/frames", {"trace_id": frame.trace_id}).json()["frames"]
        assert [f["frame_id"] for f in listed] == [frame.frame_id]
        change = reverse("admin:frames_frame_change", args=[frame.frame_id])
        assert frame.frame_id in client.get(change).content.decode()

    # A frame id names its day: one partition, one probe of an index on (frame_id,
    # captured_at): the primary key or frame_time, whichever the planner likes.
    frame = kept[1]
    plan = plan_of(Frame.objects.with_frame_id(FrameID.parse(frame.frame_id)))
    day = partitions.partition_name(frame.captured_at.date())
    assert re.search(rf"Index Scan using {day}_(pkey|captured_at_frame_id_idx) on {day}", plan)
    assert plan.count("Scan") == 1, plan  # no other partition is read
    # A trace id names no day: each partition with rows is read through its trace id index
    # (an empty one is "scanned" by reading its zero pages).
    plan = plan_of(Frame.objects.filter(trace_id=frame.trace_id))
    scans = dict(
        (p, kind)
        for kind, p in re.findall(r"(\w+ Scan)(?: using \w+)? on (frames_frame_\w+)", plan)
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT tableoid::regclass::text FROM frames_frame")
        filled = {name for (name,) in cursor.fetchall()}
    assert day in filled and len(filled) == 3  # 30 and 2 days ago, today
    assert {scans.get(p) for p in filled} <= {"Index Scan", "Bitmap Heap Scan"}, plan


def test_a_frame_of_a_day_without_a_partition_is_kept_and_moves_into_its_partition_later(
    frame_factory: FrameFactory, api_client: Client
) -> None:
    day = midnight(-60)  # far beyond the partitions made ahead
    frame = frame_factory(camera_id="gate", captured_at=day + timedelta(hours=3))
    rollup = list(CameraMinute.objects.values_list("camera_id", "frames"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM frames_frame_default")
        assert cursor.fetchone()[0] == 1

    assert partitions.create_ahead(day.date(), 0) == [partitions.partition_name(day.date())]

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM frames_frame_default")
        assert cursor.fetchone()[0] == 0
        cursor.execute(f'SELECT frame_id FROM "{partitions.partition_name(day.date())}"')  # noqa: S608
        assert cursor.fetchall() == [(frame.frame_id,)]
    assert api_client.get(f"/frames/{frame.frame_id}").json()["frame_id"] == frame.frame_id
    assert (
        list(CameraMinute.objects.values_list("camera_id", "frames")) == rollup
    )  # moved, not added
    assert partitions.create_ahead(day.date(), 0) == []  # once only


def test_the_job_is_safe_to_run_again_and_prints_what_it_did() -> None:
    out = io.StringIO()
    call_command("frames_partitions", stdout=out)
    call_command("frames_partitions", stdout=out)
    text = out.getvalue()
    assert "partitions created: none" in text  # the second run: the migration made them all
    assert "partitions dropped: none" in text


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--retention-days", "-1", "must be at least 1"),  # would drop today's partition
        ("--retention-days", "0", "must be at least 1"),
        ("--retention-days", "99999999", "must be at most 36500"),  # before year 1
        ("--ahead", "999999999", "must be at most 366"),  # a table per day, for ever
        ("--ahead", "-3", "must be at least 0"),
    ],
)
def test_it_refuses_a_retention_or_ahead_out_of_range_and_drops_nothing(
    frame_factory: FrameFactory, option: str, value: str, message: str
) -> None:
    today = frame_factory(camera_id="gate", captured_at=timezone.now() - timedelta(minutes=1))
    days = partitions.partition_days()

    with pytest.raises(CommandError, match=f"{option}: {re.escape(value)} {message}"):
        call_command("frames_partitions", f"{option}={value}")

    assert Frame.objects.filter(frame_id=today.frame_id).exists()
    assert partitions.partition_days() == days
