"""python manage.py doctor [--json]: check a deployment's prerequisites before trusting it."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from detektr_project.arguments import number
from health.checks import Status, doctor


class Command(BaseCommand):
    help = (
        "Check the database and its migrations, Redis (eviction, persistence), the broker, a "
        "worker per stage queue, worker clocks, the OTLP endpoint, Jaeger's query API and trace "
        "retention. One line per check; exit status 1 when any check FAILs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print the results as JSON")
        parser.add_argument("--jaeger-wait", type=number(float, minimum=0), default=10.0,
                            metavar="SECONDS",
                            help="how long Jaeger may take to show the test span")  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        results = doctor(jaeger_wait=options["jaeger_wait"])
        if options["json"]:
            self.stdout.write(json.dumps([result.to_dict() for result in results], indent=2))
        else:
            width = max(len(result.check) for result in results)
            for result in results:
                line = f"{result.status.value:<4}  {result.check:<{width}}  {result.detail}"
                if result.fix:
                    line += f"\n      {'':<{width}}  fix: {result.fix}"
                self.stdout.write(line)
        failed = [result.check for result in results if result.status is Status.FAIL]
        if failed:
            raise CommandError(f"{len(failed)} check(s) failed: {', '.join(failed)}", returncode=1)
