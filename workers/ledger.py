"""The capture side's ledger: what a capture worker keeps so that every frame it numbered
ends as exactly one row, whatever happens to the pipeline, Redis or the broker after it.

- Backpressure: shed at the source while the frames in flight sit between the high- and
  low-water marks of the camera's limit (hysteresis, so shedding does not flap). The limit
  follows the latency budget (Admission): each second it becomes the camera's fair share of
  the frames the pipeline finishes within the budget.
- Final records the worker writes itself — frames shed at the source, frames the broker
  never took, frames reaped as expired — go into a journal on disk first, then to the store
  queue in batches; a segment of the journal is deleted only once the broker has taken it.
- Reaping: a frame still in flight FRAME_REAP_SECONDS after capture lost its task.
- Draining: a run that ends waits for its frames in flight to reach an end.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO, cast

import redis
from django.conf import settings
from kombu.exceptions import OperationalError as BrokerError
from opentelemetry import context as otel_context

from frame_tracking import DropReason, FrameID, FrameMetadata, Stage
from frame_tracking.metrics import INFLIGHT_FRAMES, INFLIGHT_LIMIT, INFLIGHT_UTILISATION
from tasks import final_records, frame_bytes
from tasks.frame_bytes import InFlight

log = logging.getLogger(__name__)

# Redis or the broker away: the worker keeps going and keeps the records.
UNAVAILABLE = (redis.RedisError, BrokerError, OSError)
# Seconds between sending batches of final records and looking for expired frames.
HOUSEKEEPING_INTERVAL = 1.0
BATCH = 500  # records per message and per journal segment
# Journal segments sent per housekeeping round: a backlog goes out at up to 2,000 records a
# second without holding up the camera for long.
SEGMENTS_PER_FLUSH = 4


@dataclass
class CaptureStats:
    """What one run did; `capture --json` prints it, and the demo and the tests read that."""

    camera: str
    captured: int = 0
    published: int = 0
    shed: int = 0
    undelivered: int = 0  # recorded as broker_unavailable
    reconnects: int = 0
    expired: int = 0  # in flight past FRAME_REAP_SECONDS: recorded as dropped, "expired"
    skipped: int = 0  # live frames left out to keep to --fps; never given a FrameID
    unnumbered: int = 0  # read while Redis could not number them; never given a FrameID
    first_sequence: int | None = None  # the run's frames, when it captured any
    last_sequence: int | None = None
    inflight_limit: int | None = None  # the camera's in-flight limit at the end of the run


@dataclass
class Backoff:
    """Delays that double from `first` up to `longest`: reconnecting, waiting for Redis."""

    longest: float
    first: float = 0.5
    delay: float = 0.0

    def next(self) -> float:
        self.delay = min(self.delay * 2, self.longest) if self.delay else self.first
        return self.delay


@dataclass
class Outage:
    """After a failure, do not try again for a moment: each try can block for a second."""

    seconds: float = 1.0
    until: float = 0.0

    def active(self) -> bool:
        return time.monotonic() < self.until

    def began(self) -> None:
        self.until = time.monotonic() + self.seconds


# Admission: how many frames a camera may have in flight.
# Each camera's capture worker measures, every interval, the frames offered to it (captured),
# the frames that left its in-flight set (finished downstream) and its mean count in flight,
# and publishes them in one Redis hash; all cameras read the same hash and apply the same rule.
ADMISSION_KEY = "detektr:admission"
ADMISSION_INTERVAL = 1.0  # seconds between adjustments: ~100 completions at this machine's rate
# Frames every camera may keep in flight whatever the measurements say: a camera that was
# shed down still finishes frames that measure the rate. One each: with 4 cameras on a
# pipeline finishing 40 frames/s the floor alone is already 100 ms in flight.
ADMISSION_FLOOR = 1
# Where a camera starts before anything is measured: what a 30 fps camera needs for a
# 100 ms budget, and one more. A start into overload queues at most this per camera before
# the first adjustment; a camera that keeps up grows past it when it needs to.
ADMISSION_START = 4
# A camera's published load older than this is a camera that stopped.
ADMISSION_STALE = 5 * ADMISSION_INTERVAL
ADMISSION_KEEP = 3600  # seconds the hash outlives its last writer (the report shows it)


@dataclass(frozen=True)
class CameraLoad:
    """One camera's last interval, as it publishes it for the others (rates in frames/s)."""

    offered: float  # frames that reached admission: sent down the pipeline or shed
    finished: float  # frames that left the in-flight set: stored, dropped or failed downstream
    in_flight: float  # mean frames in flight
    limit: int
    at: float = 0.0  # Unix time of the measurement

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> CameraLoad:
        return cls(**json.loads(text))


