"""scripts/trace_analyzer.py: a frame's journey, trace completeness, latency, slow and failed
frames — from detektr's own rows and Jaeger's query API.

Rows come from the local database or, with --api-url/--token, from a remote detektr's
/frames API. Each frame's row names its trace id, so Jaeger is asked for traces by id; the
slow tag search is used only to look for the rest of a trace that lost stages (a split).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, TextIO, TypedDict
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from tqdm import tqdm

from detektr_project.arguments import PERCENT, number
from detektr_project.startup import CLOSED_STDOUT
from frame_tracking.completeness import (
    STAGES,
    CompletenessReport,
    FrameCheck,
    FrameRef,
    check_frames,
    judge,
    shed_at_camera,
)
from frame_tracking.identity import CAMERA_ID_PATTERN, FrameID
from frame_tracking.jaeger import JaegerClient, JaegerError, JaegerSpan
from frames.forms import moment
from frames.frame_source import FrameSource, LocalFrames, RemoteFrames, SourceUnavailable
from frames.models import FrameDict
from frames.report import percentile_cont

# Exit codes scripts can rely on.
OK, FOUND_PROBLEMS, USAGE, NOT_FOUND, UNAVAILABLE = 0, 1, 2, 3, 4
# --token from the environment rather than the command line, where ps and the shell's history
# show it: one of the tokens the remote detektr's DETEKTR_API_TOKENS accepts.
API_TOKEN_VARIABLE = "DETEKTR_API_TOKEN"
EXIT_CODES = f"""exit codes:
  {OK}  nothing wrong found
  {FOUND_PROBLEMS}  problems found: incomplete traces, slow or failed frames, a frame whose trace
     Jaeger lacks
  {USAGE}  bad arguments
  {NOT_FOUND}  no such frame; or --camera names a camera with no frames in the window (a
     mistyped camera id, or a camera that was not capturing)
  {UNAVAILABLE}  the database, the detektr API or Jaeger could not be read at all
  {CLOSED_STDOUT}  the output was closed before all of it was written (`| head`), as for any
     program that SIGPIPE ends"""
PERCENTILES = (0.5, 0.95, 0.99)
SPLIT_SEARCH_WINDOW = timedelta(minutes=5)  # around capture: where a split's rest can start
MAX_SERVICES_SEARCHED = 20
DEFAULT_TIMEOUT = 5.0
MAX_TIMEOUT = 3600.0  # beyond about 1e9 s, the socket layer itself overflows
MAX_CONCURRENCY = 64
# completeness stops when this many traces in a row could not be read the same way (Jaeger
# refuses connections, a proxy answers 502, it is not Jaeger): a Jaeger that is down would
# otherwise be asked for every trace in the window. Timeouts never stop it: a slow Jaeger
# that answers is walked to the end.
GIVE_UP_AFTER = 10
# A stage that starts before it was queued: the two hosts' clocks disagree.
SKEW = "  ! began before it was queued: clock skew between hosts?"


class Problem(Exception):
    """Ends a command with a message and an exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


# --- arguments ------------------------------------------------------------------------------


def http_url(example: str) -> Callable[[str], str]:
    """An argparse `type=`: an http(s) URL with a host and no query or fragment, without its
    trailing slash (paths are appended to it)."""

    def parse(text: str) -> str:
        problem = f"must be an http(s) URL such as {example}, not {text!r}"
        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018  (raises ValueError for a port that is not one)
        except ValueError:
            raise argparse.ArgumentTypeError(problem) from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise argparse.ArgumentTypeError(problem)
        if parts.query or parts.fragment or "?" in text or "#" in text:
            raise argparse.ArgumentTypeError(f"{text!r}: give the URL without ? or #")
        return text.rstrip("/")

    parse.__name__ = "URL"
    return parse


JAEGER_URL = http_url("http://jaeger:16686")
_DETEKTR_URL = http_url("http://detektr:8000")


def api_url(text: str) -> str:
    """A detektr's base URL. The /frames API lives under it; a URL ending in /frames (the
    API's own address, an easy mistake) is taken to mean the detektr it belongs to."""
    url = _DETEKTR_URL(text)
    return url.removesuffix("/frames") if urlsplit(url).path.endswith("/frames") else url


api_url.__name__ = "URL"


