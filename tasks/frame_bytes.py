"""The claim check: frame bytes wait in Redis under a key with a TTL; messages carry the key.

Redis also holds each camera's last sequence number and the in-flight sets: sorted sets of
frame ids scored by capture time, so an entry whose frame was lost ages out instead of
holding a slot forever.
"""

from __future__ import annotations

import time
from functools import cache

import redis
from django.conf import settings

FRAME_KEY = "detektr:frame:{}"
SEQUENCE_KEY = "detektr:camera:{}:sequence"
INFLIGHT_CAMERA_KEY = "detektr:inflight:{}"
INFLIGHT_TOTAL_KEY = "detektr:inflight"


@cache
def client() -> redis.Redis:
    # redis-py's pool notices a fork and reconnects, so one client per process is safe.
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)


def frame_key(frame_id: str) -> str:
    return FRAME_KEY.format(frame_id)


def last_sequence(camera_id: str) -> int:
    value = client().get(SEQUENCE_KEY.format(camera_id))
    return int(value) if value else 0


def park(frame_id: str, camera_id: str, sequence: int, data: bytes | None) -> tuple[int, int]:
    """Store a frame's bytes and mark it in flight; returns the in-flight counts after it.

    One round trip. `data` is None for a frame shed at the source: it advances the
    sequence but has no bytes to keep and takes no in-flight slot.
    """
    now = time.time()
    stale_before = now - settings.FRAME_MAX_AGE_SECONDS * 2
    pipe = client().pipeline(transaction=False)
    pipe.set(SEQUENCE_KEY.format(camera_id), sequence)
    for key in (INFLIGHT_CAMERA_KEY.format(camera_id), INFLIGHT_TOTAL_KEY):
        if data is not None:
            pipe.zadd(key, {frame_id: now})
        pipe.zremrangebyscore(key, "-inf", stale_before)
        pipe.zcard(key)
    if data is not None:
        pipe.set(frame_key(frame_id), data, ex=settings.FRAME_TTL_SECONDS)
    replies = pipe.execute()
    per_camera = replies[3 if data is not None else 2]
    total = replies[6 if data is not None else 4]
    return int(per_camera), int(total)


def inflight(camera_id: str) -> tuple[int, int]:
    pipe = client().pipeline(transaction=False)
    pipe.zcard(INFLIGHT_CAMERA_KEY.format(camera_id))
    pipe.zcard(INFLIGHT_TOTAL_KEY)
    camera, total = pipe.execute()
    return int(camera), int(total)


def frame_size(frame_id: str) -> int:
    """Bytes parked for the frame; 0 when they are gone (expired or never written)."""
    return int(client().strlen(frame_key(frame_id)))


def load(frame_id: str) -> bytes | None:
    data = client().get(frame_key(frame_id))
    return bytes(data) if data is not None else None  # type: ignore[arg-type]


def release(frame_id: str, camera_id: str, *, keep_bytes: bool) -> None:
    """The frame reached its final status: free its in-flight slot (and its bytes)."""
    pipe = client().pipeline(transaction=False)
    pipe.zrem(INFLIGHT_CAMERA_KEY.format(camera_id), frame_id)
    pipe.zrem(INFLIGHT_TOTAL_KEY, frame_id)
    if not keep_bytes:
        pipe.delete(frame_key(frame_id))
    pipe.execute()
