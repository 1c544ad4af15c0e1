"""What happened to the frames: the read side of accounting, in one place.

Per camera: how many frames were captured, stored, dropped (by reason), failed (by reason)
and lost (sequence numbers with no row), and capture→stored latency percentiles. The admin's
camera overview, `GET /frames/report`, `manage.py frames_report` and the demo all ask here;
`describe`/`render` give the text the commands print.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any, TypedDict

from django.conf import settings
from django.db import connection, models
from django.db.models import Count, F, Max, Min, Q, QuerySet, Window
from django.db.models.functions import Lag
from django.utils import timezone

from frame_tracking.status import FrameStatus
from frames.models import LATENCY_BASE, CameraMinute, Frame
from tasks import frame_bytes
from workers import ledger
from workers.lease import LEASE_KEY

PERCENTILES = (0.5, 0.95, 0.99)
NUMBERED = Q(sequence__gte=0)  # -1: a frame whose id did not parse and had no sequence
CAMERA_FRAMES = Q(test=False)  # canary frames (send_test_frame) stay out of camera figures


class CameraOverview(TypedDict):
    camera_id: str
    frames: int  # rows: frames that reached a final status
    fps: float
    stored: int
    dropped: int
    dropped_by_reason: dict[str, int]
    failed: int
    failed_by_reason: dict[str, int]
    lost: int  # sequence numbers in the range with no row at all
    # Rows beyond one per sequence number: two processes captured the camera at once.
    duplicates: int
    captured: int  # sequence numbers in the range: frames + lost - duplicates
    loss_pct: float
    # capture -> final status, over the stored frames
    p50_latency_ms: float | None
    p95_latency_ms: float | None
    p99_latency_ms: float | None


class CameraReport(CameraOverview):
    gaps: list[tuple[int, int]]  # the first runs of lost sequence numbers, (first, last)
    # Frames the camera may have in flight now (FRAME_LATENCY_BUDGET_MS), as its capture
    # worker last published it; None when no capture worker runs the camera now.
    inflight_limit: int | None
    # Frames Redis numbered after the camera's newest row while no capture runs the camera:
    # its last frames, which no row accounts for (a capture killed and not run again; the
    # next capture of the camera reaps and records them). In no window's `lost`, which sees
    # only numbers between rows. None while a capture runs it (its frames are in flight),
    # until its newest row is FRAME_REAP_SECONDS old (a capture stopped just now may still
    # have frames on their way), or when Redis cannot be asked.
    unrecorded: int | None


class Report(TypedDict):
    since: Annotated[str, {"format": "date-time"}]
    until: Annotated[str, {"format": "date-time"}]
    cameras: list[CameraReport]


def overview(frames: QuerySet[Frame], since: datetime, until: datetime) -> list[CameraOverview]:
    """Per camera, the frames captured in [since, until): rates, outcomes, loss, latency.

    A frame lost is a sequence number between the camera's first and last in the window with
    no row; frames lost at the window's edges are not seen. fps is the rate while the camera
    was capturing (its first to its last frame in the window), not averaged over the window:
    a camera that ran for one minute of the hour shows its real rate.
    """
    window = frames.filter(CAMERA_FRAMES, captured_at__gte=since, captured_at__lt=until)
    return _cameras(window, lambda row: (_span(row), _seconds(row)))


def camera_overview(since: datetime, until: datetime) -> list[CameraOverview]:
    """The overview of [since, until) read from the per-minute rollup (frames_cameraminute):
    the whole minutes inside the window from their rollup rows (at most 1,440 a camera in
    24 h), the part-minutes at its two edges from the frames themselves. Counts equal a count
    over the frames; latency percentiles come from the rollup's histogram (within ±5 %); lost
    and duplicate figures assume the camera's sequence numbers are distinct (Redis gives each
    frame its own): `frames_report` counts the distinct ones. SQLite keeps no rollup: there
    it is overview() itself."""
    if connection.vendor != "postgresql":
        return overview(Frame.objects.all(), since, until)
    first_whole, last_whole = _next_minute(since), _minute(until)
    tallies: dict[str, Tally] = {}
    edges = Q(captured_at__gte=since, captured_at__lt=until)
    if first_whole < last_whole:
        for row in CameraMinute.objects.filter(minute__gte=first_whole, minute__lt=last_whole):
            tallies.setdefault(row.camera_id, Tally()).add_minute(row)
        edges = Q(captured_at__gte=since, captured_at__lt=first_whole) | Q(
            captured_at__gte=last_whole, captured_at__lt=until
        )
    frames = Frame.objects.filter(CAMERA_FRAMES).filter(edges).order_by()
    for camera_id, sequence, at, status, reason, latency in frames.values_list(
        "camera_id", "sequence", "captured_at", "status", "reason", "latency_ms"
    ):
        tallies.setdefault(camera_id, Tally()).add_frame(sequence, at, status, reason, latency)
    return [tallies[c].overview(c) for c in sorted(tallies) if tallies[c].frames]


def _minute(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)


def _next_minute(t: datetime) -> datetime:
    return t if t == _minute(t) else _minute(t) + timedelta(minutes=1)


def latency_bucket(latency_ms: float) -> int:
    """The rollup's histogram bucket (SQL: frames_latency_bucket, migration 0005)."""
    return 0 if latency_ms < 1 else 1 + math.floor(math.log(latency_ms) / math.log(LATENCY_BASE))


