"""python manage.py send_test_frame [--camera canary] [--traceparent …] [--timeout 30]

Sends one marked test frame through the live pipeline (workers/canary.py), waits for its
row and prints its frame id, trace id, journey and Jaeger link. Exit 0 when it arrived
complete (stored, every stage on its journey; with --check-trace also its whole trace in
Jaeger), otherwise non-zero with the reason:
  1 it arrived, but dropped or failed, or its trace is incomplete
  2 it did not arrive within --timeout
  3 no worker consumes one of the stage queues (nothing was sent)
  4 Redis, the broker or the database is unreachable, or Jaeger with --check-trace
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError
from kombu.exceptions import OperationalError as BrokerError

from detektr_project.arguments import positive
from frame_tracking import TraceContext
from frame_tracking.completeness import judge
from frame_tracking.identity import CAMERA_ID_PATTERN, FrameID
from frame_tracking.jaeger import JaegerClient, JaegerError
from frame_tracking.status import FrameStatus
from frame_tracking.telemetry import configure_tracing, shutdown_tracing
from frames.analyzer import journey_lines
from frames.models import Frame
from tasks import queues
from workers.canary import send_test_frame, stage_consumers

ARRIVED_INCOMPLETE, TIMED_OUT, NO_WORKER, UNREACHABLE = 1, 2, 3, 4
UNAVAILABLE = (redis.RedisError, BrokerError, OSError)


class Outcome(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


class Command(BaseCommand):
    help = "Send a test frame through the live pipeline and check that it arrives complete."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--camera", default="canary", help="camera id (default canary)")
        parser.add_argument("--traceparent", help="W3C traceparent to hang the frame's trace on")
        parser.add_argument("--timeout", type=positive(float), default=30.0,
                            help="seconds (default 30)")  # fmt: skip
        parser.add_argument("--check-trace", action="store_true",
                            help="also wait for its complete trace in Jaeger")  # fmt: skip
        parser.add_argument("--jaeger-url", help="Jaeger's query API (default JAEGER_QUERY_URL)")
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        if not CAMERA_ID_PATTERN.fullmatch(options["camera"]):
            raise CommandError(f"--camera {options['camera']!r}: use 1-64 of [A-Za-z0-9.-]")
        traceparent = options["traceparent"]
        if traceparent is not None and not TraceContext.from_headers(traceparent).is_valid():
            raise CommandError(f"--traceparent {traceparent!r}: not a W3C traceparent")
        result: dict[str, Any] = {"ok": False}
        try:
            self.run(options, result)
            result["ok"] = True
            code = 0
        except Outcome as outcome:
            result["reason"], code = str(outcome), outcome.code
        self.report(result, options["json"])
        if code:
            sys.exit(code)

    def run(self, options: dict[str, Any], result: dict[str, Any]) -> None:
        deadline = time.monotonic() + options["timeout"]
        try:
            consumers = stage_consumers(timeout=min(2.0, options["timeout"]))
        except UNAVAILABLE as exc:
            raise Outcome(UNREACHABLE, f"the broker is unreachable: {exc}") from None
        if consumers.missing:
            raise Outcome(NO_WORKER, f"no worker consumes the {', '.join(consumers.missing)} "
                          f"queue; nothing sent ({consumers.describe()})")  # fmt: skip
        configure_tracing(default_service_name="detektr-canary")
        try:
            meta = send_test_frame(options["camera"], options["traceparent"])
            context = meta.trace_context
            result.update(frame_id=str(meta.frame_id), sampled=bool(context and context.sampled),
                          trace_id=context.trace_id if context else "")  # fmt: skip
            frame = self.wait_for_row(FrameID.parse(meta.frame_id), deadline)
        except UNAVAILABLE as exc:
            raise Outcome(UNREACHABLE, f"Redis or the broker is unreachable: {exc}") from None
        finally:
            # The capture span leaves now, before the trace is looked for. Only after the
            # wait for the row: a collector that is down holds this up to its export timeout.
            shutdown_tracing()
        result.update(frame.to_detail_dict())
        if frame.status != FrameStatus.STORED:
            raise Outcome(ARRIVED_INCOMPLETE, f"it arrived {frame.status}: {frame.reason} at "
                          f"{frame.stage}: {frame.error}")  # fmt: skip
        missing = {"capture", "buffer", "process", "store"} - set(frame.timings)
        if missing:
            raise Outcome(ARRIVED_INCOMPLETE, f"stored without {', '.join(sorted(missing))}")
        if options["check_trace"]:
            result["trace"] = self.check_trace(frame, options, deadline)

    def wait_for_row(self, frame_id: FrameID, deadline: float) -> Frame:
        while True:  # looked for once more at the deadline
            try:
                frame = Frame.objects.with_frame_id(frame_id).first()
            except DatabaseError as exc:
                raise Outcome(UNREACHABLE, f"the database is unreachable: {exc}") from None
            if frame is not None:
                return frame
            if time.monotonic() >= deadline:
                raise Outcome(TIMED_OUT, f"no row for {frame_id} in time; {queue_depths()}")
            time.sleep(0.2)

    def check_trace(self, frame: Frame, options: dict[str, Any], deadline: float) -> str:
        """Wait for the frame's whole trace in Jaeger: spans leave processes in batches."""
        if not frame.sampled:
            return "not sampled: no trace to check"
        jaeger = JaegerClient(options["jaeger_url"] or settings.JAEGER_QUERY_URL)
        parent = options["traceparent"].split("-")[2] if options["traceparent"] else ""
        verdict = "no trace yet"
        while time.monotonic() < deadline:
            try:
                spans = jaeger.trace(frame.trace_id)
            except JaegerError as exc:
                raise Outcome(UNREACHABLE, f"Jaeger: {exc}") from None
            if spans:
                checked = judge(spans, frame_id=frame.frame_id, external_parent=parent)
                if checked.complete:
                    return "complete"
                verdict = checked.describe()
            time.sleep(0.5)
        raise Outcome(ARRIVED_INCOMPLETE, f"stored, but its trace in Jaeger: {verdict}")

    def report(self, result: dict[str, Any], as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps(result, indent=2, default=str))
            return
        if result.get("frame_id"):
            sampled = "sampled" if result.get("sampled") else "not sampled"
            self.stdout.write(f"test frame {result['frame_id']}")
            self.stdout.write(f"trace      {result['trace_id']} ({sampled})")
        if "status" in result:
            self.stdout.write(f"arrived    {result['status']} in {result['latency_ms']:.1f} ms")
            self.stdout.write("\n".join(journey_lines(result)))  # type: ignore[arg-type]
            self.stdout.write(f"Jaeger     {result['jaeger_url'] or 'not sampled: no link'}")
        if "trace" in result:
            self.stdout.write(f"trace      {result['trace']}")
        if result["ok"]:
            self.stdout.write("OK: the test frame went through every stage")
        else:
            self.stderr.write(f"FAILED: {result['reason']}")


def queue_depths() -> str:
    try:
        depths = {queue: queues.depth(queue) for queue in queues.stage_queues()}
    except queues.BROKER_DOWN as exc:
        return f"queue depths unknown ({exc})"
    return "frames waiting: " + ", ".join(f"{q} {n}" for q, n in depths.items())