def fair_shares(total: float, demands: dict[str, float]) -> dict[str, float]:
    """Max-min fair split of `total`: a camera that wants less than an equal share gets what
    it wants, the others split the rest equally."""
    shares: dict[str, float] = {}
    left, waiting = total, sorted(demands, key=lambda camera: demands[camera])
    while waiting:
        equal = left / len(waiting)
        camera = waiting[0]
        if demands[camera] > equal:
            shares.update((camera, equal) for camera in waiting)
            break
        shares[camera] = demands[camera]
        left -= demands[camera]
        waiting.pop(0)
    return shares


@dataclass
class Admission:
    """The camera's in-flight limit, from the latency budget and the measured service rate.

    In the spirit of adaptive concurrency limits (Netflix's concurrency-limits, Envoy's
    adaptive concurrency), with Little's law as the gradient: frames in flight = finish rate
    x time in flight. All cameras share one pipeline, so over all cameras the mean time in
    flight is W = (frames in flight) / (frames finished per second), and the pipeline can hold
    `budget x finish rate` frames in flight and still finish them within the budget. That
    total is split max-min fairly by what each camera offers (offered rate x budget). Then:

    - over the budget (W > budget): the limit drops to the camera's share at once;
    - within it and shedding: the limit grows toward the share, at most doubling per interval
      (the measured rate is only what the present limit let through), and past it by one
      frame an interval while frames spend under half the budget in flight: when the pipeline
      keeps up, the finish rate is the offered rate and says nothing of its capacity, so the
      limit probes (additive increase, as in AIMD) where there is clearly room; over half the
      budget, while the cameras want more than there is, a limit above its share comes back
      to it by one frame an interval, so no camera keeps what it found by probing;
    - within it and not shedding: the limit stays: a camera that keeps up needs no other.

    Shedding happens between 80 % and 60 % of the limit (high- and low-water marks), so the
    mean in flight sits below the limit and kept frames arrive within the budget with room
    for the spread up to p95. The limit stays between ADMISSION_FLOOR and the hard ceilings.
    """

    budget: float  # seconds; 0: adaptation off, the ceiling is the limit
    ceiling: int
    limit: int = 0

    def __post_init__(self) -> None:
        start = ADMISSION_START if self.budget else self.ceiling
        self.limit = self.limit or max(ADMISSION_FLOOR, min(start, self.ceiling))

    @classmethod
    def from_settings(cls) -> Admission:
        ceiling = min(settings.FRAME_INFLIGHT_PER_CAMERA, settings.FRAME_INFLIGHT_TOTAL)
        return cls(settings.FRAME_LATENCY_BUDGET_MS / 1000, ceiling)

    def adjust(self, camera: str, loads: dict[str, CameraLoad], shedding: bool) -> int:
        """The new limit from every camera's last interval (this one's included)."""
        in_flight = sum(load.in_flight for load in loads.values())
        if not self.budget or not in_flight:
            return self.limit  # off, or nothing in flight: nothing was measured
        finished = sum(load.finished for load in loads.values())
        latency = in_flight / finished if finished else math.inf  # Little's law
        room = min(self.budget * finished, settings.FRAME_INFLIGHT_TOTAL)
        demands = {name: load.offered * self.budget for name, load in loads.items()}
        share = fair_shares(room, demands).get(camera, 0.0)
        if latency > self.budget:
            wanted = share
        elif shedding and latency > self.budget / 2 and sum(demands.values()) > room:
            # Not quick, and the cameras want more than there is: one that probed past its
            # share gives it back, a frame an interval, or it keeps it while the others are
            # shed more than it is.
            wanted = (
                min(share, 2 * self.limit) if self.limit < share else max(share, self.limit - 1)
            )
        elif shedding:
            probe = self.limit + 1 if latency <= self.budget / 2 else self.limit
            wanted = max(min(share, 2 * self.limit), probe)
        else:
            wanted = self.limit
        self.limit = max(ADMISSION_FLOOR, min(round(wanted), self.ceiling))
        return self.limit


