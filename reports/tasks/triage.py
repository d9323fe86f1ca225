"""Triage tasks (queue `default`)."""

from __future__ import annotations

from collections.abc import Iterable

from celery import shared_task
from django.conf import settings


@shared_task(acks_late=True, reject_on_worker_lost=True)
def refresh_reports_status(report_ids: list[int]) -> int:
    from reports.services.triage import reports_refresh_status  # services enqueue tasks: import late

    reports_refresh_status(report_ids)
    return len(report_ids)


def enqueue_reports_status(report_ids: Iterable[int]) -> None:
    """A report naming URLs Hotline already knows joins their cases' progress (no fetch is queued
    for those URLs, so nothing else would move its status on)."""
    ids = list(dict.fromkeys(report_ids))
    if settings.HOTLINE_ENQUEUE_TASKS and ids:
        refresh_reports_status.delay(ids)
