"""Where every frame ends: one row per captured frame, stored, dropped or failed."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, NamedTuple, TypedDict, cast

from django.conf import settings
from django.db import connection, models, transaction
from django.db.backends.utils import CursorDebugWrapper
from django.db.models import Q

from frame_tracking.metadata import StageTiming
from frame_tracking.status import (
    FINAL_STATUSES,
    PIPELINE_STAGES,
    REASONS,
    FrameStatus,
    Reason,
    Stage,
)

if TYPE_CHECKING:
    from frame_tracking import FrameMetadata
    from frame_tracking.identity import FrameID

# A journey lists the stages in the order a frame passes them.
STAGES = tuple(stage.value for stage in PIPELINE_STAGES)


# Keywords the API's JSON Schema adds to a field's type (frames/schema.py).
IsoTime = Annotated[str, {"format": "date-time", "description": "ISO-8601, UTC"}]


class FrameDict(TypedDict):
    """A frame as the API shows it: the model's to_dict() and the OpenAPI `Frame` schema."""

    frame_id: str
    camera_id: str
    sequence: Annotated[int, {"description": "per camera; -1 when the frame id did not parse"}]
    captured_at: IsoTime
    status: Annotated[FrameStatus, {"enum": list(FINAL_STATUSES)}]
    reason: Annotated[Reason | Literal[""], {"description": "why it was dropped or failed"}]
    stage: Annotated[Stage | Literal[""], {"description": "the stage that decided the status"}]
    error: str
    source: str
    width: int | None
    height: int | None
    format: str
    size_bytes: int | None
    trace_id: Annotated[str, {"pattern": "^([0-9a-f]{32})?$"}]
    span_id: Annotated[str, {"description": "the frame's root span, capture_frame"}]
    sampled: Annotated[
        bool,
        {
            "description": "whether the trace was sampled (exported); if not, Jaeger has nothing "
            "for it, but the row and its journey are complete"
        },
    ]
    test: Annotated[bool, {"description": "a canary frame (send_test_frame)"}]
    latency_ms: Annotated[float | None, {"description": "capture to final status, ms"}]
    timings: Annotated[
        dict[str, StageTiming],
        {"description": "stage -> {queued_at, started_at, ended_at}, epoch s"},
    ]
    results: Annotated[dict[str, dict[str, Any]], {"description": "processor name -> its result"}]
    jaeger_url: Annotated[
        str | None, {"format": "uri", "description": "null when the trace was not sampled"}
    ]


class JourneyStage(TypedDict):
    stage: str
    queued_at: Annotated[str | None, {"format": "date-time", "description": "None for capture"}]
    start: Annotated[str | None, {"format": "date-time"}]
    end: Annotated[str | None, {"format": "date-time"}]
    duration_ms: Annotated[float | None, {"description": "end - start, ms"}]
    queue_wait_ms: Annotated[float | None, {"description": "start - queued_at: queue wait, ms"}]


class FrameDetailDict(FrameDict):
    journey: list[JourneyStage]


class StageEpochs(NamedTuple):
    """One stage's timing as epoch seconds, None where the stage did not record it."""

    stage: str
    queued_at: float | None
    started_at: float | None
    ended_at: float | None


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _epoch(value: Any) -> float | None:
    # timings is JSON written by the workers: tolerate a missing or odd value, never raise.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _iso(seconds: float | None) -> str | None:
    return None if seconds is None else from_epoch(seconds).isoformat()


