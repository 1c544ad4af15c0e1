"""python manage.py frames_report --since 1h [--until …] [--camera cam01] [--json]"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from frames import report
from frames.analyzer import NOT_FOUND, no_frames_of_camera
from frames.forms import ReportQuery


class Command(BaseCommand):
    help = (
        "What happened to every frame: stored, dropped by reason, failed, lost; latency. Exit "
        f"status {NOT_FOUND} (as trace_analyzer.py's) when --camera has no frames in the window: "
        "a mistyped camera id, or a camera that was not capturing; 1 or 2 for a bad argument, "
        "1 when the database cannot be read."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", required=True, help="ISO-8601 or an age: 90s, 15m, 6h, 2d")
        parser.add_argument("--until", default="", help="ISO-8601 or an age; default now")
        parser.add_argument("--camera", default="", help="only this camera")
        parser.add_argument("--json", action="store_true", help="print the API's JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        form = ReportQuery({key: options[key] for key in ("since", "until", "camera")})
        if not form.is_valid():
            problems = "; ".join(f"--{k}: {' '.join(map(str, v))}" for k, v in form.errors.items())
            raise CommandError(problems.replace("--__all__: ", ""))
        window = report.window_report(**form.cleaned_data)
        camera = form.cleaned_data["camera"]
        if camera and not window["cameras"]:  # a cron check with a typo must not pass
            message = no_frames_of_camera(camera, window["since"], window["until"])
            raise CommandError(message, returncode=NOT_FOUND)
        self.stdout.write(
            json.dumps(window, indent=2) if options["json"] else report.render(window)
        )
