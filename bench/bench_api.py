"""How fast are the /frames lookups on a big table? Loads frames into PostgreSQL, then times
GET /frames?frame_id=… and GET /frames?trace_id=… through the Django test client, and
measures what a frame row costs on disk.

    .venv/bin/python bench/bench_api.py                 # 1,000,000 frames over 30 days
    .venv/bin/python bench/bench_api.py --rows 100000 --days 3 --requests 200

Uses its own database (default postgres://postgres@127.0.0.1:5432/detektr_bench), created and
migrated here; the rows, spread evenly over --days daily partitions ending now, are loaded
with COPY (through the rollup trigger, as the store writes them) and kept, so a second run
with the same --rows skips the load. Target: p95 <= 10 ms for both lookups.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
CAMERAS = [f"cam{n:02d}" for n in range(8)]
FPS = 30
TOKEN = "bench-token-3c9a0e5d7f1b2468ace0"
COLUMNS = (
    "frame_id, camera_id, sequence, captured_at, status, reason, stage, error, source, width, "
    "height, format, size_bytes, trace_id, span_id, trace_context, timings, results, "
    "finished_at, latency_ms"
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30, help="daily partitions the rows span")
    parser.add_argument("--reload", action="store_true", help="load even if already there")
    parser.add_argument("--requests", type=int, default=500, help="timed requests per lookup")
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/detektr_bench"
        ),
    )
    return parser.parse_args()


def create_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "detektr_project.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def frame_lines(count: int, start: datetime, step: float = 1 / FPS) -> Iterator[str]:
    """count frames from len(CAMERAS) cameras, one every `step` seconds each, oldest first,
    as COPY text lines.

    Preformatted text, not copy.write_row: adapting 20 values per row in Python took longer
    than PostgreSQL took to store them. Nothing here contains a tab, newline or backslash.
    """
    rng = random.Random(42)
    t0 = start.timestamp()
    results = json.dumps({"quality": {"blur": 0.1}})
    for n in range(count):
        sequence, camera = divmod(n, len(CAMERAS))
        at = t0 + sequence * step + camera * 0.001
        captured_at = datetime.fromtimestamp(at, tz=UTC)
        frame_id = f"{captured_at:%Y%m%dT%H%M%S.%f}Z_{CAMERAS[camera]}_{sequence:012d}_0000beef"
        trace_id, span_id = f"{rng.getrandbits(128):032x}", f"{rng.getrandbits(64):016x}"
        dropped = n % 50 == 0
        context = (
            f'{{"trace_id": "{trace_id}", "span_id": "{span_id}", '
            f'"trace_flags": 1, "tracestate": ""}}'
        )
        timings = (
            f'{{"capture": {{"started_at": {at}, "ended_at": {at + 0.004}}}, '
            f'"buffer": {{"queued_at": {at + 0.005}, "started_at": {at + 0.007}, '
            f'"ended_at": {at + 0.008}}}, '
            f'"process": {{"queued_at": {at + 0.009}, "started_at": {at + 0.015}, '
            f'"ended_at": {at + 0.03}}}, '
            f'"store": {{"queued_at": {at + 0.031}, "started_at": {at + 0.033}, '
            f'"ended_at": {at + 0.036}}}}}'
        )
        finished_at = captured_at + timedelta(milliseconds=40)
        yield (
            "\t".join(
                (
                    frame_id,
                    CAMERAS[camera],
                    str(sequence),
                    captured_at.isoformat(),
                    "dropped" if dropped else "stored",
                    "backpressure" if dropped else "",
                    "buffer" if dropped else "",
                    "",
                    "synthetic://",
                    "1280",
                    "720",
                    "jpeg",
                    "146000",
                    trace_id,
                    span_id,
                    context,
                    timings,
                    results,
                    finished_at.isoformat(),
                    "40.0",
                )
            )
            + "\n"
        )


def load(count: int, days: int, reload: bool) -> None:
    from django.db import connection

    from frame_tracking.identity import FrameID
    from frames import partitions

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM frames_frame")
        if cursor.fetchone()[0] == count and not reload:
            print(f"{count:,} frames already loaded")
            return
        cursor.execute("TRUNCATE frames_frame, frames_cameraminute")
    now = datetime.now(tz=UTC)
    # The rows end a minute ago and start at midnight (UTC) `days - 1` days before: one
    # partition a day, every one of them filled.
    start = datetime.combine(now.date() - timedelta(days=days - 1), datetime.min.time(), UTC)
    step = (now - timedelta(minutes=1) - start).total_seconds() / (count / len(CAMERAS))
    partitions.create_ahead(start.date(), days)
    FrameID.parse(next(frame_lines(1, start)).split("\t")[0])  # the bench's ids are real ids
    began = time.perf_counter()
    with without_secondary_indexes():
        copy_frames(count, start, step)
        print(f"COPY {count:,} frames: {time.perf_counter() - began:.1f} s")
        began = time.perf_counter()
    print(f"CREATE INDEX (secondary indexes, after the load): {time.perf_counter() - began:.1f} s")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE frames_frame")


@contextmanager
def without_secondary_indexes() -> Iterator[None]:
    """Building an index once after the load is faster than updating it 1M times."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'frames_frame' "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)"
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
    try:
        yield
    finally:  # a failed load must not leave the bench database without its indexes
        with connection.cursor() as cursor:
            for _, definition in indexes:
                # A partitioned table's index reads "ON ONLY": it would cover no partition.
                cursor.execute(definition.replace(" ON ONLY ", " ON "))