def _ms(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else round((end - start) * 1000, 3)


class FrameQuerySet(models.QuerySet["Frame"]):
    def with_frame_id(self, frame_id: FrameID) -> FrameQuerySet:
        # The id carries the capture time, so the lookup names the row's (future) partition.
        return self.filter(frame_id=frame_id, captured_at=frame_id.timestamp)

    def newest_first(self) -> FrameQuerySet:
        return self.order_by("-captured_at", "-frame_id")

    def before(self, captured_at: datetime, frame_id: str) -> FrameQuerySet:
        """Rows after (captured_at, frame_id) in newest-first order: the keyset page condition.

        The redundant captured_at <= bound becomes an index condition, so a deep page starts
        where the previous one ended instead of scanning past it.
        """
        return self.filter(captured_at__lte=captured_at).filter(
            Q(captured_at__lt=captured_at) | Q(frame_id__lt=frame_id)
        )

    def matching(
        self,
        *,
        frame_id: FrameID | None = None,
        trace_id: str = "",
        camera: str = "",
        status: str = "",
        reason: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> FrameQuerySet:
        """The frames that pass all the given filters (GET /frames)."""
        query = self.with_frame_id(frame_id) if frame_id else self
        exact = {"trace_id": trace_id, "camera_id": camera, "status": status, "reason": reason}
        query = query.filter(**{field: value for field, value in exact.items() if value})
        if since:
            query = query.filter(captured_at__gte=since)
        if until:
            query = query.filter(captured_at__lt=until)
        return query

    def page(self, limit: int) -> tuple[list[Frame], Frame | None]:
        """Up to limit frames, newest first, and the last of them if more follow."""
        rows = list(self.newest_first()[: limit + 1])
        if len(rows) > limit:
            return rows[:limit], rows[limit - 1]
        return rows, None

    def camera_ids(self) -> list[str]:
        """Every camera with a frame, cheaply: a loose index scan on PostgreSQL."""
        if connection.vendor != "postgresql":
            return list(self.order_by("camera_id").values_list("camera_id", flat=True).distinct())
        # SELECT DISTINCT reads all 20M rows; hopping from camera to camera through
        # frame_camera_time reads one index entry per camera.
        table = Frame._meta.db_table
        sql = f"""
            WITH RECURSIVE cameras(camera_id) AS (
                (SELECT camera_id FROM {table} ORDER BY camera_id LIMIT 1)
                UNION ALL
                SELECT (SELECT f.camera_id FROM {table} f WHERE f.camera_id > c.camera_id
                        ORDER BY f.camera_id LIMIT 1)
                FROM cameras c WHERE c.camera_id IS NOT NULL
            )
            SELECT camera_id FROM cameras WHERE camera_id IS NOT NULL
        """  # noqa: S608 - the table name is ours, nothing user-supplied
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return [row[0] for row in cursor.fetchall()]


def choices(values: Iterable[str]) -> list[tuple[str, str]]:
    return [(str(value), str(value)) for value in values]


class Frame(models.Model):
    # The frame's own id is its key; no surrogate. On PostgreSQL the table's primary key is
    # (frame_id, captured_at), as partitioning by capture time requires (migration 0005);
    # the id names its capture time, so a lookup by id names its partition (with_frame_id).
    frame_id = models.CharField(max_length=160, primary_key=True)
    camera_id = models.CharField(max_length=64)
    sequence = models.BigIntegerField()
    # The partition key: one partition a day on PostgreSQL (frames/partitions.py).
    captured_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=choices(FINAL_STATUSES))
    # why it was dropped or failed; "" for a stored frame
    reason = models.CharField(max_length=64, blank=True, choices=choices(REASONS))
    # the stage that decided the status
    stage = models.CharField(max_length=16, blank=True, choices=choices(Stage))
    error = models.TextField(blank=True)
    source = models.CharField(max_length=255, blank=True)
    width = models.PositiveIntegerField(null=True)
    height = models.PositiveIntegerField(null=True)
    format = models.CharField(max_length=16, blank=True)
    size_bytes = models.PositiveIntegerField(null=True)
    trace_id = models.CharField(max_length=32)
    span_id = models.CharField(max_length=16)  # the frame's root span, capture_frame
    # Whether the trace was sampled, i.e. exported: only then can Jaeger have it. The row,
    # its journey and the metrics are there for every frame either way. (db_default: a
    # worker of the previous release, still running during a deploy, can insert rows.)
    sampled = models.BooleanField(default=False, db_default=False)
    test = models.BooleanField(default=False, db_default=False)  # a canary: not in camera figures
    trace_context = models.JSONField(default=dict)
    timings = models.JSONField(default=dict)  # stage name -> StageTiming
    results = models.JSONField(default=dict)  # processor name -> its result dict
    finished_at = models.DateTimeField()  # when the status was recorded
    latency_ms = models.FloatField(null=True)  # capture -> finished

    objects = FrameQuerySet.as_manager()

    class Meta:
        # The primary key keeps a redelivered store to one row; it also serves
        # GET /frames?frame_id= and GET /frames/<frame_id> and the admin's change page.
        indexes = [
            # GET /frames?trace_id=…, admin search by trace id.
            models.Index(fields=["trace_id"], name="frame_trace_id"),
            # GET /frames?camera=…&since=…&until=… pages (newest first, keyset on
            # captured_at, frame_id), the admin camera filter and its list of cameras
            # (Frame.objects.camera_ids), per-camera report, loss detection.
            models.Index(fields=["camera_id", "captured_at", "frame_id"], name="frame_camera_time"),
            # GET /frames?status=… pages (keyset on captured_at, frame_id), admin status filter.
            models.Index(fields=["status", "captured_at", "frame_id"], name="frame_status_time_id"),
            # GET /frames?reason=… pages and the admin reason filter. Partial: stored frames,
            # nearly every row, have no reason and cost this index nothing.
            models.Index(
                fields=["reason", "captured_at", "frame_id"],
                name="frame_reason_time_id",
                condition=~Q(reason=""),
            ),
            # GET /frames with only since/until or no filter, the admin changelist's default
            # order and date filter, and the camera overview's time window.
            models.Index(fields=["captured_at", "frame_id"], name="frame_time"),
        ]
        ordering = ["-captured_at", "-frame_id"]

    def __str__(self) -> str:
        return self.frame_id

    @classmethod
    def record(cls, meta: FrameMetadata, *, finished_at: datetime | None = None) -> Frame:
        """Write one frame's final state (see record_many); returns the frame as given."""
        frame = cls.from_metadata(meta, finished_at or datetime.now(tz=UTC))
        if not _insert_new([frame]) and frame.status == FrameStatus.STORED:
            _upgrade_to_stored(frame)
        return frame

    @classmethod
    def newest(cls, camera_id: str) -> tuple[int, datetime] | None:
        """The camera's newest numbered frame's (sequence, captured_at): newest by capture
        time, which the index serves (numbers grow with it); None before its first."""
        newest = cls.objects.filter(camera_id=camera_id, sequence__gte=0)
        return newest.order_by("-captured_at").values_list("sequence", "captured_at").first()

    @classmethod
    def record_many(
        cls, metas: Sequence[FrameMetadata], *, finished_at: datetime | None = None
    ) -> Recorded:
        """Write frames' final states; written again, a frame keeps its one row.

        The first final status written for a frame stands, except that "stored" replaces a
        drop or failure (a frame reaped as expired that store got to after all). A late
        duplicate never turns a stored frame into a drop, and a redelivered store changes
        nothing. A new frame costs one INSERT … ON CONFLICT DO NOTHING, no check before it;
        only a stored record whose row exists already tries an UPDATE of a row that is not
        stored, each a single atomic statement. The answer says which rows were written or
        changed, so the metrics count frames, not attempts.
        """
        finished_at = finished_at or datetime.now(tz=UTC)
        # One record per frame (the last), or PostgreSQL refuses to touch a row twice.
        frames = list(
            {meta.frame_id: cls.from_metadata(meta, finished_at) for meta in metas}.values()
        )
        inserted = _insert_new(frames)
        recorded = Recorded([frame for frame in frames if frame.frame_id in inserted], [])
        for frame in frames:
            if frame.frame_id not in inserted and frame.status == FrameStatus.STORED:
                previous = _upgrade_to_stored(frame)  # rare: a redelivery or a reaped frame
                if previous is not None:
                    recorded.changed.append((frame, previous or "unknown"))
        return recorded

    @classmethod
    def from_metadata(cls, meta: FrameMetadata, finished_at: datetime) -> Frame:
        context = meta.trace_context
        return cls(
            frame_id=meta.frame_id,
            captured_at=meta.timestamp,
            camera_id=meta.camera_id or "",
            # -1: a frame whose id does not parse and whose record had no sequence either.
            sequence=meta.sequence if meta.sequence is not None else -1,
            status=meta.status.value,
            reason=meta.reason.value if meta.reason else "",
            stage=meta.stage.value if meta.stage else "",
            error=meta.error,
            source=meta.source,
            width=meta.width,
            height=meta.height,
            format=meta.format,
            size_bytes=meta.size_bytes,
            trace_id=context.trace_id if context else "",
            span_id=context.span_id if context else "",
            sampled=bool(context and context.is_valid() and context.sampled),
            test=meta.test,
            trace_context=context.to_dict() if context else {},
            timings=meta.timings,
            results=meta.results,
            finished_at=finished_at,
            latency_ms=(finished_at - meta.timestamp).total_seconds() * 1000,
        )

    @property
    def jaeger_url(self) -> str | None:
        """Only a sampled trace was exported: a link to any other would lead nowhere."""
        if not (self.trace_id and self.sampled):
            return None
        return f"{settings.JAEGER_UI_URL}/trace/{self.trace_id}"

    def stage_epochs(self) -> list[StageEpochs]:
        """The stages this frame recorded, in pipeline order (unknown stages last)."""
        timings = self.timings if isinstance(self.timings, dict) else {}
        names = [s for s in STAGES if s in timings] + sorted(set(timings) - set(STAGES))
        epochs = []
        for name in names:
            timing = timings[name] if isinstance(timings[name], dict) else {}
            epochs.append(
                StageEpochs(
                    name,
                    _epoch(timing.get("queued_at")),
                    _epoch(timing.get("started_at")),
                    _epoch(timing.get("ended_at")),
                )
            )
        return epochs

    def journey(self) -> list[JourneyStage]:
        return [
            {
                "stage": e.stage,
                "queued_at": _iso(e.queued_at),
                "start": _iso(e.started_at),
                "end": _iso(e.ended_at),
                "duration_ms": _ms(e.started_at, e.ended_at),
                "queue_wait_ms": _ms(e.queued_at, e.started_at),
            }
            for e in self.stage_epochs()
        ]

    def to_detail_dict(self) -> FrameDetailDict:
        return {**self.to_dict(), "journey": self.journey()}

    def to_dict(self) -> FrameDict:
        """The FrameDict's keys, read off this frame: the shape is declared once, above."""
        return cast(FrameDict, {key: _json(getattr(self, key)) for key in FRAME_KEYS})


FRAME_KEYS = tuple(FrameDict.__annotations__)


class CameraMinute(models.Model):
    """One camera's frames captured in one minute, kept by the table itself as frames finish:
    on PostgreSQL a trigger on frames_frame adds each inserted row and moves a row whose
    status changes (migration 0005), so the 24 h camera overview reads 1,440 rows per camera
    instead of 2.6M frames (frames/report.camera_overview). Canary frames stay out, as they
    do from every camera figure. SQLite keeps no rollup: its overview counts the frames."""

    pk = models.CompositePrimaryKey("camera_id", "minute")
    camera_id = models.CharField(max_length=64)
    minute = models.DateTimeField()  # UTC, the start of the minute
    frames = models.BigIntegerField(default=0)
    numbered = models.BigIntegerField(default=0)  # frames with a sequence number (>= 0)
    stored = models.BigIntegerField(default=0)
    dropped = models.BigIntegerField(default=0)
    failed = models.BigIntegerField(default=0)
    first_sequence = models.BigIntegerField(null=True)
    last_sequence = models.BigIntegerField(null=True)
    first_at = models.DateTimeField(null=True)
    last_at = models.DateTimeField(null=True)
    reasons = models.JSONField(default=dict)  # "dropped:stale" -> frames
    # Stored frames' capture->stored latency as a log histogram: bucket -> frames, bucket
    # b >= 1 holding [LATENCY_BASE**(b-1), LATENCY_BASE**b) ms and 0 everything below 1 ms.
    latency = models.JSONField(default=dict)

    class Meta:
        # The key's index serves the overview's window: camera_id, minute range.
        ordering = ["camera_id", "minute"]


LATENCY_BASE = 1.1  # a bucket's midpoint is within ±5 % of any latency in it


class Recorded(NamedTuple):
    """What a Frame.record_many call changed in the table."""

    inserted: list[Frame]  # frames that got their row: the first final status
    # Frames whose dropped or failed row became stored, with the reason the row had.
    changed: list[tuple[Frame, str]]


# The names are the model's own; every value is a parameter. The conflict target is the
# primary key: (frame_id, captured_at) on PostgreSQL, frame_id on SQLite.
INSERT = "INSERT INTO {table} ({columns}) VALUES {rows} ON CONFLICT ({key}) DO NOTHING"
# The row as it was before this statement (`previous`: the FROM list reads the statement's
# snapshot) gives the reason the metric is labelled with.
UPGRADE = """
    UPDATE {table} SET {updates} FROM {table} AS previous
    WHERE {table}.frame_id = %s AND {table}.captured_at = %s AND {table}.status <> %s
      AND previous.frame_id = {table}.frame_id AND previous.captured_at = {table}.captured_at
    RETURNING previous.reason
"""


def _fields() -> list[Any]:
    return list(Frame._meta.concrete_fields)


def _values(frame: Frame) -> list[Any]:
    return [
        field.get_db_prep_save(getattr(frame, field.attname), connection) for field in _fields()
    ]


def _insert_new(frames: list[Frame]) -> set[str]:
    """INSERT … ON CONFLICT DO NOTHING: the ids of the frames that got their row.

    One frame, the store stage's case, is one statement and nothing else: server-side
    bound (a prepared statement on PostgreSQL: parsed and planned once per connection), no
    transaction around it, nothing returned (the row count says whether it was new).
    """
    if not frames:
        return set()
    columns = [connection.ops.quote_name(field.column) for field in _fields()]
    row = "(" + ", ".join(["%s"] * len(columns)) + ")"
    postgresql = connection.vendor == "postgresql"
    sql = INSERT.format(  # noqa: S608
        table=Frame._meta.db_table,
        columns=", ".join(columns),
        rows=", ".join([row] * len(frames)),
        key="frame_id, captured_at" if postgresql else "frame_id",
    )
    params = [value for frame in frames for value in _values(frame)]
    if len(frames) == 1:
        with _bound_cursor() as cursor:
            cursor.execute(sql, params)
            return {frames[0].frame_id} if cursor.rowcount == 1 else set()
    with connection.cursor() as cursor:  # a batch: its rows say which frames were new
        cursor.execute(sql + " RETURNING frame_id", params)
        return {frame_id for (frame_id,) in cursor.fetchall()}


def _upgrade_to_stored(frame: Frame) -> str | None:
    """A stored record replaces a dropped or failed row: the reason the row had, or None
    when the row was stored already (a redelivered store changes nothing)."""
    columns = [connection.ops.quote_name(field.column) for field in _fields()]
    table = Frame._meta.db_table
    params = [*_values(frame), frame.frame_id, frame.captured_at, FrameStatus.STORED.value]
    if connection.vendor != "postgresql":  # SQLite: RETURNING sees only the target table
        with transaction.atomic():
            previous = Frame.objects.filter(frame_id=frame.frame_id).exclude(status="stored")
            reason = previous.values_list("reason", flat=True).first()
            if reason is not None:
                previous.update(**{f.attname: getattr(frame, f.attname) for f in _fields()})
            return reason
    sql = UPGRADE.format(  # noqa: S608
        table=table, updates=", ".join(f"{column} = %s" for column in columns)
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else str(row[0])


class _bound_cursor:  # noqa: N801 - used like connection.cursor()
    """Django's cursor wrapper (so execute wrappers and query logging see the statement)
    around a psycopg cursor that binds on the server; psycopg prepares its statements when
    the connection's prepare_threshold allows (DATABASES OPTIONS, settings.py)."""

    def __enter__(self) -> Any:
        if connection.vendor != "postgresql":
            self._cursor = connection.cursor()
            return self._cursor
        from django.db.backends.postgresql.base import (  # type: ignore[attr-defined]
            ServerBindingCursor,
        )

        connection.ensure_connection()
        raw = ServerBindingCursor(connection.connection)
        logged = connection.queries_logged
        self._cursor = _LoggedAsWritten(raw, connection) if logged else connection.make_cursor(raw)
        return self._cursor

    def __exit__(self, *exc: object) -> None:
        self._cursor.close()


class _LoggedAsWritten(CursorDebugWrapper):
    """Logs the statement as written: a prepared statement's execution leaves psycopg no
    query text for Django's last_executed_query."""

    def debug_sql(
        self,
        sql: Any = None,
        params: Any = None,
        use_last_executed_query: bool = False,
        many: bool = False,
    ) -> Any:
        return super().debug_sql(sql, params, use_last_executed_query=False, many=many)


def _json(value: Any) -> Any:
    # Django's JSON encoder would cut a datetime to milliseconds: frames need microseconds.
    return value.isoformat() if isinstance(value, datetime) else value
