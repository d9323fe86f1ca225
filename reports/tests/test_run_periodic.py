"""`manage.py run_periodic`: every periodic job also runs without beat, from the command line."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command

from reports.management.commands.run_periodic import PERIODIC_JOBS


@pytest.mark.django_db
@pytest.mark.parametrize("job", sorted(PERIODIC_JOBS))
def test_every_periodic_job_runs_from_the_command(job: str) -> None:
    out = StringIO()

    call_command("run_periodic", job, stdout=out)

    answer = json.loads(out.getvalue())
    assert answer["job"] == job
    assert "result" in answer


def test_every_beat_job_but_the_heartbeats_has_a_command() -> None:
    beat_jobs = {name for name in settings.CELERY_BEAT_SCHEDULE if not name.startswith("heartbeat-")}
    # Beat's names use dashes and say what they do; the commands' names are the jobs' short names.
    names = {
        "sweep-stuck-work": "sweep_stuck",
        "retention-purge": "retention",
        "referrals-send-notices": "referrals_send_notices",
        "referrals-recheck-due": "referrals_recheck",
        "referrals-escalate": "referrals_escalate",
        "refresh-statistics": "stats_refresh",
    }
    assert beat_jobs == set(names)
    assert {names[name] for name in beat_jobs} == set(PERIODIC_JOBS)
