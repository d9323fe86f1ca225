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
    """One content (kept for messages queued before batches existed; batches do the same work)."""
    from reports.services.matching import content_match  # services enqueue tasks, so import them late

    return count_matches(content_match(content_id=content_id))


@shared_task(acks_late=True, reject_on_worker_lost=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=8)
def match_contents(content_ids: list[int]) -> int:
    """These contents, in one batch (the sweeper's re-queued work)."""
    from reports.services.matching import contents_match

    count_matches(contents_match(content_ids=content_ids))
    return len(content_ids)


def enqueue_contents_match(content_ids: Iterable[int]) -> None:
    """Have exactly `content_ids` matched, in batches, now."""
    ids = list(content_ids)
    if not settings.HOTLINE_ENQUEUE_TASKS:
        return
    size = settings.HOTLINE_MATCH_BATCH_SIZE
    for start in range(0, len(ids), size):
        match_contents.delay(ids[start : start + size])


# Set while a batch is queued and has not started: fetches that commit content meanwhile leave it to
# that batch instead of queueing one each. The timeout only bounds a flag whose publish failed; the
# sweeper queues again whatever stays unmatched.
MATCH_SCHEDULED_KEY = "hotline:match-batch-scheduled"


@shared_task(acks_late=True, reject_on_worker_lost=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=8)
def match_pending_contents() -> int:
    """Match every content still waiting, a batch at a time (HOTLINE_MATCH_BATCH_SIZE)."""
    from django.core.cache import cache

    from reports.services.matching import contents_match, contents_pending_match

    # Cleared before reading, so that content committed from now on queues a batch of its own.
    cache.delete(MATCH_SCHEDULED_KEY)
    size = settings.HOTLINE_MATCH_BATCH_SIZE
    pending = contents_pending_match(limit=size)
    count_matches(contents_match(content_ids=pending))
    if len(pending) >= size:
        match_pending_contents.delay()  # more waiting: let other work in between batches
    return len(pending)


def enqueue_content_match(content_ids: Iterable[int]) -> None:
    """Have `content_ids` matched: by a batch that is already queued, or by one queued now to start
    after HOTLINE_MATCH_BATCH_DELAY seconds, so that it collects what other fetches add meanwhile."""
    if not settings.HOTLINE_ENQUEUE_TASKS or not list(content_ids):
        return
    from django.core.cache import cache

    if match_pending_contents.app.conf.task_always_eager:
        match_pending_contents.delay()  # in-process: at once, nothing to wait for
        return
    delay = settings.HOTLINE_MATCH_BATCH_DELAY
    if cache.add(MATCH_SCHEDULED_KEY, 1, timeout=max(60, int(delay * 10))):
        try:
            match_pending_contents.apply_async(countdown=delay)
        except Exception:
            cache.delete(MATCH_SCHEDULED_KEY)  # let the next fetch try again
            raise


@shared_task(acks_late=True, reject_on_worker_lost=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=8)
def match_report_hashes(report_id: int) -> int:
    from reports.services.matching import report_hashes_match

    return count_matches(report_hashes_match(report_id=report_id))


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
