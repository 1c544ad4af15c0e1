"""python manage.py demo: a synthetic camera through a real worker and the whole chain.

Starts `celery -A detektr worker` (unless --no-worker, when one is already running), runs the
capture command for a few seconds, waits until every captured frame has its final status
(or the wait runs out) and prints what happened to the frames. The worker's output goes to
--worker-log (default var/demo-worker.log in the checkout).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from detektr_project.arguments import positive, size
from frames import report
from frames.models import Frame
from workers.local_worker import WorkerDidNotStart, start_worker, stop
from workers.sources import SourceError, SyntheticSource

DEFAULT_WORKER_LOG = Path(settings.BASE_DIR) / "var" / "demo-worker.log"


class Command(BaseCommand):
    help = "Run a synthetic camera through the pipeline and print a summary."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--camera", default="demo")
        parser.add_argument("--seconds", type=positive(float), default=5.0)
        parser.add_argument("--fps", type=positive(float), default=30.0)
        parser.add_argument("--size", type=size, default="1280x720", help="WIDTHxHEIGHT")
        parser.add_argument("--no-worker", action="store_true",
                            help="use workers that are already running")  # fmt: skip
        parser.add_argument("--wait", type=positive(float), default=60.0,
                            help="seconds to wait for the last frames")  # fmt: skip
        parser.add_argument("--worker-log", type=Path, default=DEFAULT_WORKER_LOG,
                            help="the started worker's output "
                            "(default var/demo-worker.log)")  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        width, height = options["size"]
        source = f"synthetic://?width={width}&height={height}&fps={options['fps']}"
        try:  # before a worker is started for it
            SyntheticSource.from_url(source)
        except SourceError as exc:
            raise CommandError(f"--size or --fps: {exc}") from None
        worker = None if options["no_worker"] else self.start_worker(options["worker_log"])
        try:
            run = self.capture(options["camera"], source, options["seconds"])
            first, last = run["first_sequence"], run["last_sequence"]
            if first is None or last is None:
                raise CommandError(f"the capture run captured no frame: {run}")
            self.stdout.write(
                f"camera {run['camera']}: captured {run['captured']} frames "
                f"(sequence {first}-{last}), published {run['published']}, shed {run['shed']}"
            )
            self.wait_for(options["camera"], first, last, options["wait"])
        finally:
            if worker is not None:
                stop(worker)
        self.summarise(options["camera"], first, last)

    def start_worker(self, log: Path) -> subprocess.Popen[bytes]:
        try:  # a read-only checkout: say so before a worker starts, not with a traceback
            log.parent.mkdir(parents=True, exist_ok=True)
            log.open("ab").close()
        except OSError as exc:
            raise CommandError(
                f"cannot write the worker's log {log}: {exc.strerror}; give --worker-log"
            ) from None
        self.stdout.write(f"starting celery -A detektr worker (log: {log})")
        try:
            return start_worker(["-c", "2"], log, timeout=60)
        except WorkerDidNotStart as exc:
            raise CommandError(str(exc)) from None

    def capture(self, camera: str, source: str, seconds: float) -> dict[str, Any]:
        """Run the capture command; its --json summary."""
        command = [sys.executable, "manage.py", "capture", "--camera", camera,
                   "--source", source, "--duration", str(seconds), "--json"]  # fmt: skip
        result = subprocess.run(
            command, cwd=settings.BASE_DIR, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise CommandError(f"capture failed:\n{result.stderr}")
        summary: dict[str, Any] = json.loads(result.stdout)
        return summary

    def wait_for(self, camera: str, first: int, last: int, timeout: float) -> None:
        frames = Frame.objects.filter(camera_id=camera, sequence__range=(first, last))
        deadline = time.monotonic() + timeout
        while frames.count() < last - first + 1 and time.monotonic() < deadline:
            time.sleep(0.25)

    def summarise(self, camera: str, first: int, last: int) -> None:
        """The frames_report figures for this run's frames."""
        write = self.stdout.write
        run = report.run_report(camera, first, last)
        write(report.describe(run))
        if unfinished := run["lost"]:
            write(
                f"  {unfinished} of the {run['captured']} captured frames have no final status yet"
            )
        sample = Frame.objects.filter(camera_id=camera, sequence__range=(first, last)).first()
        if sample is None:
            return
        write(f"\nlast frame: {sample.frame_id}  trace {sample.trace_id}")
        write(f"  API:    GET /frames/{sample.frame_id}  (python manage.py runserver)")
        write(f"  Jaeger: {settings.JAEGER_UI_URL}/trace/{sample.trace_id}")
        write("  admin:  /admin/frames/frame/  (python manage.py createsuperuser first)")
        write(f"  report: python manage.py frames_report --since 10m --camera {camera}")