def camera_id(text: str) -> str:
    """A camera id as capture, the API and frames_report accept it; "" means every camera."""
    if text and not CAMERA_ID_PATTERN.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a camera id: must be 1-64 characters from A-Z a-z 0-9 . -"
        )
    return text


camera_id.__name__ = "camera id"


def duration_ms(text: str) -> float:
    """--over: a duration with its unit, ms or s, as milliseconds (0 or more, finite)."""
    lowered = text.strip().lower()
    for unit, factor in (("ms", 1.0), ("s", 1000.0)):
        if lowered.endswith(unit):
            try:
                value = float(lowered[: -len(unit)]) * factor
            except ValueError:
                break
            if not math.isfinite(value) or value < 0:
                raise argparse.ArgumentTypeError(f"{text!r} must be a finite duration, 0 or more")
            return value
    raise argparse.ArgumentTypeError(f"{text!r}: use e.g. 100ms or 1.5s")


duration_ms.__name__ = "duration"


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON instead of text")
    common.add_argument("--api-url", type=api_url,
                        help="read frames from the /frames API of the detektr at this URL "
                        "(e.g. http://detektr:8000) instead of the local database")  # fmt: skip
    common.add_argument("--token",
                        help=f"bearer token for --api-url (default: {API_TOKEN_VARIABLE}, which "
                        "keeps it out of ps and the shell's history)")  # fmt: skip
    common.add_argument("--jaeger-url", type=JAEGER_URL,
                        help="Jaeger's query service (default: JAEGER_QUERY_URL)")  # fmt: skip
    common.add_argument("--jaeger-token", help="bearer token for Jaeger, if behind a proxy")
    common.add_argument("--timeout", type=number(float, above=0, maximum=MAX_TIMEOUT),
                        help=f"seconds per HTTP request (default {DEFAULT_TIMEOUT:g})")  # fmt: skip
    window = argparse.ArgumentParser(add_help=False)
    window.add_argument("--since", help="ISO-8601 or an age: 90s, 15m, 6h, 2d (default 15m)")
    window.add_argument("--until", help="ISO-8601 or an age (default now)")
    window.add_argument("--camera", type=camera_id,
                        help=f"only this camera; exit {NOT_FOUND} when it has no frames in the "
                        "window")  # fmt: skip
    window.add_argument("--include-test", action="store_true", help="count canary frames too")

    main = argparse.ArgumentParser(
        prog="trace_analyzer.py",
        description="Where did my frames go? Journeys, trace completeness, latency.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common, window],
    )
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")
    after_common, after_window = _given_only(common), _given_only(window)

    def command(name: str, help_text: str, windowed: bool = True) -> argparse.ArgumentParser:
        parents = [after_common, after_window] if windowed else [after_common]
        return commands.add_parser(
            name, help=help_text, description=help_text, parents=parents, epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )  # fmt: skip

    search = command("search", "a frame's journey: its trace as a waterfall, or its row", False)
    search.add_argument("frame_id")
    completeness = command("completeness", "how many sampled frames have a complete trace")
    completeness.add_argument("--concurrency", type=number(int, minimum=1,
                              maximum=MAX_CONCURRENCY), default=8,
                              help=f"traces fetched at once, 1-{MAX_CONCURRENCY} "
                              "(default 8)")  # fmt: skip
    completeness.add_argument("--min-complete", type=PERCENT, default=100.0,
                              help="exit 1 below this percentage, 0-100 (default 100)")  # fmt: skip
    command("stats", "p50/p95/p99 per stage (work, queue wait) and end to end, per camera")
    slow = command("slow", "frames slower than --over, and where the time went")
    slow.add_argument("--over", type=duration_ms, default="100ms",
                      help="e.g. 100ms, 1.5s (default 100ms)")  # fmt: skip
    slow.add_argument("--stage", choices=("capture", *STAGES),
                      help="judge this stage's queue wait + work, not end to end")  # fmt: skip
    slow.add_argument("--limit", type=number(int, minimum=1), default=20,
                      help="frames to list, 1 or more (default 20)")  # fmt: skip
    errors = command("errors", "frames that failed, with their error")
    errors.add_argument("--include-dropped", action="store_true", help="list drops too")
    errors.add_argument("--limit", type=number(int, minimum=1), default=50,
                        help="frames to list, 1 or more (default 50)")  # fmt: skip
    return main