@dataclass
class Interval:
    """What the camera saw since the last adjustment; the in-flight counts come with every
    park and every shed, so measuring costs no round trip."""

    started: float  # time.monotonic()
    published: int  # the run's counts when the interval began
    expired: int
    in_flight: int  # the camera's count when it began
    captured: int
    samples: int = 0
    sum_in_flight: int = 0
    last_in_flight: int = 0
    shed: bool = False

    def sample(self, found: int, in_flight: int) -> None:
        """A frame came and `found` of the camera's frames in flight (itself not counted);
        `in_flight` are there now. Counts found by arrivals average to the time average that
        Little's law needs; counting the frame itself would add a whole frame to each."""
        self.samples += 1
        self.sum_in_flight += found
        self.last_in_flight = in_flight

    def load(self, stats: CaptureStats, now: float, limit: int) -> CameraLoad:
        seconds = max(now - self.started, 1e-3)
        left = (
            stats.published - self.published + self.in_flight - self.last_in_flight
            - (stats.expired - self.expired)  # reaped: gone from the set, but not finished
        )  # fmt: skip
        mean = self.sum_in_flight / self.samples if self.samples else float(self.last_in_flight)
        return CameraLoad(
            offered=(stats.captured - self.captured) / seconds,
            finished=max(left, 0) / seconds,
            in_flight=mean,
            limit=limit,
            at=time.time(),
        )

    @classmethod
    def starting(cls, stats: CaptureStats, now: float, in_flight: int) -> Interval:
        return cls(now, stats.published, stats.expired, in_flight, stats.captured,
                   last_in_flight=in_flight)  # fmt: skip


def exchange(camera: str, load: CameraLoad) -> dict[str, CameraLoad]:
    """Publish this camera's load and read every camera's that is still current (one round
    trip a second per camera)."""
    client = frame_bytes.client()
    pipe = client.pipeline(transaction=False)
    pipe.hset(ADMISSION_KEY, camera, load.to_json())
    pipe.expire(ADMISSION_KEY, ADMISSION_KEEP)
    pipe.hgetall(ADMISSION_KEY)
    *_, published = pipe.execute()
    loads: dict[str, CameraLoad] = {}
    for name, text in published.items():
        try:
            other = CameraLoad.from_json(text)
        except (ValueError, TypeError):
            continue
        if load.at - other.at <= ADMISSION_STALE:
            loads[name.decode()] = other
    loads[camera] = load
    return loads


def published_limits() -> dict[str, CameraLoad]:
    """Every camera's last published load, current or not: the report shows the limits."""
    published = cast(dict[bytes, bytes], frame_bytes.client().hgetall(ADMISSION_KEY))
    loads: dict[str, CameraLoad] = {}
    for name, text in published.items():
        try:
            loads[name.decode()] = CameraLoad.from_json(text)
        except (ValueError, TypeError):
            continue
    return loads


