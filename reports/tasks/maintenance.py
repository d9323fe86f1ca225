"""Periodic upkeep (Celery beat): nothing accepted may stay stranded, nothing kept past its time,
and every queue shows that a worker is taking its messages."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True)
def sweep_stuck() -> dict[str, int]:
    from reports.services.maintenance import sweep_stuck_work  # services enqueue tasks, so import them late

    return sweep_stuck_work()


@shared_task(acks_late=True)
def retention() -> dict[str, object]:
    from reports.services.retention import retention_purge

    return retention_purge().as_dict()


@shared_task(ignore_result=True)
def heartbeat(queue: str) -> None:
    """Sent by beat to each queue (routing in CELERY_BEAT_SCHEDULE); the worker that takes it records
    the time, which /healthz reads."""
    from reports.services.maintenance import heartbeat_record

    heartbeat_record(queue=queue)
