"""python manage.py frames_partitions [--ahead 7] [--retention-days N] [--json]

Run it daily (from cron or a systemd timer, on one host): it creates
the frames table's partitions for today and the days ahead and drops the ones older than
FRAME_RETENTION_DAYS. Safe to run at any time and as often as you like.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from detektr_project.arguments import number
from frames import partitions


class Command(BaseCommand):
    help = "Create the frames table's daily partitions ahead; drop those past retention."

    def add_arguments(self, parser: CommandParser) -> None:
        # Bounded as FRAME_PARTITIONS_AHEAD_DAYS and FRAME_RETENTION_DAYS are: a retention of 0
        # or less would drop today's frames.
        parser.add_argument("--ahead", type=number(int, minimum=0, maximum=366),
                            default=settings.FRAME_PARTITIONS_AHEAD_DAYS, metavar="DAYS",
                            help="days of partitions to create after today")  # fmt: skip
        parser.add_argument("--retention-days", type=number(int, minimum=1, maximum=36500),
                            default=settings.FRAME_RETENTION_DAYS, metavar="N",
                            help="keep this many days of frames")  # fmt: skip
        parser.add_argument("--json", action="store_true", help="print what was done as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        done = partitions.maintain(timezone.now(), options["retention_days"], options["ahead"])
        if options["json"]:
            self.stdout.write(json.dumps(asdict(done), default=str))
            return
        self.stdout.write(f"frames older than {done.cutoff.isoformat() if done.cutoff else '-'}")
        self.stdout.write(f"  partitions created: {', '.join(done.created) or 'none'}")
        self.stdout.write(f"  partitions dropped: {', '.join(done.dropped) or 'none'}")
        self.stdout.write(f"  rows deleted: {done.deleted_rows}")