def _given_only(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The same options for after the command: there they must not reset what was given
    before it, so they default to "not given"."""
    copy = argparse.ArgumentParser(add_help=False)
    for action in parser._actions:
        kwargs: dict[str, Any] = {"help": action.help, "default": argparse.SUPPRESS}
        if isinstance(action, argparse._StoreTrueAction):
            kwargs["action"] = "store_true"
        else:
            kwargs.update(type=action.type, choices=action.choices)
        copy.add_argument(*action.option_strings, **kwargs)
    return copy


@dataclass(frozen=True)
class Context:
    source: FrameSource
    jaeger: JaegerClient
    out: TextIO
    as_json: bool


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    args = parser().parse_args(argv)  # bad arguments: a usage message and exit 2, before any I/O
    timeout = DEFAULT_TIMEOUT if args.timeout is None else args.timeout
    token = os.environ.get(API_TOKEN_VARIABLE) if args.token is None else args.token  # --token wins
    source: FrameSource = (
        RemoteFrames(args.api_url, token, timeout=max(timeout, 10.0))
        if args.api_url
        else LocalFrames()
    )
    jaeger = JaegerClient(
        args.jaeger_url or settings.JAEGER_QUERY_URL, timeout=timeout, token=args.jaeger_token
    )
    context = Context(source, jaeger, out, args.json)
    try:
        return COMMANDS[args.command](context, args)
    except Problem as problem:
        report_problem(context, str(problem))
        return problem.code
    except SourceUnavailable as exc:
        report_problem(context, f"cannot read frames: {exc}")
        return UNAVAILABLE


def report_problem(context: Context, message: str) -> None:
    if context.as_json:
        emit(context, {"error": message})
    else:
        print(f"trace_analyzer: {message}", file=sys.stderr)


def emit(context: Context, value: Any) -> None:
    context.out.write(json.dumps(value, indent=2, default=str) + "\n")


def write(context: Context, line: str = "") -> None:
    context.out.write(line + "\n")


def window(args: argparse.Namespace) -> tuple[datetime, datetime]:
    since = _moment("--since", getattr(args, "since", None) or "15m")
    until = _moment("--until", getattr(args, "until", None) or "0s")
    if since > until:
        raise Problem("--since must not be later than --until", USAGE)
    return since, until


def _moment(option: str, text: str) -> datetime:
    try:
        return moment(text)
    except ValidationError as exc:
        raise Problem(f"{option} {text!r}: {exc.messages[0]}", USAGE) from None


def frames_in_window(
    context: Context, args: argparse.Namespace, status: str = ""
) -> Iterator[FrameDict]:
    since, until = window(args)
    camera = getattr(args, "camera", None) or ""
    include_test = getattr(args, "include_test", False)
    for frame in context.source.frames(since, until, camera=camera, status=status):
        if include_test or not frame.get("test"):
            yield frame


def require_frames_of_camera(context: Context, args: argparse.Namespace, found: bool) -> None:
    """A --camera with no frames in the window is not a clean window: a mistyped camera id,
    or a camera that was not capturing, must not pass a cron check as "nothing wrong".
    `found`: the command saw frames; when it did not (it may have asked only for failed
    ones), the window is asked once more."""
    camera = getattr(args, "camera", None)
    if camera and not found and next(frames_in_window(context, args), None) is None:
        since, until = window(args)
        raise Problem(no_frames_of_camera(camera, since.isoformat(), until.isoformat()), NOT_FOUND)


def no_frames_of_camera(camera: str, since: str, until: str) -> str:
    """What trace_analyzer and frames_report say, exiting NOT_FOUND, for such a --camera."""
    return (
        f"no frames of camera {camera!r} from {since} to {until}: is the camera id right, "
        "and was it capturing?"
    )


# --- search ---------------------------------------------------------------------------------


def search(context: Context, args: argparse.Namespace) -> int:
    try:
        frame_id = FrameID.parse(args.frame_id)
    except ValueError as exc:
        raise Problem(f"{args.frame_id!r} is not a frame id: {exc}", USAGE) from None
    frame = context.source.frame(frame_id)
    if frame is None:
        raise Problem(f"no frame {frame_id}", NOT_FOUND)
    spans, why, unreadable = fetch_for_search(context, frame)
    verdict = (
        judge(spans, frame_id=frame["frame_id"],
              shed_at_camera=shed_at_camera(frame["status"], frame["stage"]))
        if spans else None
    )  # fmt: skip
    if context.as_json:
        emit(context, {
            "frame": frame,
            "trace": {
                "found": spans is not None, "why_not": why,
                "complete": verdict.complete if verdict else None,
                "problems": list(verdict.problems) if verdict else [],
                "spans": [asdict(span) for span in spans or []],
            },
        })  # fmt: skip
    else:
        print_search(context, frame, spans, why, verdict.describe() if verdict else "")
    if unreadable:
        return UNAVAILABLE  # the row was read; its trace could not be
    if spans is None:
        return FOUND_PROBLEMS if frame["sampled"] else OK
    return OK if verdict and verdict.complete else FOUND_PROBLEMS


def fetch_for_search(
    context: Context, frame: FrameDict
) -> tuple[list[JaegerSpan] | None, str, bool]:
    """The frame's spans, or None and why Jaeger has none; True when Jaeger could not be
    asked at all."""
    if not frame["trace_id"]:
        return None, "the frame has no trace context", False
    if not frame["sampled"]:
        return None, "not sampled: its trace was never exported (the row below is complete)", False
    try:
        spans = context.jaeger.trace(frame["trace_id"])
    except JaegerError as exc:
        return None, f"Jaeger could not be asked ({exc.kind}): {exc}", True
    if spans is None:
        return None, (f"Jaeger has no trace {frame['trace_id']}: it expired, or its spans "
                      "never arrived (collector down, tracer queue full)"), False  # fmt: skip
    return spans, "", False


def print_search(
    context: Context,
    frame: FrameDict,
    spans: list[JaegerSpan] | None,
    why: str,
    verdict: str,
) -> None:
    write(context, f"frame    {frame['frame_id']}")
    write(context, f"camera   {frame['camera_id']}  sequence {frame['sequence']}  "
                   f"captured {frame['captured_at']}")  # fmt: skip
    outcome = frame["status"] + (f" ({frame['reason']} at {frame['stage']})"
                                 if frame["reason"] else "")  # fmt: skip
    latency = frame["latency_ms"]
    write(context, f"status   {outcome}" + (f"  in {latency:.1f} ms" if latency else ""))
    if frame["error"]:
        write(context, f"error    {frame['error']}")
    jaeger_url = frame.get("jaeger_url") or "not sampled"
    write(context, f"trace    {frame['trace_id'] or '-'}  {jaeger_url}")
    write(context)
    if spans:
        write(context, f"trace in Jaeger: {len(spans)} spans, {verdict}")
        for line in waterfall(spans):
            write(context, line)
        return
    write(context, f"no trace from Jaeger: {why}")
    write(context, "the journey detektr recorded:")
    for line in journey_lines(frame):
        write(context, line)


def waterfall(spans: Sequence[JaegerSpan], width: int = 40) -> list[str]:
    """Spans in start order with offset, duration, status and a bar on one time axis; a run
    span's wait in its queue (since it was published) is shown as a gap line before it."""
    origin = min(span.start_ns for span in spans)
    total = max(max(span.end_ns for span in spans) - origin, 1)
    by_id = {span.span_id: span for span in spans}
    lines = [f"{'service':<22} {'operation':<28} {'start ms':>9} {'dur ms':>8}  status  timeline"]
    for span in sorted(spans, key=lambda s: (s.start_ns, s.name)):
        parent = by_id.get(span.parent_span_id)
        if parent is not None and span.name.startswith("run/"):
            wait = (span.start_ns - parent.start_ns) / 1e6
            lines.append(f"{'':<22} {'  · queued':<28} {'':>9} {wait:>8.2f}"
                         + (SKEW if wait < 0 else ""))  # fmt: skip
        left = int((span.start_ns - origin) / total * width)
        bar = "█" * max(1, int((span.end_ns - span.start_ns) / total * width))
        offset = (span.start_ns - origin) / 1e6
        lines.append(
            f"{span.service[:22]:<22} {span.name[:28]:<28} {offset:>9.2f} "
            f"{span.duration_ms:>8.2f}  {span.status:<6}  {' ' * left}{bar}"
        )
    orphans = [s.name for s in spans if s.parent_span_id and s.parent_span_id not in by_id]
    if orphans:
        lines.append(f"orphans (parent missing): {', '.join(orphans)}")
    return lines


def journey_lines(frame: FrameDict) -> list[str]:
    lines = [f"  {'stage':<8} {'queue wait ms':>14} {'work ms':>9}"]
    for stage, wait, work in stage_times(frame):
        skew = SKEW if wait is not None and wait < 0 else ""
        lines.append(f"  {stage:<8} {_num(wait):>14} {_num(work):>9}{skew}")
    return lines


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def stage_times(frame: FrameDict) -> list[tuple[str, float | None, float | None]]:
    """(stage, queue wait ms, work ms) for every stage the frame recorded."""
    timings = frame.get("timings") or {}
    rows = []
    for stage in ("capture", *STAGES):
        timing = timings.get(stage)
        if not isinstance(timing, dict):
            continue
        queued, started, ended = (_float(timing.get(key))
                                  for key in ("queued_at", "started_at", "ended_at"))  # fmt: skip
        rows.append((stage, _diff_ms(queued, started), _diff_ms(started, ended)))
    return rows


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _diff_ms(start: float | None, end: float | None) -> float | None:
    # Epoch seconds as floats carry about a microsecond: round to it.
    return None if start is None or end is None else round((end - start) * 1000, 3)


# --- completeness ---------------------------------------------------------------------------


def completeness(context: Context, args: argparse.Namespace) -> int:
    frames = list(frames_in_window(context, args))
    require_frames_of_camera(context, args, bool(frames))
    captured_at = {frame["frame_id"]: frame["captured_at"] for frame in frames}
    services = cache(lambda: context.jaeger.services()[:MAX_SERVICES_SEARCHED])

    def find_rest(frame: FrameRef) -> list[JaegerSpan]:
        return find_elsewhere(context.jaeger, services(), frame, captured_at[frame["frame_id"]])

    refs = [_ref(frame) for frame in frames]
    report = CompletenessReport()
    sampled = sum(1 for ref in refs if ref["sampled"])
    fetch = TraceFetcher(context.jaeger)
    checks = check_frames(refs, fetch, find_elsewhere=find_rest, concurrency=args.concurrency)
    done = 0
    with tqdm(total=sampled, unit="trace", desc="traces", file=sys.stderr, disable=None,
              leave=False) as progress:  # fmt: skip
        try:
            for check in checks:
                done += 1
                report.add(check)
                if check.frame["sampled"]:
                    progress.update()
        except GaveUp:  # the traces not asked for: check_frames cancelled them
            gave_up = _give_up(context, report, refs[done:], fetch.gave_up)
            print_completeness(context, report, gave_up, brief=report.checked == 0)
            return UNAVAILABLE
    if report.checked == 0 and report.unreadable:
        problem = f"Jaeger at {context.jaeger.base_url} could not be read"
        print_completeness(context, report, problem)
        return UNAVAILABLE
    print_completeness(context, report)
    pct = report.complete_pct
    ok = report.unreadable == 0 and (pct is None or pct >= args.min_complete)
    return OK if ok else FOUND_PROBLEMS


class GaveUp(Exception):
    """Jaeger failed the same way too many times in a row: it is not asked any more."""


class TraceFetcher:
    """JaegerClient.trace for completeness's threads, with two changes: an error does not name
    the trace (the same failure for every trace is one line in the report), and once
    GIVE_UP_AFTER answers in a row failed alike, other than by a timeout, it raises GaveUp
    instead of asking (connections refused, a proxy's 502, a server that is not Jaeger).
    Counted as the answers come, so that no more than the traces in flight are asked after."""

    def __init__(self, jaeger: JaegerClient) -> None:
        self.jaeger = jaeger
        self.lock = threading.Lock()
        self.failure = ""  # "kind: message" of the answers in a row that failed alike
        self.streak = 0
        self.gave_up = ""  # the failure it gave up on

    def __call__(self, trace_id: str) -> list[JaegerSpan] | None:
        if self.gave_up:
            raise GaveUp(self.gave_up)
        try:
            spans = self.jaeger.trace(trace_id)
        except JaegerError as exc:
            error = JaegerError(exc.kind, str(exc).replace(trace_id, "<trace id>"))
            # A timeout is a slow Jaeger, not a broken one: it is waited for, every trace.
            self._count("" if exc.kind == "timeout" else f"{exc.kind}: {error}")
            raise error from None
        self._count("")
        return spans

    def _count(self, failure: str) -> None:
        with self.lock:
            if not failure:
                self.streak = 0
            elif failure == self.failure:
                self.streak += 1
            else:
                self.streak = 1
            self.failure = failure
            if self.streak >= GIVE_UP_AFTER and not self.gave_up:
                self.gave_up = failure


def _give_up(
    context: Context, report: CompletenessReport, rest: list[FrameRef], failure: str
) -> str:
    """Count the frames not yet asked for as not checked; the one line that says why."""
    not_asked = 0
    for ref in rest:
        if ref["sampled"]:
            not_asked += 1
            report.add(FrameCheck(ref, None, "not asked: Jaeger could not be read", "skipped"))
        else:
            report.add(FrameCheck(ref, None))
    return (
        f"Jaeger at {context.jaeger.base_url} could not be read ({failure}); gave up after "
        f"{GIVE_UP_AFTER} traces in a row, {not_asked} more sampled frames not asked"
    )


def _ref(frame: FrameDict) -> FrameRef:
    return {
        "frame_id": frame["frame_id"],
        "camera_id": frame["camera_id"],
        "trace_id": frame["trace_id"],
        "status": frame["status"],
        "stage": frame["stage"],
        "sampled": bool(frame.get("sampled")),
    }


def find_elsewhere(
    jaeger: JaegerClient, services: list[str], frame: FrameRef, captured_at: str
) -> list[JaegerSpan]:
    """Spans tagged with the frame's id in traces other than its own (a tag search per
    service: slow, so done only for frames whose trace lacks stages)."""
    start = datetime.fromisoformat(captured_at)
    found: list[JaegerSpan] = []
    for service in services:
        for trace in jaeger.find_traces(
            service, {"frame.id": frame["frame_id"]},
            start - timedelta(seconds=5), start + SPLIT_SEARCH_WINDOW,
        ):  # fmt: skip
            found.extend(span for span in trace if span.trace_id != frame["trace_id"])
    return found


def print_completeness(
    context: Context, report: CompletenessReport, error: str = "", brief: bool = False
) -> None:
    """The report; with `brief`, in text, only the error (nothing was checked)."""
    if context.as_json:
        emit(context, {**report.to_dict(), **({"error": error} if error else {})})
        return
    if error:
        print(f"trace_analyzer: {error}", file=sys.stderr)
    if brief:
        return
    pct = report.complete_pct
    write(context, f"frames in window      {report.frames}")
    write(context, f"  not sampled         {report.not_sampled}  (no trace exported; rows kept)")
    write(context, f"  checked in Jaeger   {report.checked}")
    write(context, f"  complete            {report.complete}"
                   + (f"  ({pct:.2f}%)" if pct is not None else ""))  # fmt: skip
    write(context, f"  missing from Jaeger {report.missing_from_backend}")
    for stage in STAGES:
        if report.missing_stage[stage]:
            write(context, f"  missing {stage:<11} {report.missing_stage[stage]}")
    write(context, f"  orphan spans        {report.orphan_spans} "
                   f"(in {report.frames_with_orphans} frames)")  # fmt: skip
    write(context, f"  split in two        {report.split}")
    if report.unreadable:
        write(context, f"  not checked         {report.unreadable} (Jaeger did not answer)")
        for error, count in report.errors.most_common(3):
            write(context, f"    {count} x {error}")
    for kind, frame_ids in report.examples.items():
        write(context, f"e.g. {kind}: {', '.join(frame_ids)}")


# --- stats, slow, errors --------------------------------------------------------------------


def stats(context: Context, args: argparse.Namespace) -> int:
    cameras: dict[str, dict[str, list[float]]] = {}
    for frame in frames_in_window(context, args):
        series = cameras.setdefault(frame["camera_id"], {})
        for stage, wait, work in stage_times(frame):
            if wait is not None:
                series.setdefault(f"{stage} queue wait", []).append(wait)
            if work is not None:
                series.setdefault(f"{stage} work", []).append(work)
        if frame["status"] == "stored" and frame["latency_ms"] is not None:
            series.setdefault("end to end (stored)", []).append(frame["latency_ms"])
    require_frames_of_camera(context, args, bool(cameras))
    table = {camera: {name: _percentiles(values) for name, values in sorted(series.items(),
                                                                           key=_stage_order)}
             for camera, series in sorted(cameras.items())}  # fmt: skip
    if context.as_json:
        emit(context, {"cameras": table})
        return OK
    if not table:
        write(context, "no frames in this window")
    for camera, rows in table.items():
        write(context, f"camera {camera}")
        write(context, f"  {'':<22} {'frames':>7} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9}")
        for name, row in rows.items():
            write(context, f"  {name:<22} {row['n']:>7} {row['p50']:>9.2f} {row['p95']:>9.2f} "
                           f"{row['p99']:>9.2f}")  # fmt: skip
    return OK


def _stage_order(item: tuple[str, list[float]]) -> tuple[int, str]:
    order = ["capture", *STAGES, "end"]
    return order.index(item[0].split(" ")[0]), item[0]


def _percentiles(values: list[float]) -> dict[str, float]:
    p50, p95, p99 = (percentile_cont(values, f) or 0.0 for f in PERCENTILES)
    return {"n": len(values), "p50": round(p50, 3), "p95": round(p95, 3), "p99": round(p99, 3)}


class StageTime(TypedDict):
    stage: str
    queue_wait_ms: float | None
    work_ms: float | None


class SlowFrame(TypedDict):
    took_ms: float
    frame_id: str
    camera_id: str
    status: str
    stages: list[StageTime]


def slow(context: Context, args: argparse.Namespace) -> int:
    over: float = args.over  # milliseconds (duration_ms)
    found: list[tuple[float, FrameDict]] = []
    seen = False
    for frame in frames_in_window(context, args):
        seen = True
        took = _time_in(frame, args.stage)
        if took is not None and took > over:
            found.append((took, frame))
    require_frames_of_camera(context, args, seen)
    found.sort(key=lambda item: -item[0])
    listed = [_slow_frame(took, frame) for took, frame in found[: args.limit]]
    if context.as_json:
        emit(context, {"over_ms": over, "stage": args.stage, "count": len(found), "frames": listed})
        return FOUND_PROBLEMS if found else OK
    where = f"in {args.stage} (queue wait + work)" if args.stage else "end to end"
    write(context, f"{len(found)} frames took over {over:g} ms {where}")
    for item in listed:
        write(context, f"  {item['took_ms']:>9.1f} ms  {item['frame_id']}  {item['status']}")
        write(context, "               " + " | ".join(map(_stage_time, item["stages"])))
    return FOUND_PROBLEMS if found else OK


def _slow_frame(took: float, frame: FrameDict) -> SlowFrame:
    return {
        "took_ms": round(took, 3),
        "frame_id": frame["frame_id"],
        "camera_id": frame["camera_id"],
        "status": frame["status"],
        "stages": [
            {"stage": stage, "queue_wait_ms": wait, "work_ms": work}
            for stage, wait, work in stage_times(frame)
        ],
    }


def _stage_time(stage: StageTime) -> str:
    wait, work = stage["queue_wait_ms"], stage["work_ms"]
    parts = [
        f"wait {wait:.1f}" if wait is not None else "",
        f"work {work:.1f}" if work is not None else "",
    ]
    return f"{stage['stage']} {' '.join(p for p in parts if p) or '-'}"


def _time_in(frame: FrameDict, stage: str | None) -> float | None:
    if stage is None:
        return frame["latency_ms"] if frame["status"] == "stored" else None
    for name, wait, work in stage_times(frame):
        if name == stage and work is not None:
            return (wait or 0.0) + work
    return None


def errors(context: Context, args: argparse.Namespace) -> int:
    statuses = ["failed", "dropped"] if args.include_dropped else ["failed"]
    found = [f for status in statuses for f in frames_in_window(context, args, status=status)]
    require_frames_of_camera(context, args, bool(found))
    found.sort(key=lambda f: f["captured_at"])
    listed = [{k: f[k] for k in ("frame_id", "camera_id", "status", "reason", "stage", "error")}  # type: ignore[literal-required]
              for f in found[: args.limit]]  # fmt: skip
    if context.as_json:
        emit(context, {"count": len(found), "frames": listed})
    else:
        write(context, f"{len(found)} frames " + " or ".join(statuses))
        for item in listed:
            write(context, f"  {item['frame_id']}  {item['status']} {item['reason']} "
                           f"at {item['stage']}: {item['error']}")  # fmt: skip
    return FOUND_PROBLEMS if found else OK


COMMANDS: dict[str, Callable[[Context, argparse.Namespace], int]] = {
    "search": search,
    "completeness": completeness,
    "stats": stats,
    "slow": slow,
    "errors": errors,
}
