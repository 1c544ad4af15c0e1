"""FrameID: a readable, sortable, globally unique id for one captured frame.

Text form (see docs/frame-id.md)::

    20261129T034500.123456Z_cam01_000000000042_9f3a1c2e
    └ UTC capture time ────┘ └cam┘ └ sequence ─┘ └nonce─┘

The time and sequence are fixed width, so comparing ids as strings compares capture times.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
import time
import weakref
from collections.abc import Callable
from datetime import UTC, datetime

MAX_SEQUENCE = 10**12 - 1

# Public so other code (the capture command) validates camera ids by the same rule.
CAMERA_ID_PATTERN = re.compile(r"[A-Za-z0-9.-]{1,64}")
# ASCII digits only: \d alone also matches Arabic-Indic and other Unicode digits.
_FRAME_ID = re.compile(r"\d{8}T\d{6}\.\d{6}Z_[A-Za-z0-9.-]{1,64}_\d{12}_[0-9a-f]{8}", re.ASCII)
# Everything after the camera id: "_" + 12-digit sequence + "_" + 8-hex nonce.
_SUFFIX_LEN = 22
_TIMESTAMP_LEN = 23


def _wall_clock_us() -> int:
    # Floor to the microsecond: rounding up could put an id ahead of the wall clock.
    return time.time_ns() // 1000


def _new_nonce() -> str:
    return secrets.token_hex(4)


def _timestamp_of(text: str) -> datetime:
    """The aware UTC datetime of an id's first 23 characters; ValueError if no such date."""
    # The regex has fixed the shape; fromisoformat (3.11+) reads this basic ISO form in C.
    return datetime.fromisoformat(text[:_TIMESTAMP_LEN])


def _check_camera_id(camera_id: object) -> str:
    if not isinstance(camera_id, str) or not CAMERA_ID_PATTERN.fullmatch(camera_id):
        raise ValueError(
            f"camera id must be 1-64 characters of [A-Za-z0-9.-], got {camera_id!r:.80}"
        )
    return camera_id


def _check_sequence(sequence: object) -> int:
    if isinstance(sequence, bool) or not isinstance(sequence, int):
        raise ValueError(f"sequence must be an int, got {sequence!r:.40}")
    if not 0 <= sequence <= MAX_SEQUENCE:
        raise ValueError(f"sequence must be between 0 and {MAX_SEQUENCE}, got {sequence}")
    return sequence


class FrameID(str):
    """A frame id; a `str`, so it sorts, hashes, compares and serialises as its text.

    Constructing one from text validates it (`FrameID(text)` is `FrameID.parse(text)`).
    """

    __slots__ = ()

    def __new__(cls, text: str) -> FrameID:
        if not isinstance(text, str):
            raise ValueError(f"a frame id must be a str, got {type(text).__name__}")
        if not _FRAME_ID.fullmatch(text):
            raise ValueError(
                "malformed frame id "
                f"{text!r:.120}: expected <YYYYmmddTHHMMSS.ffffffZ>_<camera>_<12 digits>_<8 hex>"
            )
        try:
            _timestamp_of(text)
        except ValueError as exc:
            raise ValueError(f"malformed frame id {text!r:.120}: bad timestamp ({exc})") from None
        return str.__new__(cls, text)

    @classmethod
    def parse(cls, text: str) -> FrameID:
        """Validate `text` and return it as a FrameID; ValueError saying what is wrong."""
        return cls(text)

    @classmethod
    def generate(cls, camera_id: str, sequence: int | None = None) -> FrameID:
        """A new id from this process's generator (see FrameIDGenerator.generate)."""
        return _default_generator.generate(camera_id, sequence)

    @classmethod
    def from_parts(cls, timestamp: datetime, camera_id: str, sequence: int, nonce: str) -> FrameID:
        """Format an id from its parts; `timestamp` must be aware (it is converted to UTC)."""
        if timestamp.tzinfo is None:
            raise ValueError("timestamp must be timezone-aware")
        t = timestamp.astimezone(UTC)
        # Not strftime: glibc's %Y does not zero-pad years before 1000.
        stamp = f"{t.year:04d}{t.month:02d}{t.day:02d}T{t.hour:02d}{t.minute:02d}{t.second:02d}"
        return cls(f"{stamp}.{t.microsecond:06d}Z_{camera_id}_{sequence:012d}_{nonce}")

    @property
    def timestamp(self) -> datetime:
        """Capture time: aware UTC, microsecond precision."""
        return _timestamp_of(self)

    @property
    def camera_id(self) -> str:
        return self[_TIMESTAMP_LEN + 1 : -_SUFFIX_LEN]

    @property
    def sequence(self) -> int:
        return int(self[-21:-9])

    @property
    def nonce(self) -> str:
        return self[-8:]


