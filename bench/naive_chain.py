"""The yardstick: a naive Celery chain doing detektr's per-frame work, and nothing else.

Kept in bench/ on purpose, as the thing detektr is measured against (bench/bench_side_by_side.py),
never as part of the product. Per frame:

    capture (synthetic 720p pattern, JPEG q80, SET in Redis with a TTL — the claim check)
      → buffer (STRLEN: are the bytes there?) → process (GET, decode, brightness + sharpness)
      → store (one prepared INSERT, autocommit; DEL of the bytes)

Same broker settings as detektr where they are guarantees (acks_late, prefetch 1, reject on
worker lost, JSON, no results); no tracing, no task events, no in-flight sets, no metrics,
no per-frame record beyond the row. Configured by the environment:
NAIVE_BROKER_URL (Redis, also holds the bytes), NAIVE_DATABASE_URL (PostgreSQL).

    celery -A bench.naive_chain worker -c 2          # the worker
    python bench/naive_chain.py --fps 200 --frames 4000 [--width 1280 --height 720]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from functools import cache
from typing import Any

import cv2
import numpy as np
import psycopg
import redis
from celery import Celery, chain

BROKER = os.environ.get("NAIVE_BROKER_URL", "redis://127.0.0.1:6379/14")
DATABASE = os.environ.get("NAIVE_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
TABLE = "naive_frame"
SCHEMA = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    frame_id text PRIMARY KEY, captured_at double precision NOT NULL,
    finished_at double precision NOT NULL, brightness real, sharpness real)"""

app = Celery("naive", broker=BROKER)
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_default_queue="naive",
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@cache
def bytes_store() -> redis.Redis:
    return redis.Redis.from_url(BROKER)


@cache
def database() -> psycopg.Connection[Any]:
    return psycopg.connect(DATABASE, autocommit=True, prepare_threshold=0)


@app.task(name="naive.buffer")
def buffer(key: str, captured_at: float) -> list[Any]:
    return [key, captured_at, int(bytes_store().strlen(key))]  # type: ignore[arg-type]


@app.task(name="naive.process")
def process(item: list[Any]) -> list[Any]:
    key, captured_at, _ = item
    data = bytes_store().get(key)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)  # type: ignore[arg-type]
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)  # type: ignore[arg-type]
    thumbnail = cv2.resize(grey, (160, 90), interpolation=cv2.INTER_AREA)
    return [key, captured_at, float(grey.mean()), float(cv2.Laplacian(thumbnail, cv2.CV_64F).var())]


@app.task(name="naive.store")
def store(item: list[Any]) -> None:
    key, captured_at, brightness, sharpness = item
    database().execute(
        "INSERT INTO naive_frame VALUES (%s, %s, %s, %s, %s)",
        (key, captured_at, time.time(), brightness, sharpness),
    )
    bytes_store().delete(key)


def capture(fps: float, frames: int, width: int, height: int) -> None:
    """The same synthetic pattern as detektr's synthetic:// source, paced to `fps`."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from workers.sources import SyntheticSource

    source = SyntheticSource.from_url(f"synthetic://?width={width}&height={height}&fps={fps}")
    source.open()
    r = bytes_store()
    started = time.monotonic()
    for n in range(frames):
        delay = started + n / fps - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        image = source.read()
        captured_at = time.time()
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])  # type: ignore[arg-type]
        key = f"naive:frame:{n}"
        r.set(key, encoded.tobytes(), ex=600)
        chain(buffer.s(key, captured_at), process.s(), store.s()).apply_async()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="naive chain capture")
    parser.add_argument("--fps", type=float, default=30)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    args = parser.parse_args()
    capture(args.fps, args.frames, args.width, args.height)
