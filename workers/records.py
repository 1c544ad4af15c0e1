"""Final records a capture worker sends itself: frames shed at the source, frames the broker
never took, frames reaped as expired. They go in batches; what the broker cannot take waits
in memory and, past a size or at exit, in a journal file that the camera's next run sends.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import redis
from django.conf import settings
from kombu.exceptions import OperationalError as BrokerError
from opentelemetry import context as otel_context

from frame_tracking import FrameMetadata
from tasks import final_records

log = logging.getLogger(__name__)

UNAVAILABLE = (redis.RedisError, BrokerError, OSError)
BATCH = 500  # records per message
IN_MEMORY = 20_000  # beyond this many waiting records, the oldest go to the journal file


@dataclass
class FinalRecords:
    camera_id: str
    waiting: deque[FrameMetadata] = field(default_factory=deque)

    @property
    def journal(self) -> Path:
        return Path(settings.CAPTURE_JOURNAL_DIR) / f"{self.camera_id}.undelivered.jsonl"

    def add(self, meta: FrameMetadata) -> None:
        self.waiting.append(meta)
        if len(self.waiting) > IN_MEMORY:
            self.save(count=len(self.waiting) - IN_MEMORY // 2)

    def __len__(self) -> int:
        return len(self.waiting)

    def flush(self) -> None:
        """Send the waiting records, many to a message, while the broker takes them."""
        while self.waiting:
            batch = list(islice(self.waiting, BATCH))
            try:
                with detached_context():  # a trace of its own, not the current frame's
                    final_records(batch).apply_async()
            except UNAVAILABLE as exc:
                log.warning("%d final records wait for the broker: %s", len(self.waiting), exc)
                return
            for _ in batch:
                self.waiting.popleft()

    def save(self, count: int | None = None) -> None:
        """Move the oldest `count` (default: all) waiting records to the journal file."""
        count = len(self.waiting) if count is None else count
        if not count:
            return
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        with self.journal.open("a") as journal:
            for _ in range(count):
                journal.write(self.waiting.popleft().to_json() + "\n")
        log.warning("%d frame records kept in %s until the broker takes them", count, self.journal)

    def load(self) -> None:
        """Take back what an earlier run journaled; a line that does not parse is set aside
        in a .bad file instead of stopping the camera."""
        if not self.journal.exists():
            return
        bad = []
        for line in self.journal.read_text().splitlines():
            try:
                self.waiting.append(FrameMetadata.from_json(line))
            except ValueError:
                bad.append(line)
        if bad:
            rejected = self.journal.with_suffix(".bad")
            with rejected.open("a") as sink:
                sink.writelines(line + "\n" for line in bad)
            log.error("%d unreadable journal lines moved to %s", len(bad), rejected)
        self.journal.unlink()


@contextmanager
def detached_context() -> Iterator[None]:
    token = otel_context.attach(otel_context.Context())
    try:
        yield
    finally:
        otel_context.detach(token)