def _bucket_ms(bucket: int) -> float:
    """A bucket's geometric midpoint: within ±5 % of every latency in it."""
    return 0.5 if bucket == 0 else LATENCY_BASE ** (bucket - 0.5)


@dataclass
class Tally:
    """One camera's frames, summed from rollup minutes and single frames alike."""

    frames: int = 0
    numbered: int = 0
    stored: int = 0
    dropped: int = 0
    failed: int = 0
    first_sequence: int | None = None
    last_sequence: int | None = None
    first_at: datetime | None = None
    last_at: datetime | None = None
    reasons: Counter[str] = field(default_factory=Counter)  # "dropped:stale" -> frames
    latency: Counter[int] = field(default_factory=Counter)  # bucket -> stored frames

    def add_minute(self, row: CameraMinute) -> None:
        self.frames += row.frames
        self.numbered += row.numbered
        self.stored, self.dropped, self.failed = (
            self.stored + row.stored, self.dropped + row.dropped, self.failed + row.failed
        )  # fmt: skip
        self._bounds(row.first_sequence, row.last_sequence, row.first_at, row.last_at)
        self.reasons.update({k: int(n) for k, n in row.reasons.items()})
        self.latency.update({int(b): int(n) for b, n in row.latency.items()})

    def add_frame(
        self, sequence: int, at: datetime, status: str, reason: str, latency_ms: float | None
    ) -> None:
        self.frames += 1
        numbered = sequence if sequence >= 0 else None
        self.numbered += numbered is not None
        self._bounds(numbered, numbered, at, at)
        if status == FrameStatus.STORED:
            self.stored += 1
            if latency_ms is not None:
                self.latency[latency_bucket(latency_ms)] += 1
            return
        self.dropped += status == FrameStatus.DROPPED
        self.failed += status == FrameStatus.FAILED
        self.reasons[f"{status}:{reason or 'unknown'}"] += 1

    def _bounds(
        self, low: int | None, high: int | None, first: datetime | None, last: datetime | None
    ) -> None:
        def pick(a: Any, b: Any, best: Callable[..., Any]) -> Any:
            return b if a is None else a if b is None else best(a, b)

        self.first_sequence = pick(self.first_sequence, low, min)
        self.last_sequence = pick(self.last_sequence, high, max)
        self.first_at = pick(self.first_at, first, min)
        self.last_at = pick(self.last_at, last, max)

    def percentile(self, fraction: float) -> float | None:
        """percentile_cont's rank, read off the histogram: the midpoint of its bucket."""
        total = sum(self.latency.values())
        if not total:
            return None
        rank, seen = fraction * (total - 1), 0
        for bucket in sorted(self.latency):
            seen += self.latency[bucket]
            if seen > rank:
                return round(_bucket_ms(bucket), 3)
        return round(_bucket_ms(max(self.latency)), 3)

    def overview(self, camera_id: str) -> CameraOverview:
        span = 0 if self.first_sequence is None else self.last_sequence - self.first_sequence + 1  # type: ignore[operator]
        sequences = min(self.numbered, span)
        row = {
            "camera_id": camera_id, "frames": self.frames, "numbered": self.numbered,
            "sequences": sequences, "stored": self.stored, "dropped": self.dropped,
            "failed": self.failed, "first_at": self.first_at, "last_at": self.last_at,
        }  # fmt: skip
        reasons: dict[str, dict[str, int]] = {}
        for key, n in self.reasons.items():
            if n:
                status, _, reason = key.partition(":")
                reasons.setdefault(status, {})[reason] = n
        latencies = tuple(self.percentile(f) for f in PERCENTILES)
        return _camera(row, reasons, latencies, span, _seconds(row))


