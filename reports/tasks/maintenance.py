"""Periodic upkeep (queue `default`, Celery beat): nothing accepted may stay stranded."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True)
def sweep_stuck() -> dict[str, int]:
    from reports.services.maintenance import sweep_stuck_work  # services enqueue tasks, so import them late

    return sweep_stuck_work()