class FrameIDGenerator:
    """Makes FrameIDs for one process; thread-safe.

    Clock behaviour: the timestamp is the wall clock floored to the microsecond, so an id
    never claims a time later than the clock showed. It is never forced forward either: ids
    made within one microsecond share a timestamp and the per-camera sequence orders them. If
    the clock steps backwards (NTP, a VM resume), the generator holds its last timestamp until
    the clock catches up, so no id sorts before an earlier one of the same camera.
    """

    def __init__(self, clock: Callable[[], int] = _wall_clock_us, nonce: str | None = None):
        """`clock` returns epoch microseconds; a fixed `nonce` is kept across forks."""
        if nonce is not None and not re.fullmatch(r"[0-9a-f]{8}", nonce):
            raise ValueError(f"nonce must be 8 lowercase hex digits, got {nonce!r:.40}")
        self._clock = clock
        self._fixed_nonce = nonce is not None
        self.nonce = nonce or _new_nonce()
        self._lock = threading.Lock()
        self._last_us = 0
        self._next_sequence: dict[str, int] = {}  # camera id -> next automatic sequence
        self._second = -1
        self._second_text = ""  # "YYYYmmddTHHMMSS" of self._second, reused within a second
        _generators.add(self)

    def generate(self, camera_id: str, sequence: int | None = None) -> FrameID:
        """A new id for a frame of `camera_id` captured now.

        `sequence` defaults to this generator's per-camera counter (0, 1, 2, ...); a capture
        worker that counts its own frames passes its number, and the counter continues after it.
        """
        # Validate each camera id once, not per frame.
        if not isinstance(camera_id, str) or camera_id not in self._next_sequence:
            _check_camera_id(camera_id)
        if sequence is not None:
            _check_sequence(sequence)
        with self._lock:
            us = self._tick()
            if sequence is None:
                sequence = _check_sequence(self._next_sequence.get(camera_id, 0))
            self._next_sequence[camera_id] = sequence + 1
            second, micro = divmod(us, 1_000_000)
            if second != self._second:
                self._second = second
                self._second_text = time.strftime("%Y%m%dT%H%M%S", time.gmtime(second))
            text = f"{self._second_text}.{micro:06d}Z_{camera_id}_{sequence:012d}_{self.nonce}"
        return str.__new__(FrameID, text)  # built from valid parts: skip re-validation

    def _tick(self) -> int:
        # Hold the last timestamp while the clock is behind it (it stepped backwards).
        now = self._clock()
        if now > self._last_us:
            self._last_us = now
        return self._last_us

    def _after_fork(self) -> None:
        # The child must not share the parent's nonce, or both could mint the same id; the
        # lock may have been held by a parent thread that does not exist in the child.
        self._lock = threading.Lock()
        if not self._fixed_nonce:
            self.nonce = _new_nonce()


_generators: weakref.WeakSet[FrameIDGenerator] = weakref.WeakSet()


def _reseed_after_fork() -> None:
    for generator in list(_generators):
        generator._after_fork()


os.register_at_fork(after_in_child=_reseed_after_fork)
_default_generator = FrameIDGenerator()
