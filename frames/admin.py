"""The admin frame browser: read-only, searchable by exact ids, with a journey per frame."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypedDict, cast

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html

from frame_tracking.identity import CAMERA_ID_PATTERN, FrameID
from frame_tracking.status import FINAL_STATUSES, REASONS, FrameStatus
from frames import report
from frames.forms import WINDOWS, OverviewQuery, timestamp
from frames.models import Frame, FrameQuerySet, StageEpochs

TRACE_ID = re.compile(r"[0-9a-fA-F]{32}")
SEARCH_HELP = "An exact frame id, a 32-hex trace id, or a camera id (its frames)."


def _is_timestamp(value: str) -> bool:
    try:
        timestamp(value)
    except ValidationError:
        return False
    return True


# The query-string parameters the list filters below send, and the values each accepts.
# Nothing else: Django would otherwise filter by any lookup on any field (?error__icontains=,
# ?trace_id__regex=), a full scan of a table with 20M rows a day; and a NUL byte in a value
# makes PostgreSQL refuse the query.
FILTER_PARAMETERS: dict[str, Callable[[str], bool]] = {
    "camera": lambda value: bool(CAMERA_ID_PATTERN.fullmatch(value)),
    "status__exact": lambda value: value in FINAL_STATUSES,
    "reason__exact": lambda value: value in REASONS,
    "captured_at__gte": _is_timestamp,
    "captured_at__lt": _is_timestamp,
    "sampled__exact": lambda value: value in ("0", "1"),
    "test__exact": lambda value: value in ("0", "1"),
}


class Bar(TypedDict):
    stage: str
    wait_left: float  # percent of the frame's whole journey
    wait_width: float
    work_left: float
    work_width: float
    offset_ms: float | None  # when the stage started, after capture
    queue_wait_ms: float | None
    duration_ms: float | None


def waterfall(captured_at: datetime, stages: list[StageEpochs]) -> list[Bar]:
    """Lay the stages out on one time axis from capture to the last end, in percent."""
    origin = captured_at.timestamp()
    times = [t for s in stages for t in s[1:] if t is not None]
    span = max([*times, origin]) - origin or 1.0
    return [_bar(stage, origin, span) for stage in stages]


def _bar(stage: StageEpochs, origin: float, span: float) -> Bar:
    def pct(t: float) -> float:
        return round(max(t - origin, 0.0) / span * 100, 2)

    def ms(a: float | None, b: float | None) -> float | None:
        return round((b - a) * 1000, 2) if a is not None and b is not None else None

    queued, started, ended = stage.queued_at, stage.started_at, stage.ended_at
    bar: Bar = {
        "stage": stage.stage,
        "wait_left": 0.0,
        "wait_width": 0.0,
        "work_left": 0.0,
        "work_width": 0.0,
        "offset_ms": ms(origin, started),
        "queue_wait_ms": ms(queued, started),
        "duration_ms": ms(started, ended),
    }
    if queued is not None and started is not None:
        bar["wait_left"], bar["wait_width"] = pct(queued), pct(started) - pct(queued)
    if started is not None and ended is not None:
        bar["work_left"], bar["work_width"] = pct(started), pct(ended) - pct(started)
    return bar


class EstimatedCountPaginator(Paginator):
    """COUNT(*) over 20M rows takes seconds: the unfiltered changelist uses the planner's
    estimate instead. Filtered lists (an index range) are counted exactly."""

    @cached_property
    def count(self) -> int:
        query = getattr(self.object_list, "query", None)
        if connection.vendor == "postgresql" and query is not None and not query.where:
            with connection.cursor() as cursor:
                # The table's own estimate, or its partitions' (a partitioned parent's is -1).
                cursor.execute(
                    "SELECT sum(greatest(c.reltuples, 0))::bigint FROM pg_class c "
                    "WHERE c.oid = %s::regclass OR c.oid IN "
                    "(SELECT inhrelid FROM pg_inherits WHERE inhparent = %s::regclass)",
                    [Frame._meta.db_table, Frame._meta.db_table],
                )
                row = cursor.fetchone()
            # Small tables: exact is cheap and less surprising.
            if row and row[0] is not None and row[0] > 100_000:
                return int(row[0])
        return super().count


class CameraFilter(admin.SimpleListFilter):
    title = "camera"
    parameter_name = "camera"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(camera, camera) for camera in Frame.objects.camera_ids()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Frame]) -> QuerySet[Frame]:
        return queryset.filter(camera_id=self.value()) if self.value() else queryset


@admin.register(Frame)
class FrameAdmin(admin.ModelAdmin):
    list_display = [
        "frame_id",
        "camera_id",
        "captured_at_ms",
        "status",
        "latency",
        "drop_reason",
        "trace_link",
    ]
    list_filter = [CameraFilter, "status", "reason", "captured_at", "sampled", "test"]
    # Handled by get_search_results as exact, indexed lookups; never LIKE '%…%'.
    search_fields = ["frame_id", "trace_id", "camera_id"]
    search_help_text = SEARCH_HELP
    list_per_page = 50
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    change_list_template = "admin/frames/frame/change_list.html"
    change_form_template = "admin/frames/frame/change_form.html"
    fieldsets = [
        (None, {"fields": ["frame_id", "camera_id", "sequence", "captured", "trace_link", "test"]}),
        ("Outcome", {"fields": ["status", "stage", "reason", "error", "latency", "finished"]}),
        ("Image", {"fields": ["source", "width", "height", "format", "size_bytes"]}),
        ("Processor results", {"fields": ["results_json"]}),
    ]
    readonly_fields = ["captured", "finished", "trace_link", "latency", "results_json"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # frames are facts recorded by the pipeline

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # retention drops whole partitions, not rows

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Frame], search_term: str
    ) -> tuple[QuerySet[Frame], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        if TRACE_ID.fullmatch(term):
            return queryset.filter(trace_id=term.lower()), False
        if CAMERA_ID_PATTERN.fullmatch(term):
            return queryset.filter(camera_id=term), False
        try:
            frame_id = FrameID.parse(term)
        except ValueError:
            messages.warning(request, f"Nothing can match {term[:80]!r}. {SEARCH_HELP}")
            return queryset.none(), False
        return queryset.filter(frame_id=frame_id, captured_at=frame_id.timestamp), False

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> Frame | None:
        """The change page's URL carries the frame id: its capture time names the one
        partition to read (an id that does not parse, a frame recorded as invalid_frame_id,
        is looked up by id alone)."""
        try:
            frame_id = FrameID.parse(object_id)
        except ValueError:
            return super().get_object(request, object_id, from_field)
        return cast(FrameQuerySet, self.get_queryset(request)).with_frame_id(frame_id).first()

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        accepts = FILTER_PARAMETERS.get(lookup)
        return accepts is not None and accepts(value)

    @admin.display(description="latency", ordering="latency_ms")
    def latency(self, frame: Frame) -> str:
        return f"{frame.latency_ms:,.1f} ms" if frame.latency_ms is not None else "-"

    @admin.display(description="captured at (UTC)", ordering="captured_at")
    def captured_at_ms(self, frame: Frame) -> str:
        # To the millisecond: at 30 fps, minutes (Django's default) make every row look alike.
        return frame.captured_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]

    @admin.display(description="captured at (UTC)")
    def captured(self, frame: Frame) -> str:
        return frame.captured_at.isoformat()  # to the microsecond, like the frame id

    @admin.display(description="finished at (UTC)")
    def finished(self, frame: Frame) -> str:
        return frame.finished_at.isoformat()

    @admin.display(description="drop reason")
    def drop_reason(self, frame: Frame) -> str:
        return frame.reason if frame.status == FrameStatus.DROPPED else ""

    @admin.display(description="trace")
    def trace_link(self, frame: Frame) -> str:
        if frame.trace_id and not frame.sampled:
            return format_html('<span class="not-sampled" title="{}">not sampled</span>',
                               f"trace {frame.trace_id} was not exported")  # fmt: skip
        if not frame.jaeger_url:
            return "-"
        return format_html(
            '<a href="{}" target="_blank" rel="noopener" class="jaeger-link">{} ↗</a>',
            frame.jaeger_url,
            frame.trace_id[:8] + "…",
        )

    @admin.display(description="results")
    def results_json(self, frame: Frame) -> str:
        text = json.dumps(frame.results, indent=2, sort_keys=True, ensure_ascii=False)
        return format_html('<pre class="frame-results">{}</pre>', text)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Frame | None = None,
    ) -> HttpResponse:
        if obj is not None:
            context["journey"] = waterfall(obj.captured_at, obj.stage_epochs())
            context["jaeger_url"] = obj.jaeger_url
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self) -> list[URLPattern]:
        overview = path(
            "overview/",
            self.admin_site.admin_view(self.overview_view),
            name="frames_frame_overview",
        )
        return [overview, *super().get_urls()]

    def overview_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = OverviewQuery(request.GET)
        window = form.cleaned_data["window"] if form.is_valid() else "1h"
        until = timezone.now()
        context = {
            **self.admin_site.each_context(request),
            "title": f"Cameras, last {window}",
            "opts": self.model._meta,
            "windows": list(WINDOWS),
            "window": window,
            "since": until - WINDOWS[window],
            "until": until,
            "cameras": report.camera_overview(until - WINDOWS[window], until),
        }
        return TemplateResponse(request, "admin/frames/frame/overview.html", context)