def window_report(
    since: datetime, until: datetime, camera: str = "", gap_limit: int = 20
) -> Report:
    """GET /frames/report and frames_report: the overview with each camera's first gaps."""
    frames = Frame.objects.filter(camera_id=camera) if camera else Frame.objects.all()
    window = frames.filter(CAMERA_FRAMES, captured_at__gte=since, captured_at__lt=until)
    limits = inflight_limits()
    cameras = overview(frames, since, until)
    not_recorded = unrecorded([camera["camera_id"] for camera in cameras])
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "cameras": [
            {
                **camera,
                "gaps": sequence_gaps(window, camera["camera_id"], gap_limit),
                "inflight_limit": limits.get(camera["camera_id"]),
                "unrecorded": not_recorded.get(camera["camera_id"]),
            }
            for camera in cameras
        ],
    }


def run_report(camera_id: str, first: int, last: int, gap_limit: int = 20) -> CameraReport:
    """One capture run's frames, known by their sequence range: `captured` is the run's own
    count, so frames lost at either end of the run count too."""
    frames = Frame.objects.filter(CAMERA_FRAMES, camera_id=camera_id, sequence__range=(first, last))
    cameras = _cameras(frames, lambda row: (last - first + 1, _seconds(row)))
    (camera,) = cameras or [_camera({"camera_id": camera_id}, {}, (None,) * 3, last - first + 1, 0)]
    return {
        **camera,
        "gaps": _gaps_of_run(frames, camera_id, first, last, gap_limit),
        "inflight_limit": inflight_limits().get(camera_id),
        "unrecorded": unrecorded([camera_id]).get(camera_id),
    }


def unrecorded(camera_ids: list[str]) -> dict[str, int]:
    """See CameraReport.unrecorded, for the cameras it can be said of: Redis's count of each
    camera's numbers past its newest row, when no capture holds the camera's lease and that
    row is older than FRAME_REAP_SECONDS (frames a capture stopped just now may still be on
    their way). One round trip for all cameras; none when Redis cannot be asked."""
    if not camera_ids:
        return {}
    pipe = frame_bytes.client().pipeline(transaction=False)
    for camera_id in camera_ids:
        pipe.get(frame_bytes.SEQUENCE_KEY.format(camera_id))
        pipe.exists(LEASE_KEY.format(camera_id))
    try:
        replies = pipe.execute()
    except ledger.UNAVAILABLE:
        return {}
    settled = timezone.now() - timedelta(seconds=settings.FRAME_REAP_SECONDS)
    found = {}
    for camera_id, numbered, running in zip(camera_ids, replies[::2], replies[1::2], strict=True):
        if running or numbered is None:  # running, or Redis lost its numbers (a restart)
            continue
        newest = Frame.newest(camera_id)
        if newest is None or newest[1] > settled:
            continue
        found[camera_id] = max(0, int(numbered) - newest[0])
    return found


def inflight_limits() -> dict[str, int]:
    """Each running camera's in-flight limit, as its capture worker publishes it every
    second; nothing when Redis cannot be asked (the report is about the rows)."""
    try:
        loads = ledger.published_limits()
    except ledger.UNAVAILABLE:
        return {}
    now = time.time()
    return {
        camera: load.limit
        for camera, load in loads.items()
        if now - load.at <= ledger.ADMISSION_STALE
    }