@dataclass
class Backpressure:
    """Hysteresis between the high- and low-water marks of the in-flight limit."""

    admission: Admission = field(default_factory=Admission.from_settings)
    shedding: bool = False
    utilisation: float = 0.0
    counts: tuple[int, int] = (0, 0)  # frames in flight: this camera's, all cameras'

    @property
    def limit(self) -> int:
        return self.admission.limit

    def update(self, camera_inflight: int, total_inflight: int) -> None:
        self.counts = (camera_inflight, total_inflight)
        self.utilisation = max(
            camera_inflight / self.limit,
            total_inflight / settings.FRAME_INFLIGHT_TOTAL,
        )
        if self.utilisation >= settings.FRAME_INFLIGHT_HIGH_WATER:
            self.shedding = True
        elif self.utilisation <= settings.FRAME_INFLIGHT_LOW_WATER:
            self.shedding = False

    def describe(self) -> str:
        camera, total = self.counts
        budget = self.admission.budget
        why = f" (limit for a {budget * 1000:g} ms latency budget)" if budget else ""
        return (
            f"in flight: camera {camera}/{self.limit}{why}, all "
            f"{total}/{settings.FRAME_INFLIGHT_TOTAL} (utilisation {self.utilisation:.0%})"
        )


class Journal:
    """A camera's final records on disk until the broker has taken them.

    Every record goes into the open segment file (one JSON line, handed to the OS at once, so
    a SIGKILL loses none) before anything tries to send it. Segments of at most BATCH records
    are sent oldest first, one message each, and a segment is deleted only once the broker
    has taken it: killed in between, the next run sends it again, and the idempotent upsert
    keeps one row per frame. Only one segment is read into memory at a time.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.open_segment: TextIO | None = None
        self.open_path: Path | None = None
        self.lines = 0

    def start(self) -> None:
        """Take over what an earlier run left; refuse a journal that cannot be written."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for leftover in self.directory.glob("*.open"):  # a run killed while writing it
            leftover.rename(leftover.with_suffix(".jsonl"))
        probe = self.directory / ".writable"
        probe.touch()
        probe.unlink()

    def append(self, meta: FrameMetadata) -> None:
        if self.open_segment is None:
            self.open_path = self.directory / f"{time.time_ns():020d}.open"
            self.open_segment = self.open_path.open("a")
        self.open_segment.write(meta.to_json() + "\n")
        self.open_segment.flush()
        self.lines += 1
        if self.lines >= BATCH:
            self.seal()

    def seal(self) -> None:
        """Close the open segment: from now on it is sent like any other."""
        if self.open_segment is not None and self.open_path is not None:
            self.open_segment.close()
            self.open_path.rename(self.open_path.with_suffix(".jsonl"))
        self.open_segment, self.open_path, self.lines = None, None, 0

    def segments(self) -> list[Path]:
        return sorted(self.directory.glob("*.jsonl"))  # named by time: oldest first

    def read(self, segment: Path) -> list[FrameMetadata]:
        """A segment's records; a line that does not parse (a write cut short, an edit by
        hand) goes to a .bad file instead of stopping the camera."""
        records, bad = [], []
        for line in segment.read_text().splitlines():
            try:
                records.append(FrameMetadata.from_json(line))
            except ValueError:
                bad.append(line)
        if bad:
            rejected = segment.with_suffix(".bad")
            rejected.write_text("".join(line + "\n" for line in bad))
            log.error("%d unreadable journal lines moved to %s", len(bad), rejected)
        return records


@dataclass
class FinalRecords:
    """Records that need no stage work, kept in the journal and sent many to a message."""

    camera_id: str
    journal: Journal = field(init=False)
    # Records the journal could not take (a full disk): sent from memory instead.
    unjournaled: deque[FrameMetadata] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.journal = Journal(Path(settings.CAPTURE_JOURNAL_DIR) / self.camera_id)

    def add(self, meta: FrameMetadata) -> None:
        try:
            self.journal.append(meta)
        except OSError as exc:
            log.error("journal %s: %s; record kept in memory", self.journal.directory, exc)
            self.unjournaled.append(meta)

    def flush(self, segments: int | None = SEGMENTS_PER_FLUSH) -> None:
        """Send what waits, oldest first, while the broker takes it; at most `segments`
        journal segments (None: all), so a backlog never stalls the camera for long."""
        while self.unjournaled:
            batch = [self.unjournaled.popleft() for _ in range(min(BATCH, len(self.unjournaled)))]
            if not self.send(batch):
                self.unjournaled.extendleft(reversed(batch))
                return
        self.journal.seal()
        for segment in self.journal.segments()[:segments]:
            if not self.send(self.journal.read(segment)):
                return
            segment.unlink()  # only now: the broker has it

    def send(self, batch: list[FrameMetadata]) -> bool:
        if not batch:
            return True
        try:
            with detached_context():  # a trace of its own, not the current frame's
                final_records(batch).apply_async()
        except UNAVAILABLE as exc:
            log.warning("final records wait for the broker: %s", exc)
            return False
        return True


