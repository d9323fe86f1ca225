"""Matching tasks (queue `match`): they run against this worker's in-memory index."""

from __future__ import annotations

from collections.abc import Iterable

from celery import shared_task
from django.conf import settings


@shared_task(acks_late=True, reject_on_worker_lost=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=8)
def match_content(content_id: int) -> int:
    from reports.services.matching import content_match  # services enqueue tasks, so import them late

    return len(content_match(content_id=content_id))


@shared_task(acks_late=True, reject_on_worker_lost=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=8)
def match_report_hashes(report_id: int) -> int:
    from reports.services.matching import report_hashes_match

    return len(report_hashes_match(report_id=report_id))


def enqueue_content_match(content_ids: Iterable[int]) -> None:
    if not settings.HOTLINE_ENQUEUE_TASKS:
        return
    for content_id in content_ids:
        match_content.delay(content_id)


def enqueue_report_hashes_match(report_ids: Iterable[int]) -> None:
    if not settings.HOTLINE_ENQUEUE_TASKS:
        return
    for report_id in report_ids:
        match_report_hashes.delay(report_id)
