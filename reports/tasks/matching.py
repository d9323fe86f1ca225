"""Matching tasks (queue `match`): they run against this worker's in-memory index."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from celery import shared_task
from celery.signals import worker_process_init
from django.conf import settings

from reports.lib.metrics import MATCHES
from reports.tasks.fetching import DIRECT_PUBLISH_LIMIT

if TYPE_CHECKING:
    from reports.models import Match


def count_matches(rows: Sequence[Match]) -> int:
    """Count the matches a task recorded, by kind (the services return them once committed)."""
    for row in rows:
        MATCHES.labels(kind=row.kind).inc()
    return len(rows)


@worker_process_init.connect
def _warm_match_index(**_kwargs: object) -> None:
    """Load the near-duplicate index when a worker process starts (match workers set
    HOTLINE_WARM_MATCH_INDEX=1; fetch-only workers need not hold it in memory)."""
    if settings.HOTLINE_WARM_MATCH_INDEX:
        from django.db import connection

        from reports.selectors.match_index import get_match_index

        index = get_match_index()
        with index.lock:
            index.catch_up()
        connection.close()  # a forked child must not share its connection with the next one


@shared_task(acks_late=True, reject_on_worker_lost=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=8)
def match_content(content_id: int) -> int:
    from reports.services.matching import content_match  # services enqueue tasks, so import them late

    return count_matches(content_match(content_id=content_id))


@shared_task(acks_late=True, reject_on_worker_lost=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=8)
def match_report_hashes(report_id: int) -> int:
    from reports.services.matching import report_hashes_match

    return count_matches(report_hashes_match(report_id=report_id))


def enqueue_content_match(content_ids: Iterable[int]) -> None:
    if not settings.HOTLINE_ENQUEUE_TASKS:
        return
    for content_id in content_ids:
        match_content.delay(content_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def fan_out_report_hashes_match(report_ids: list[int]) -> int:
    for report_id in report_ids:
        match_report_hashes.delay(report_id)
    return len(report_ids)


def enqueue_report_hashes_match(report_ids: Iterable[int]) -> None:
    ids = list(report_ids)
    if not settings.HOTLINE_ENQUEUE_TASKS or not ids:
        return
    if len(ids) > DIRECT_PUBLISH_LIMIT:
        fan_out_report_hashes_match.delay(ids)
        return
    for report_id in ids:
        match_report_hashes.delay(report_id)
