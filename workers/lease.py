"""One capture process per camera, enforced by a lease in Redis.

Two processes capturing one camera (a restart that overlaps, a scaled service, a second host)
would interleave two runs' frames under one camera id. The first process takes the camera's
lease (redis-py's Lock: SET NX with an expiry, renewed and released only by the token that
took it) and renews it from a thread while it captures; a second process finds it taken and
refuses to start, naming who holds it. A holder that dies stops renewing, and the lease lapses
after LEASE_SECONDS — at once when the holder was on this host and its pid is gone.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import cast

import redis
from redis.exceptions import LockError

log = logging.getLogger(__name__)

LEASE_KEY = "detektr:camera:{}:lease"
LEASE_SECONDS = 10.0  # a holder that stops renewing loses the camera after this long


@dataclass(frozen=True)
class Holder:
    """Who holds a camera: the lease's token, readable by the process that finds it taken."""

    host: str
    pid: int
    since: str  # ISO-8601 UTC

    @classmethod
    def me(cls) -> Holder:
        since = datetime.now(UTC).isoformat(timespec="seconds")
        return cls(host=socket.gethostname(), pid=os.getpid(), since=since)

    @classmethod
    def from_token(cls, token: bytes) -> Holder:
        try:
            return cls(**json.loads(token))
        except (ValueError, TypeError):  # not ours: someone else's key under this name
            return cls(host="?", pid=0, since=token.decode(errors="replace")[:80])

    def token(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def is_gone(self) -> bool:
        """On this host and no longer running (or it is this very pid: a restart in a
        container that reuses pid numbers), so its lease is stale."""
        if self.host != socket.gethostname():
            return False
        if self.pid == os.getpid():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, another user's
            return False
        return False

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host} since {self.since}"


class CameraBusy(Exception):
    def __init__(self, camera_id: str, holder: Holder) -> None:
        super().__init__(
            f"camera {camera_id} is already being captured by {holder}; a second capture "
            f"would mix two runs' frames under one camera. Stop that process first (if it "
            f"died, its lease lapses within {LEASE_SECONDS:g}s)."
        )
        self.holder = holder


class CameraLease:
    """The lease on one camera; `acquire()` it, `keep()` it renewed, `release()` it."""

    def __init__(self, client: redis.Redis, camera_id: str, seconds: float = LEASE_SECONDS):
        self.client, self.camera_id, self.seconds = client, camera_id, seconds
        self.holder = Holder.me()
        # thread_local=False: the renewing thread must see the token the main thread took.
        self.lock = client.lock(LEASE_KEY.format(camera_id), timeout=seconds, thread_local=False)
        self.lost = threading.Event()
        self._stop = threading.Event()

    def acquire(self) -> None:
        """Take the camera, or raise CameraBusy naming its holder."""
        if self._take():
            return
        held = self._held()
        if held is None and self._take():  # it lapsed in between
            return
        token = held or self._held() or b""
        holder = Holder.from_token(token)
        if holder.is_gone() and self._take_over(token):
            log.warning("camera %s: took over the lease of %s (gone)", self.camera_id, holder)
            return
        raise CameraBusy(self.camera_id, holder)

    def renew(self) -> bool:
        """Extend the lease; False when another process has it now. Redis errors propagate."""
        try:
            self.lock.reacquire()
            return True
        except LockError:
            # Gone while Redis could not be reached, or Redis lost its data: take it back
            # unless someone else did.
            return self._take()

    def keep(self, on_lost: threading.Event) -> threading.Thread:
        """Renew from a thread every third of the lease; set `on_lost` if it is lost."""

        def renew_until_released() -> None:
            while not self._stop.wait(self.seconds / 3):
                try:
                    if not self.renew():
                        holder = Holder.from_token(self._held() or b"?")
                        log.error("camera %s: lost its lease to %s", self.camera_id, holder)
                        self.lost.set()
                        on_lost.set()
                        return
                except redis.RedisError as exc:
                    log.warning("camera %s: cannot renew its lease: %s", self.camera_id, exc)

        thread = threading.Thread(target=renew_until_released, name="camera-lease", daemon=True)
        thread.start()
        return thread

    def release(self) -> None:
        self._stop.set()
        try:
            self.lock.release()
        except (LockError, redis.RedisError):  # already lost or lapsed: nothing to give back
            pass

    def _held(self) -> bytes | None:
        """The current holder's token, None when nobody holds the camera."""
        return cast(bytes | None, self.client.get(self.lock.name))

    def _take(self) -> bool:
        return bool(self.lock.acquire(blocking=False, token=self.holder.token()))

    def _take_over(self, stale_token: bytes) -> bool:
        """Remove a dead holder's lease (only if it is still that one), then take it."""
        stale = self.client.lock(self.lock.name, timeout=self.seconds, thread_local=False)
        stale.local.token = stale_token
        try:
            stale.release()
        except LockError:
            return False
        return self._take()
