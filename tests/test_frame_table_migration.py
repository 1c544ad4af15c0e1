"""The frames table's migrations on a database of their own: a populated table of the previous
release converted to the partitioned one with nothing lost, and SQLite (the embedded default)
migrated and storing frames without partitions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
DAYS = [datetime(2026, 11, 20, 23, 59, 30, tzinfo=UTC) + timedelta(days=d) for d in (0, 1, 5)]


def manage(database_url: str, *args: str) -> str:
    env = {**os.environ, "DATABASE_URL": database_url}
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


Row = tuple[str, str, int, datetime, str, str, bool, float]


def old_rows() -> list[Row]:
    """Rows as the previous release wrote them: three days, two cameras, every status, a
    canary; the first day's frames straddle midnight."""
    rows: list[Row] = []
    for day in DAYS:
        for n in range(60):
            at = day + timedelta(seconds=n)
            status = "dropped" if n % 10 == 3 else "failed" if n % 20 == 7 else "stored"
            reason = {"dropped": "backpressure", "failed": "processor_error"}.get(status, "")
            for camera in ("cam01", "cam02"):
                frame_id = f"{at:%Y%m%dT%H%M%S.%f}Z_{camera}_{n:012d}_0000beef"
                rows.append((frame_id, camera, n, at, status, reason, n == 59 and camera == "cam02",
                             40.0 + n))  # fmt: skip
    return rows


def test_a_populated_table_becomes_the_partitioned_one_with_every_row(database_url: str) -> None:
    manage(database_url, "migrate", "frames", "0004")
    rows = old_rows()
    with psycopg.connect(database_url) as conn:
        conn.cursor().executemany(
            "INSERT INTO frames_frame (frame_id, camera_id, sequence, captured_at, status, "
            "reason, stage, error, source, format, trace_id, span_id, sampled, test, "
            "trace_context, timings, results, finished_at, latency_ms) VALUES (%s, %s, %s, %s, "
            "%s, %s, '', '', '', 'jpeg', md5(%s), '', true, %s, '{}', '{}', "
            '\'{"quality": {"blur": 0.5}}\', now(), %s)',
            [(f, c, n, at, s, r, f, test, lat) for f, c, n, at, s, r, test, lat in rows],
        )

    manage(database_url, "migrate")

    with psycopg.connect(database_url) as conn:
        copied = conn.execute(
            "SELECT frame_id, camera_id, sequence, captured_at, status, reason, test, latency_ms "
            "FROM frames_frame ORDER BY frame_id"
        ).fetchall()
        assert copied == sorted(rows)
        assert conn.execute(
            'SELECT count(*) FROM frames_frame WHERE results = \'{"quality": {"blur": 0.5}}\''
        ).fetchone() == (len(rows),)
        key = conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conname = 'frames_frame_pkey'"
        ).fetchone()
        assert key == ("PRIMARY KEY (frame_id, captured_at)",)
        placed: dict[str, int] = dict(
            conn.execute(
                "SELECT tableoid::regclass::text, count(*) FROM frames_frame GROUP BY 1"
            ).fetchall()
        )
        # Each old day has its partition (each minute of frames straddles a midnight).
        assert placed == {"frames_frame_p20261120": 60, "frames_frame_p20261121": 120,
                          "frames_frame_p20261122": 60, "frames_frame_p20261125": 60,
                          "frames_frame_p20261126": 60}  # fmt: skip
        rollup = conn.execute(
            "SELECT camera_id, sum(frames), sum(stored), sum(dropped), sum(failed) "
            "FROM frames_cameraminute GROUP BY 1 ORDER BY 1"
        ).fetchall()
        counted = conn.execute(
            "SELECT camera_id, count(*), count(*) FILTER (WHERE status = 'stored'), "
            "count(*) FILTER (WHERE status = 'dropped'), count(*) FILTER (WHERE status = 'failed') "
            "FROM frames_frame WHERE NOT test GROUP BY 1 ORDER BY 1"
        ).fetchall()
        assert rollup == counted
    assert "[X] 0005_partitioned_frames_and_camera_minutes" in manage(
        database_url, "showmigrations", "frames"
    )


SQLITE_SCRIPT = """
import json
from datetime import UTC, datetime, timedelta
from django.core.management import call_command
from frame_tracking import FrameID, FrameMetadata, FrameStatus, TraceContext
from frame_tracking.status import DropReason
from frames.models import Frame
from frames.report import camera_overview

now = datetime.now(tz=UTC).replace(microsecond=0)
def meta(n, at, status=FrameStatus.STORED, reason=None):
    return FrameMetadata(frame_id=FrameID.from_parts(at, "cam01", n, "0000abcd"), timestamp=at,
                         camera_id="cam01", sequence=n, status=status, reason=reason,
                         trace_context=TraceContext.generate())
old = meta(0, now - timedelta(days=40))
Frame.record_many([old])
first = Frame.record_many([meta(1, now - timedelta(seconds=9))])
again = Frame.record_many([meta(1, now - timedelta(seconds=9))])
Frame.record_many([meta(2, now - timedelta(seconds=8), FrameStatus.DROPPED, DropReason.EXPIRED)])
upgraded = Frame.record_many([meta(2, now - timedelta(seconds=8))])
call_command("frames_partitions", "--retention-days", "30")
(camera,) = camera_overview(now - timedelta(minutes=5), now)
print(json.dumps({
    "inserted": len(first.inserted), "again": len(again.inserted) + len(again.changed),
    "changed": [reason for _, reason in upgraded.changed],
    "rows": sorted(Frame.objects.values_list("sequence", "status")),
    "old_kept": Frame.objects.filter(frame_id=old.frame_id).exists(),
    "stored": camera["stored"], "frames": camera["frames"],
}))
"""


def test_sqlite_stays_the_embedded_default_without_partitions(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'detektr.sqlite3'}"
    manage(database_url, "migrate")
    out = manage(database_url, "shell", "-c", SQLITE_SCRIPT)
    result = json.loads(out.strip().splitlines()[-1])
    assert result == {
        "inserted": 1,
        "again": 0,
        "changed": ["expired"],
        "rows": [[1, "stored"], [2, "stored"]],
        "old_kept": False,  # retention deletes rows where there are no partitions to drop
        "stored": 2,
        "frames": 2,
    }