def sequence_gaps(frames: QuerySet[Frame], camera_id: str, limit: int) -> list[tuple[int, int]]:
    """The first `limit` runs of sequence numbers with no row between the camera's rows."""
    rows = (
        frames.filter(NUMBERED, camera_id=camera_id)
        .annotate(previous=Window(Lag("sequence"), order_by=F("sequence").asc()))
        .filter(sequence__gt=F("previous") + 1)
        .order_by("sequence")
        .values_list("previous", "sequence")[:limit]
    )
    return [(previous + 1, sequence - 1) for previous, sequence in rows]


def describe(camera: CameraReport) -> str:
    """A camera's report as the commands print it."""
    lines = [
        f"\ncamera {camera['camera_id']}",
        f"  captured {camera['captured']}   ({camera['fps']} fps)",
        f"  stored   {camera['stored']}",
        f"  dropped  {camera['dropped']}" + _by_reason(camera["dropped_by_reason"]),
        f"  failed   {camera['failed']}" + _by_reason(camera["failed_by_reason"]),
        f"  lost     {camera['lost']}   ({camera['loss_pct']}%)",
    ]
    if camera["duplicates"]:
        duplicates = camera["duplicates"]
        lines.append(
            f"  DUPLICATE sequence numbers: {duplicates} rows (two captures of one camera)"
        )
    latencies = (camera["p50_latency_ms"], camera["p95_latency_ms"], camera["p99_latency_ms"])
    if None not in latencies:
        p50, p95, p99 = latencies
        lines.append(
            f"  capture->stored latency  p50 {p50:.1f} ms  p95 {p95:.1f} ms  p99 {p99:.1f} ms"
        )
    if camera["inflight_limit"] is not None:
        lines.append(f"  in-flight limit now  {camera['inflight_limit']} frames" + _budget())
    if camera["gaps"]:
        gaps = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in camera["gaps"])
        lines.append(f"  lost sequence numbers: {gaps}")
    if camera["unrecorded"]:
        lines.append(
            f"  NOT RECORDED: {camera['unrecorded']} frames numbered after its newest row, and "
            "no capture runs this camera (one ended without recording them): run a capture of "
            "it to reap and record them"
        )
    return "\n".join(lines)


def _budget() -> str:
    budget = settings.FRAME_LATENCY_BUDGET_MS
    return f"   (latency budget {budget:g} ms)" if budget else "   (fixed)"


def _by_reason(reasons: dict[str, int]) -> str:
    text = ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items()))
    return f"   ({text})" if text else ""


def render(report: Report) -> str:
    cameras = [describe(camera) for camera in report["cameras"]] or ["no frames in this window"]
    return "\n".join([f"frames captured from {report['since']} to {report['until']}", *cameras])


def percentile_cont(values: Sequence[float], fraction: float) -> float | None:
    """PostgreSQL's percentile_cont: linear interpolation between the two nearest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


class PercentileCont(models.Aggregate):
    """PERCENTILE_CONT(f) WITHIN GROUP (ORDER BY expr), PostgreSQL only."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = models.FloatField()

    def __init__(self, expression: str, fraction: float) -> None:
        # A float literal, not user input: interpolating it into the SQL is safe.
        super().__init__(expression, fraction=float(fraction))


def _cameras(
    frames: QuerySet[Frame], captured_and_seconds: Callable[[dict[str, Any]], tuple[int, float]]
) -> list[CameraOverview]:
    reasons = _reasons_by_camera(frames)
    latencies = _stored_latency_percentiles_by_camera(frames)
    return [
        _camera(
            row,
            reasons.get(row["camera_id"], {}),
            latencies.get(row["camera_id"], (None, None, None)),
            *captured_and_seconds(row),
        )
        for row in _outcomes_by_camera(frames)
    ]


