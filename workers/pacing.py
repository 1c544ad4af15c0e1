"""Keeping a capture to its rate.

A paced source (a file, synthetic://) hands over a frame whenever asked: the worker waits for
each frame's slot on a schedule. A live source (a camera) delivers at its own rate: with
--fps the worker keeps at most that many of its frames a second, by a token bucket that holds
a quarter of a second's worth of slack, so a camera delivering at exactly the asked rate —
each frame a little early or late — loses none of them, while a faster one is thinned out.
The bucket runs on the stream's own clock where it has one (RTSP): FFmpeg hands over a burst
of frames it buffered while opening the stream, made at the camera's rate all the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# How far ahead of its slot a live frame may come and still be kept.
JITTER_SECONDS = 0.25


@dataclass
class Schedule:
    """Slots `period` apart for a paced source."""

    period: float
    next_due: float | None = None

    def wait(self, now: float) -> float:
        """Seconds to wait before the frame read at `now` is due; books the next slot."""
        due = now if self.next_due is None else self.next_due
        # From the previous slot, so rounding never accumulates; after a stall, from now,
        # instead of bursting to catch up.
        self.next_due = max(due + self.period, now - self.period)
        return max(0.0, due - now)


@dataclass
class RateLimit:
    """At most `fps` frames a second over any stretch, with JITTER_SECONDS of slack."""

    fps: float
    burst: float = field(init=False)
    tokens: float = field(init=False)
    last: float | None = None

    def __post_init__(self) -> None:
        self.burst = 1 + JITTER_SECONDS * self.fps
        self.tokens = self.burst

    def keep(self, now: float) -> bool:
        """Whether to keep the frame that arrived at `now`."""
        if self.last is not None:
            # A stream reopened restarts its clock: no refill, no penalty.
            elapsed = max(0.0, now - self.last)
            self.tokens = min(self.burst, self.tokens + elapsed * self.fps)
        self.last = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
