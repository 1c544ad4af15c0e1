"""python manage.py frames_report --since 1h [--until …] [--camera cam01] [--json]"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from frames.forms import CameraReport, ReportQuery


class Command(BaseCommand):
    help = "What happened to every frame: stored, dropped by reason, failed, lost; latency."

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
        report = form.report()
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
            return
        self.stdout.write(f"frames captured from {report['since']} to {report['until']}")
        for camera in report["cameras"]:
            self.stdout.write(describe(camera))
        if not report["cameras"]:
            self.stdout.write("no frames in this window")


def describe(camera: CameraReport) -> str:
    reasons = ", ".join(f"{r} {n}" for r, n in sorted(camera["dropped_by_reason"].items()))
    lines = [
        f"\ncamera {camera['camera_id']}",
        f"  captured {camera['captured']}   ({camera['fps']} fps)",
        f"  stored   {camera['stored']}",
        f"  dropped  {camera['dropped']}" + (f"   ({reasons})" if reasons else ""),
        f"  failed   {camera['failed']}",
        f"  lost     {camera['lost']}   ({camera['loss_pct']}%)",
    ]
    latencies = (camera["p50_latency_ms"], camera["p95_latency_ms"], camera["p99_latency_ms"])
    if None not in latencies:
        p50, p95, p99 = latencies
        lines.append(
            f"  capture->stored latency  p50 {p50:.1f} ms  p95 {p95:.1f} ms  p99 {p99:.1f} ms"
        )
    if camera["gaps"]:
        gaps = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in camera["gaps"])
        lines.append(f"  lost sequence numbers: {gaps}")
    return "\n".join(lines)