def _camera(
    row: dict[str, Any],
    reasons: dict[str, dict[str, int]],
    latencies: tuple[float | None, ...],
    captured: int,
    seconds: float,
) -> CameraOverview:
    frames, sequences = row.get("frames", 0), row.get("sequences", 0)
    lost = max(captured - sequences, 0)
    p50, p95, p99 = latencies
    return {
        "camera_id": row["camera_id"],
        "frames": frames,
        "fps": round(frames / seconds, 3) if seconds else 0.0,
        "stored": row.get("stored", 0),
        "dropped": row.get("dropped", 0),
        "dropped_by_reason": reasons.get(FrameStatus.DROPPED, {}),
        "failed": row.get("failed", 0),
        "failed_by_reason": reasons.get(FrameStatus.FAILED, {}),
        "lost": lost,
        "duplicates": row.get("numbered", 0) - sequences,
        "captured": captured,
        "loss_pct": round(100 * lost / captured, 3) if captured else 0.0,
        "p50_latency_ms": p50,
        "p95_latency_ms": p95,
        "p99_latency_ms": p99,
    }


def _outcomes_by_camera(frames: QuerySet[Frame]) -> QuerySet[Frame, dict[str, Any]]:
    return (
        frames.order_by("camera_id")
        .values("camera_id")
        .annotate(
            frames=Count("frame_id"),
            numbered=Count("frame_id", filter=NUMBERED),
            sequences=Count("sequence", filter=NUMBERED, distinct=True),
            stored=Count("frame_id", filter=Q(status=FrameStatus.STORED)),
            dropped=Count("frame_id", filter=Q(status=FrameStatus.DROPPED)),
            failed=Count("frame_id", filter=Q(status=FrameStatus.FAILED)),
            first=Min("sequence", filter=NUMBERED),
            last=Max("sequence", filter=NUMBERED),
            first_at=Min("captured_at"),
            last_at=Max("captured_at"),
        )
    )


def _span(row: dict[str, Any]) -> int:
    """Sequence numbers from the camera's first to its last frame."""
    return 0 if row["first"] is None else row["last"] - row["first"] + 1


def _seconds(row: dict[str, Any]) -> float:
    """How long a camera captured: from its first frame to its last, plus one frame's time
    (0 for a single frame: no rate)."""
    frames = row.get("frames", 0)
    if frames < 2:
        return 0.0
    return (row["last_at"] - row["first_at"]).total_seconds() * frames / (frames - 1)


def _reasons_by_camera(frames: QuerySet[Frame]) -> dict[str, dict[str, dict[str, int]]]:
    """camera -> status -> reason -> frames, for the dropped and failed ones."""
    rows = (
        frames.exclude(status=FrameStatus.STORED)
        .order_by()
        .values_list("camera_id", "status", "reason")
        .annotate(n=Count("frame_id"))
    )
    reasons: dict[str, dict[str, dict[str, int]]] = {}
    for camera_id, status, reason, n in rows:
        reasons.setdefault(camera_id, {}).setdefault(status, {})[reason or "unknown"] = n
    return reasons


def _stored_latency_percentiles_by_camera(
    frames: QuerySet[Frame],
) -> dict[str, tuple[float | None, ...]]:
    measured = frames.filter(status=FrameStatus.STORED, latency_ms__isnull=False).order_by()
    if connection.vendor == "postgresql":
        rows = measured.values("camera_id").annotate(
            **{f"p{int(f * 100)}": PercentileCont("latency_ms", f) for f in PERCENTILES}
        )
        return {row["camera_id"]: (row["p50"], row["p95"], row["p99"]) for row in rows}
    latencies: dict[str, list[float]] = {}
    for camera_id, latency in measured.values_list("camera_id", "latency_ms"):
        if latency is not None:
            latencies.setdefault(camera_id, []).append(latency)
    return {
        camera: tuple(percentile_cont(values, f) for f in PERCENTILES)
        for camera, values in latencies.items()
    }


def _gaps_of_run(
    frames: QuerySet[Frame], camera_id: str, first: int, last: int, limit: int
) -> list[tuple[int, int]]:
    """Gaps between the run's rows, and before its first row and after its last."""
    found = frames.filter(NUMBERED).aggregate(low=Min("sequence"), high=Max("sequence"))
    if found["low"] is None:
        return [(first, last)]
    gaps = sequence_gaps(frames, camera_id, limit)
    if found["low"] > first:
        gaps.insert(0, (first, found["low"] - 1))
    if found["high"] < last:
        gaps.append((found["high"] + 1, last))
    return gaps[:limit]
