"""What does storing one frame cost PostgreSQL's protocol? Records frames one at a time the way
the store stage does (Frame.record_many([meta]) on a persistent connection) and counts, from
libpq's protocol trace, the messages and bytes the client sends per frame.

    .venv/bin/python bench/bench_store.py                       # this checkout, 2,000 frames
    .venv/bin/python bench/bench_store.py --code /tmp/detektr-main   # another checkout

Uses its own database (default postgres://postgres@127.0.0.1:5432/detektr_bench_store),
created and migrated by the code under test. "Statements" are Query (simple protocol: BEGIN,
COMMIT, …) and Execute (extended protocol) messages; "round trips" are Query and Sync.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument(
        "--without-rollup", action="store_true", help="disable the rollup trigger: its cost"
    )
    parser.add_argument("--code", type=Path, default=ROOT, help="the detektr checkout to measure")
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_STORE_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/detektr_bench_store"
        ),
    )
    return parser.parse_args()


def fresh_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(code: Path, url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "detektr_project.settings")
    os.chdir(code)
    sys.path.insert(0, str(code))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def frames(count: int) -> list[Any]:
    """Finished frames as the store stage gets them: timings of every stage, results."""
    from frame_tracking import FrameID, FrameMetadata, FrameStatus, TraceContext

    start = datetime.now(tz=UTC) - timedelta(seconds=count / 30 + 5)
    metas = []
    for n in range(count):
        at = start + timedelta(seconds=n / 30)
        t = at.timestamp()
        metas.append(
            FrameMetadata(
                frame_id=FrameID.from_parts(at, "cam01", n, "0000beef"),
                timestamp=at,
                camera_id="cam01",
                sequence=n,
                status=FrameStatus.STORED,
                source="synthetic://",
                width=1280,
                height=720,
                format="jpeg",
                size_bytes=146_000,
                trace_context=TraceContext.generate(),
                timings={
                    "capture": {"started_at": t, "ended_at": t + 0.004},
                    "buffer": {
                        "queued_at": t + 0.005,
                        "started_at": t + 0.007,
                        "ended_at": t + 0.008,
                    },
                    "process": {
                        "queued_at": t + 0.009,
                        "started_at": t + 0.015,
                        "ended_at": t + 0.03,
                    },
                    "store": {"queued_at": t + 0.031, "started_at": t + 0.033},
                },
                results={
                    "quality": {"brightness": 0.52, "sharpness": 131.4, "blur": False},
                    "motion": {"score": 0.013, "reference": n - 1},
                },
            )
        )
    return metas


MESSAGE = re.compile(r"^F\s+(\d+)\s+(\w+)", re.MULTILINE)


def main() -> None:
    args = parse_args()
    fresh_database(args.database_url)
    setup_django(args.code, args.database_url)
    import psycopg
    from django.db import connection

    from frames.models import Frame

    metas = frames(args.frames)
    if args.without_rollup:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE frames_frame DISABLE TRIGGER frames_rollup")
    for meta in metas[:20]:  # warm up: connection, prepared statements, caches
        Frame.record_many([meta])
    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    spent = []
    with tempfile.TemporaryFile("w+") as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
        for meta in metas[20:]:
            began = time.perf_counter()
            Frame.record_many([meta])
            spent.append(time.perf_counter() - began)
        pgconn.untrace()
        trace.seek(0)
        messages = MESSAGE.findall(trace.read())
    n = len(metas) - 20
    kinds = Counter(kind for _, kind in messages)
    sent = sum(int(length) + 1 for length, _ in messages)
    statements = kinds["Query"] + kinds["Execute"]
    print(f"code: {args.code}  frames: {n}  rows: {Frame.objects.count()}")
    print(f"statements per frame: {statements / n:.2f}  (Query {kinds['Query'] / n:.2f}, "
          f"Execute {kinds['Execute'] / n:.2f}, Parse {kinds['Parse'] / n:.2f})")  # fmt: skip
    print(f"round trips per frame: {(kinds['Query'] + kinds['Sync']) / n:.2f}")
    print(f"bytes sent per frame: {sent / n:,.0f}")
    print(f"client messages: {dict(sorted(kinds.items()))}")
    print(f"time per frame (median, this machine): {statistics.median(spent) * 1e6:,.0f} µs")


if __name__ == "__main__":
    main()
