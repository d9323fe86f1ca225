"""`manage.py run_periodic JOB`: run one of the periodic jobs now, without Celery beat (cron, systemd
timers, a one-off after an outage). The same service functions beat's tasks call."""

from __future__ import annotations

import json
from dataclasses import asdict, is_dataclass
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils.module_loading import import_string

# The one table of periodic jobs: name -> the service function that does the work (called with no
# arguments). A new job is one line here and, for beat, one entry in settings.CELERY_BEAT_SCHEDULE
# whose task calls the same function.
PERIODIC_JOBS: dict[str, str] = {
    "sweep_stuck": "reports.services.maintenance.sweep_stuck_work",
    "retention": "reports.services.retention.retention_purge",
    "referrals_send_notices": "reports.services.referrals.notices_send_due",
    # Queues one re-check task per referral due (run in-process when there is no broker).
    "referrals_recheck": "reports.tasks.referrals.recheck_due",
    "referrals_escalate": "reports.services.referrals.referrals_escalate_due",
    # The statistics rollups from their watermark (`manage.py stats_refresh --full` rebuilds them all).
    "stats_refresh": "reports.services.stats.stats_refresh",
}


def _plain(result: Any) -> Any:
    if hasattr(result, "as_dict"):
        return result.as_dict()
    if is_dataclass(result) and not isinstance(result, type):
        return asdict(result)
    return result


class Command(BaseCommand):
    help = "Run a periodic job now (what Celery beat runs): " + ", ".join(sorted(PERIODIC_JOBS)) + "."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("job", nargs="?", choices=sorted(PERIODIC_JOBS), help="the job to run")
        parser.add_argument("--list", action="store_true", help="list the jobs and the functions they call")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["list"]:
            for name, path in sorted(PERIODIC_JOBS.items()):
                self.stdout.write(f"{name}\t{path}")
            return
        name = options["job"]
        if not name:
            raise CommandError("Name a job (or --list): " + ", ".join(sorted(PERIODIC_JOBS)))
        job = import_string(PERIODIC_JOBS[name])
        started = datetime.now().astimezone()
        result = _plain(job())
        self.stdout.write(
            json.dumps({"job": name, "started_at": started.isoformat(), "result": result}, default=str, sort_keys=True)
        )
