"""python manage.py capture --camera cam01 --source rtsp://… [--fps 30]: one camera, one process."""

from __future__ import annotations

import json
import signal
import threading
from dataclasses import asdict
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError
from opentelemetry.instrumentation.celery import CeleryInstrumentor

from detektr_project.arguments import PORT, number, positive
from frame_tracking import metrics
from frame_tracking.identity import CAMERA_ID_PATTERN
from frame_tracking.telemetry import configure_tracing, shutdown_tracing
from workers.capture import CaptureConfig, CaptureWorker
from workers.lease import CameraBusy
from workers.ledger import CaptureStats
from workers.sources import SourceError, open_source, redact


class Command(BaseCommand):
    help = "Read one camera and send every frame through the traced pipeline."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--camera", required=True, help="camera id, e.g. cam01")
        parser.add_argument(
            "--source", required=True,
            help="rtsp://…, http(s)://… (MJPEG), a video file, a device index, or "
            "synthetic://?width=1280&height=720&fps=30",
        )  # fmt: skip
        parser.add_argument("--fps", type=positive(float), help="frames per second to capture")
        parser.add_argument("--frames", type=positive(int), help="stop after this many frames")
        parser.add_argument("--duration", type=positive(float), help="stop after this many seconds")
        parser.add_argument("--metrics-port", type=PORT, default=0,
                            help="serve Prometheus /metrics on this port")  # fmt: skip
        parser.add_argument("--jpeg-quality", type=number(int, minimum=1, maximum=100),
                            default=80, metavar="1..100")  # fmt: skip
        parser.add_argument("--json", action="store_true",
                            help="print the run's summary as JSON (for scripts)")  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        if not CAMERA_ID_PATTERN.fullmatch(options["camera"]):
            raise CommandError(f"--camera {options['camera']!r}: use 1-64 of [A-Za-z0-9.-]")
        try:
            open_source(options["source"])
        except SourceError as exc:
            raise CommandError(str(exc)) from None
        worker = CaptureWorker(
            CaptureConfig(
                camera_id=options["camera"],
                source=options["source"],
                fps=options["fps"],
                frames=options["frames"],
                duration=options["duration"],
                jpeg_quality=options["jpeg_quality"],
            )
        )
        signalled = threading.Event()

        def stop(*_: Any) -> None:
            signalled.set()
            worker.stop.set()

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, stop)
        if options["metrics_port"]:
            # /health answers 503 while the camera is starting, stalled or reconnecting.
            try:
                metrics.serve(options["metrics_port"], health=worker.state.health)
            except OSError as exc:  # taken, or not ours to bind
                raise CommandError(f"--metrics-port {options['metrics_port']}: {exc}") from None
        spool = settings.TRACE_SPOOL_DIR
        if configure_tracing(default_service_name="detektr-capture", spool_dir=spool) is not None:
            CeleryInstrumentor().instrument()  # not for a no-op tracer (OTEL_SDK_DISABLED)
        try:
            stats = worker.run()
        except CameraBusy as exc:
            raise CommandError(str(exc)) from None
        except DatabaseError as exc:  # a camera new to Redis: its last number is in the table
            raise CommandError(f"camera {options['camera']}: the database is unreachable, "
                               f"so its last frame number is unknown: {exc}") from None  # fmt: skip
        finally:
            shutdown_tracing()
        self.stdout.write(json.dumps(asdict(stats)) if options["json"] else describe(stats))
        if worker.lease.lost.is_set():
            raise CommandError(f"camera {stats.camera}: stopped, another process took its lease")
        if not stats.captured and not signalled.is_set():
            # A run that ended by --frames or --duration with nothing to show: a script
            # must not read that as success.
            raise CommandError(f"camera {stats.camera}: captured no frame from "
                               f"{redact(options['source'])}; the log above says why")  # fmt: skip


def describe(stats: CaptureStats) -> str:
    sequences = (
        f"sequence {stats.first_sequence}-{stats.last_sequence}" if stats.captured else "no frame"
    )
    return (
        f"camera {stats.camera}: captured {stats.captured} ({sequences}), "
        f"published {stats.published}, shed {stats.shed}, undelivered {stats.undelivered}, "
        f"expired {stats.expired}, reconnects {stats.reconnects}, "
        f"skipped {stats.skipped} (over --fps), unnumbered {stats.unnumbered} (Redis away)"
    )
