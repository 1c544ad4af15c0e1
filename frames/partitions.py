"""Daily partitions of the frames table on PostgreSQL: created ahead, dropped past retention.

frames_frame is partitioned by range of captured_at, one partition a day (UTC), named
frames_frame_pYYYYMMDD, plus a DEFAULT partition that takes the rows of any day whose
partition does not exist yet: a store never fails for want of a partition, and the next
`manage.py frames_partitions` moves such rows into their day's partition when it creates it.
Retention drops whole partitions (no DELETE of 20M rows a day). SQLite has no partitions:
retention there deletes rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection, transaction

from frames.models import CameraMinute, Frame

PREFIX = "frames_frame_p"
DEFAULT_PARTITION = "frames_frame_default"


@dataclass
class Maintenance:
    """What one run of the partition job did."""

    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    deleted_rows: int = 0  # rows older than the cutoff outside the dropped partitions
    cutoff: datetime | None = None


def partitioned() -> bool:
    return connection.vendor == "postgresql"


def partition_name(day: date) -> str:
    return f"{PREFIX}{day:%Y%m%d}"


def partition_days() -> list[date]:
    """The days that have a partition, oldest first."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [Frame._meta.db_table],
        )
        names = [name for (name,) in cursor.fetchall() if name.startswith(PREFIX)]
    return sorted(date.fromisoformat(name[len(PREFIX) :]) for name in names)  # YYYYMMDD


def create_ahead(today: date, days_ahead: int) -> list[str]:
    """Partitions for today and the next days_ahead days, where missing."""
    created = []
    for offset in range(days_ahead + 1):
        day = today + timedelta(days=offset)
        with connection.cursor() as cursor:
            cursor.execute("SELECT frames_create_partition(%s)", [day])
            (made,) = cursor.fetchone()
        if made:
            created.append(partition_name(day))
    return created


def drop_expired(cutoff: datetime) -> tuple[list[str], int]:
    """Drop every partition wholly before cutoff (a day boundary), the DEFAULT partition's
    rows before it, and the rollup minutes before it: the rollup keeps counting exactly the
    frames that are left."""
    dropped = []
    with transaction.atomic():
        for day in partition_days():
            if datetime.combine(day + timedelta(days=1), time(), UTC) <= cutoff:
                with connection.cursor() as cursor:
                    cursor.execute(f'DROP TABLE "{partition_name(day)}"')
                dropped.append(partition_name(day))
        with connection.cursor() as cursor:
            cursor.execute(
                f'DELETE FROM "{DEFAULT_PARTITION}" WHERE captured_at < %s',  # noqa: S608
                [cutoff],
            )
            deleted = cursor.rowcount
        CameraMinute.objects.filter(minute__lt=cutoff).delete()
    return dropped, deleted


def maintain(now: datetime, retention_days: int, days_ahead: int) -> Maintenance:
    """The scheduled job: partitions ahead, then frames older than retention_days gone (from
    the start of the day retention_days ago: whole days, so whole partitions)."""
    today = now.astimezone(UTC).date()
    cutoff = datetime.combine(today - timedelta(days=retention_days), time(), UTC)
    if not partitioned():
        deleted, _ = Frame.objects.filter(captured_at__lt=cutoff).delete()
        return Maintenance(deleted_rows=deleted, cutoff=cutoff)
    created = create_ahead(today, days_ahead)
    dropped, deleted = drop_expired(cutoff)
    return Maintenance(created, dropped, deleted, cutoff)