def copy_frames(count: int, start: datetime, step: float) -> None:
    from django.db import connection

    raw = connection.connection  # psycopg 3: COPY FROM STDIN
    with raw.cursor() as cursor, cursor.copy(f"COPY frames_frame ({COLUMNS}) FROM STDIN") as copy:
        batch: list[str] = []
        for line in frame_lines(count, start, step):
            batch.append(line)
            if len(batch) == 10_000:
                copy.write("".join(batch))
                batch.clear()
        copy.write("".join(batch))
    raw.commit()


def sample(requests: int) -> list[tuple[str, str]]:
    """Random frames from the whole table, every partition."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.7)")
        cursor.execute(
            "SELECT frame_id, trace_id FROM frames_frame ORDER BY random() LIMIT %s", [requests]
        )
        return [(frame_id, trace_id) for frame_id, trace_id in cursor.fetchall()]


def storage(rows: int) -> None:
    """Bytes on disk per frame row, with its indexes (TOAST included), and per camera-day."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), sum(pg_total_relation_size(inhrelid)), "
            "sum(pg_relation_size(inhrelid)) FROM pg_inherits "
            "WHERE inhparent = 'frames_frame'::regclass"
        )
        partitions, total, heap = cursor.fetchone()
        cursor.execute("SELECT pg_total_relation_size('frames_cameraminute'), count(*) "
                       "FROM frames_cameraminute")  # fmt: skip
        rollup, minutes = cursor.fetchone()
    per_row = total / rows
    day = FPS * 86_400
    print(f"storage: {partitions} partitions, {total / 2**20:,.0f} MiB for {rows:,} rows "
          f"(heap {heap / 2**20:,.0f} MiB): {per_row:,.0f} bytes a frame row with its "
          f"indexes, {heap / rows:,.0f} without")  # fmt: skip
    print(f"  a camera-day at {FPS} fps ({day:,} rows): {per_row * day / 2**30:.2f} GiB; "
          f"rollup {rollup / max(minutes, 1):,.0f} bytes a camera-minute "
          f"({rollup / max(minutes, 1) * 1440 / 2**20:.2f} MiB a camera-day)")  # fmt: skip


def explain_lookups(frame_id: str, trace_id: str) -> None:
    """The plans of the two lookups: one partition's primary key for a frame id, each
    partition's trace id index for a trace id."""
    from frame_tracking.identity import FrameID
    from frames.models import Frame

    for name, query in (
        ("frame_id", Frame.objects.matching(frame_id=FrameID.parse(frame_id))),
        ("trace_id", Frame.objects.matching(trace_id=trace_id)),
    ):
        plan = query.newest_first()[:101].explain()
        scans = [line.strip(" ->") for line in plan.splitlines() if "Scan" in line]
        index = [scan for scan in scans if "Index Scan" in scan or "Bitmap Heap" in scan]
        # A partition with no pages is "scanned" by reading nothing.
        empty = [scan for scan in scans if "Seq Scan" in scan and "cost=0.00..0.00" in scan]
        others = len(scans) - len(index) - len(empty)
        example = index[0].split("  (")[0] if index else plan
        print(f"EXPLAIN ?{name}=: {len(index)} index scans, {len(empty)} empty partitions, "
              f"{others} other scans; e.g. {example}")  # fmt: skip


def percentiles(timings: list[float]) -> str:
    ms = sorted(t * 1000 for t in timings)
    p50 = statistics.median(ms)
    p95 = ms[max(int(len(ms) * 0.95) - 1, 0)]
    return f"p50 {p50:6.2f} ms   p95 {p95:6.2f} ms   max {ms[-1]:6.2f} ms   (n={len(ms)})"


def timed(get: Callable[[str], int], urls: list[str]) -> list[float]:
    for url in urls[:20]:  # warm up: connection, URL resolver, template-free JSON path
        get(url)
    spent = []
    for url in urls:
        began = time.perf_counter()
        status = get(url)
        spent.append(time.perf_counter() - began)
        assert status == 200, (url, status)
    return spent


def main() -> None:
    args = parse_args()
    create_database(args.database_url)
    setup_django(args.database_url)
    load(args.rows, args.days, args.reload)
    storage(args.rows)

    from django.test import Client
    from django.test.utils import override_settings

    frames = sample(args.requests)
    explain_lookups(*frames[0])
    client = Client(headers={"Authorization": f"Bearer {TOKEN}"})

    def get(url: str) -> int:
        return client.get(url).status_code

    cases = {
        "GET /frames?frame_id=": [f"/frames?frame_id={f}" for f, _ in frames],
        "GET /frames?trace_id=": [f"/frames?trace_id={t}" for _, t in frames],
        "GET /frames/<frame_id>": [f"/frames/{f}" for f, _ in frames],
        "GET /frames?camera=&limit=100": [f"/frames?camera={c}&limit=100" for c in CAMERAS] * 10,
    }
    print(f"{args.rows:,} frames in PostgreSQL; Django test client, in process")
    # The API's rate limit (600 calls a minute) would answer 429 long before the bench ends.
    with override_settings(DETEKTR_API_TOKENS=[TOKEN], API_RATE_LIMIT=0):
        for name, urls in cases.items():
            print(f"{name:32s} {percentiles(timed(get, urls))}")


if __name__ == "__main__":
    main()
