"""The claim check: frame bytes wait in Redis under a key with a TTL; messages carry the key.

Redis also numbers each camera's frames (one atomic INCR per frame, so no two processes can
ever hand out one number twice) and holds the in-flight sets: sorted sets of frame ids scored
by capture time, so an entry whose frame was lost ages out instead of holding a slot forever.
"""

from __future__ import annotations

import time
from functools import cache
from typing import NamedTuple, TypedDict, cast

import redis
from django.conf import settings

# Redis away for a moment: stage tasks retry with backoff instead of failing the frame.
REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)


# Retries back off up to 10 s, below the broker's visibility timeout, so a waiting retry is
# never redelivered as well; 30 of them wait out a few minutes of outage.
class RetryPolicy(TypedDict):
    retry_backoff: int
    retry_backoff_max: int
    max_retries: int


RETRY_POLICY: RetryPolicy = {"retry_backoff": 1, "retry_backoff_max": 10, "max_retries": 30}

FRAME_KEY = "detektr:frame:{}"
SEQUENCE_KEY = "detektr:camera:{}:sequence"
SEQUENCE_CLAIM_KEY = "detektr:camera:{}:sequence:claim"  # "<run> <floor> <number>"
INFLIGHT_CAMERA_KEY = "detektr:inflight:{}"
INFLIGHT_TOTAL_KEY = "detektr:inflight"


@cache
def client() -> redis.Redis:
    # redis-py's pool notices a fork and reconnects, so one client per process is safe.
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)


@cache
def broker() -> redis.Redis:
    """The broker's Redis, when the broker is Redis (tasks.queues reads its queues)."""
    return redis.Redis.from_url(
        settings.CELERY_BROKER_URL, socket_timeout=5, socket_connect_timeout=5
    )


def frame_key(frame_id: str) -> str:
    return FRAME_KEY.format(frame_id)


def last_sequence(camera_id: str) -> int:
    value = client().get(SEQUENCE_KEY.format(camera_id))
    return int(value) if value else 0


# INCR, but never to a number at or below `floor`: a Redis that lost the counter (restarted
# without its data) resumes after the last number this camera is known to have used. Each
# number is also written down as claimed by this run for this floor: asked again with the same
# run and floor, the script hands out that number again instead of a new one. That is what
# happens when Redis ran the script and the answer was lost (Redis went down between the
# two): the capture never used the number, and taking a new one would leave a gap that the
# report counts as a lost frame.
NEXT_SEQUENCE = """
local floor = tonumber(ARGV[1])
local asked = ARGV[2] .. ' ' .. ARGV[1] .. ' '
local claim = redis.call('GET', KEYS[2])
if claim and string.sub(claim, 1, #asked) == asked then
    return tonumber(string.sub(claim, #asked + 1))
end
local n = redis.call('INCR', KEYS[1])
if n <= floor then
    n = floor + 1
    redis.call('SET', KEYS[1], n)
end
redis.call('SET', KEYS[2], asked .. n)
return n
"""


def next_sequence(camera_id: str, floor: int, run: str) -> int:
    """The camera's next frame number, above `floor`, atomically: one round trip (EVALSHA,
    loading the script once per connection pool). `run` names the capture run (unique per
    run, without spaces): the same run asking again with the same floor gets the same number.
    """
    script = client().register_script(NEXT_SEQUENCE)
    keys = [SEQUENCE_KEY.format(camera_id), SEQUENCE_CLAIM_KEY.format(camera_id)]
    return int(script(keys=keys, args=[floor, run]))


class InFlight(NamedTuple):
    """A camera's frames in flight, as admission reads them (frame_bytes.admission_counts).

    `camera` leaves out the camera's frames in flight for longer than FRAME_MAX_AGE_SECONDS:
    such a frame is lost (its task gone with a killed worker, to be reaped as expired) or far
    past any latency budget (buffer and process drop it as stale; store, retrying through a
    database outage, may still store it). It keeps its entry, so nothing leaves the books,
    but not one of the camera's slots: one lost task would otherwise hold a camera whose limit
    is down to a frame or two at "full" until it is reaped, and the camera would shed every
    frame for FRAME_REAP_SECONDS. Frames that old come in at most a limit's worth per
    FRAME_MAX_AGE_SECONDS, so a store that lags admits little beside them. `camera_all` is
    every frame of the camera, however old (what the ledger measures the finish rate with),
    `total` every camera's: the hard bound on what waits in the pipeline.
    """

    camera: int
    total: int
    camera_all: int


def park(frame_id: str, camera_id: str, data: bytes) -> InFlight:
    """Store a frame's bytes and mark it in flight; returns the counts after it. One round
    trip."""
    now = time.time()
    camera_key = INFLIGHT_CAMERA_KEY.format(camera_id)
    pipe = client().pipeline(transaction=False)
    pipe.set(frame_key(frame_id), data, ex=settings.FRAME_TTL_SECONDS)
    pipe.zadd(camera_key, {frame_id: now})
    pipe.zadd(INFLIGHT_TOTAL_KEY, {frame_id: now})
    # Each capture worker reaps its own camera's set (expired()); entries of a camera whose
    # worker is gone must not hold the shared total forever.
    pipe.zremrangebyscore(INFLIGHT_TOTAL_KEY, "-inf", now - 2 * settings.FRAME_REAP_SECONDS)
    _count(pipe, camera_key, now)
    *_, camera, total, camera_all = pipe.execute()
    return InFlight(int(camera), int(total), int(camera_all))


def admission_counts(camera_id: str) -> InFlight:
    """The camera's frames in flight, as park() returns them (one round trip)."""
    pipe = client().pipeline(transaction=False)
    _count(pipe, INFLIGHT_CAMERA_KEY.format(camera_id), time.time())
    camera, total, camera_all = pipe.execute()
    return InFlight(int(camera), int(total), int(camera_all))


def _count(pipe: redis.client.Pipeline, camera_key: str, now: float) -> None:
    pipe.zcount(camera_key, now - settings.FRAME_MAX_AGE_SECONDS, "+inf")
    pipe.zcard(INFLIGHT_TOTAL_KEY)
    pipe.zcard(camera_key)


def expired(camera_id: str) -> list[str]:
    """Take the camera's frames that have been in flight for FRAME_REAP_SECONDS out of the
    in-flight sets and return their ids: no stage finished them, so their task was lost."""
    key = INFLIGHT_CAMERA_KEY.format(camera_id)
    before = time.time() - settings.FRAME_REAP_SECONDS
    found = cast(list[bytes], client().zrangebyscore(key, "-inf", before))
    candidates = [frame_id.decode() for frame_id in found]
    if not candidates:
        return []
    pipe = client().pipeline(transaction=False)
    for frame_id in candidates:
        pipe.zrem(key, frame_id)
        pipe.zrem(INFLIGHT_TOTAL_KEY, frame_id)
    removed = pipe.execute()[::2]
    # Only the ones this call removed: store may have released a frame in between.
    return [frame_id for frame_id, gone in zip(candidates, removed, strict=True) if gone]


def inflight(camera_id: str) -> tuple[int, int]:
    """Every frame in flight, the camera's and all cameras', however old."""
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
