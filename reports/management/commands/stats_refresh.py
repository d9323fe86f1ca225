"""Bring the statistics rollups up to date now (what the beat task does), or rebuild them all."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from reports.services.stats import stats_refresh


class Command(BaseCommand):
    help = (
        "Recompute the statistics rollups for the days touched since the last run; --full rebuilds every day "
        "(after importing data, or after hosting countries were corrected)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--full", action="store_true", help="Rebuild every day from the oldest report.")

    def handle(self, *args: Any, **options: Any) -> None:
        began = time.monotonic()
        result = stats_refresh(full=options["full"])
        if result.get("skipped"):
            self.stdout.write("Another refresh is running; nothing done.")
            return
        self.stdout.write(
            f"Recomputed {result['days']} day(s): {result['rows']} rollup rows in {time.monotonic() - began:.1f} s."
        )