@dataclass
class Ledger:
    """One camera's accounting during a capture run."""

    stats: CaptureStats
    backpressure: Backpressure = field(default_factory=Backpressure)
    records: FinalRecords = field(init=False)
    # Frames sent down the pipeline and not yet past FRAME_REAP_SECONDS, oldest first.
    in_flight: dict[str, FrameMetadata] = field(default_factory=dict)
    next_housekeeping: float = 0.0
    broker: Outage = field(default_factory=Outage)  # hand-overs failed just now
    interval: Interval | None = None  # admission's measurements since the last adjustment
    in_flight_count: int = 0  # the camera's frames in flight when last counted

    def __post_init__(self) -> None:
        self.records = FinalRecords(self.camera_id)

    @property
    def camera_id(self) -> str:
        return self.stats.camera

    def open(self) -> None:
        self.records.journal.start()

    def close(self) -> None:
        """Send everything that waits; what the broker does not take stays in the journal."""
        self.records.flush(segments=None)

    # A frame's way out of the capture worker: exactly one of these per numbered frame.

    def still_shedding(self, counts: InFlight) -> bool:
        """While shedding, each frame is judged by the counts now, not by those the last
        frame found: a burst after a reconnect must not be shed into an empty pipeline."""
        self.backpressure.update(counts.camera, counts.total)
        return self.backpressure.shedding

    def shed(self, meta: FrameMetadata, started: float, counts: InFlight) -> None:
        """Record the frame as shed (dropped, backpressure): the pipeline is too full.

        Shed frames take no in-flight slot, but `counts` tell when to stop shedding."""
        self.update(counts)
        if self.interval is not None:
            self.interval.shed = True
        meta.drop(Stage.CAPTURE, DropReason.BACKPRESSURE, self.backpressure.describe())
        meta.timings["capture"] = {"started_at": started, "ended_at": time.time()}
        self.records.add(meta)  # sent with the next batch: shedding stays cheap
        self.stats.shed += 1

    def sent(self, meta: FrameMetadata, counts: InFlight) -> None:
        """The frame went down the pipeline; `counts` are the in-flight counts after it."""
        self.in_flight[meta.frame_id] = meta
        self.stats.published += 1
        self.update(counts, sent=True)

    def undelivered(self, meta: FrameMetadata, exc: Exception | None = None) -> None:
        """Redis or the broker did not take the frame: recorded, sent once they are back."""
        if exc is None:  # one line a second of outage is enough, not one a frame
            why = "not tried: the last hand-over failed just now"
            log.debug("frame %s not handed over: %s", meta.frame_id, why)
        else:
            why = f"{type(exc).__name__}: {exc}"
            self.broker.began()
            self.unpark(meta)
            log.warning("frame %s not handed over (nor the next for %gs): %s",
                        meta.frame_id, self.broker.seconds, why)  # fmt: skip
        meta.drop(Stage.CAPTURE, DropReason.BROKER_UNAVAILABLE, why)
        self.records.add(meta)
        self.stats.undelivered += 1

    def invalid(self, meta: FrameMetadata, exc: Exception) -> None:
        """An image the worker could not encode."""
        meta.drop(Stage.CAPTURE, DropReason.INVALID, f"{type(exc).__name__}: {exc}")
        self.records.add(meta)

    def update(self, counts: InFlight, *, sent: bool = False) -> None:
        """`counts`: frames in flight now (frame_bytes.InFlight); with `sent`, they include
        the frame just sent. Admission judges by what a frame found when it came, itself not
        counted: a limit of one then admits a frame that finds the camera's earlier frames
        finished, instead of shedding every other frame of a slow camera. The finish rate is
        measured with every frame of the camera, however old: a frame leaves that count only
        when it ends or is reaped."""
        mine = 1 if sent else 0
        self.backpressure.update(counts.camera - mine, counts.total - mine)
        self.in_flight_count = counts.camera_all
        if self.interval is not None:
            self.interval.sample(counts.camera_all - mine, counts.camera_all)
        INFLIGHT_FRAMES.labels(self.camera_id).set(counts.camera_all)
        INFLIGHT_UTILISATION.labels(self.camera_id).set(self.backpressure.utilisation)

    def unpark(self, meta: FrameMetadata) -> None:
        """Parked before the publish failed? Then it must not be reaped as expired later."""
        try:
            frame_bytes.release(meta.frame_id, self.camera_id, keep_bytes=False)
        except UNAVAILABLE:
            pass

    # Keeping the books while the camera runs, and at its end.

    def housekeeping(self) -> None:
        now = time.monotonic()
        if now >= self.next_housekeeping:
            self.next_housekeeping = now + HOUSEKEEPING_INTERVAL
            self.admit(now)
            self.reap()
            self.records.flush()

    def admit(self, now: float) -> None:
        """Publish what this camera measured since the last time, and take its new limit."""
        interval = self.interval
        if interval is not None:
            load = interval.load(self.stats, now, self.backpressure.limit)
            try:
                loads = exchange(self.camera_id, load)
                self.backpressure.admission.adjust(self.camera_id, loads, interval.shed)
            except UNAVAILABLE as exc:
                log.warning("in-flight limit kept: %s", exc)
        in_flight = interval.last_in_flight if interval else self.in_flight_count
        self.interval = Interval.starting(self.stats, now, in_flight)
        self.stats.inflight_limit = self.backpressure.limit
        INFLIGHT_LIMIT.labels(self.camera_id).set(self.backpressure.limit)

    def reap(self) -> None:
        """Record frames whose task the broker lost (in flight too long) as dropped."""
        try:
            expired = frame_bytes.expired(self.camera_id)
        except UNAVAILABLE as exc:
            log.warning("cannot check in-flight frames: %s", exc)
            return
        for frame_id in expired:
            meta = self.in_flight.pop(frame_id, None) or bare_metadata(frame_id)
            detail = f"no stage finished it within {settings.FRAME_REAP_SECONDS:g}s"
            meta.drop(Stage.PIPELINE, DropReason.EXPIRED, detail)
            self.records.add(meta)
            self.stats.expired += 1
        self.forget_finished()

    def forget_finished(self) -> None:
        """Frames well past the reaping age that were not reaped reached their end: forget
        them. The margin covers the moment between capture and parking in Redis."""
        horizon = time.time() - settings.FRAME_REAP_SECONDS - 10
        while self.in_flight:
            oldest = next(iter(self.in_flight.values()))
            if oldest.timestamp.timestamp() > horizon:
                break
            del self.in_flight[oldest.frame_id]

    def drain(self, stop: threading.Event) -> None:
        """Wait (at most FRAME_REAP_SECONDS) for the frames in flight to reach an end."""
        deadline = time.monotonic() + settings.FRAME_REAP_SECONDS + 2 * HOUSEKEEPING_INTERVAL
        while time.monotonic() < deadline and not stop.is_set():
            self.reap()
            self.records.flush()
            try:
                if frame_bytes.inflight(self.camera_id)[0] == 0:
                    return
            except UNAVAILABLE:
                pass
            stop.wait(HOUSEKEEPING_INTERVAL)


def bare_metadata(frame_id: str) -> FrameMetadata:
    """What a frame id alone says of a frame (one published by an earlier run)."""
    parsed = FrameID.parse(frame_id)
    return FrameMetadata(frame_id=parsed, timestamp=parsed.timestamp)


@contextmanager
def detached_context() -> Iterator[None]:
    token = otel_context.attach(otel_context.Context())
    try:
        yield
    finally:
        otel_context.detach(token)
