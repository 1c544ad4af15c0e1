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

from frames import partitions


class Command(BaseCommand):
    help = "Create the frames table's daily partitions ahead; drop those past retention."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--ahead", type=int, default=settings.FRAME_PARTITIONS_AHEAD_DAYS)
        parser.add_argument(
            "--retention-days", type=int, default=settings.FRAME_RETENTION_DAYS, metavar="N"
        )
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
