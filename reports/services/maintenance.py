"""Upkeep that keeps the pipeline honest when messages are lost (a broker restart, a killed worker
past its visibility timeout, a crash between commit and enqueue)."""

from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Exists, OuterRef
from django.utils import timezone

from reports.models import Content, Report, SubmittedHash, Url
from reports.models.choices import FetchStatus
from reports.tasks.fetching import enqueue_fetch
from reports.tasks.matching import enqueue_contents_match, enqueue_report_hashes_match

SWEEP_BATCH = 5000


def sweep_stuck_work() -> dict[str, int]:
    """Queue again what has waited longer than HOTLINE_SWEEP_AFTER_SECONDS: pending URLs, unmatched
    content, unmatched partner hashes. Tasks are idempotent, so a duplicate costs only work."""
    cutoff = timezone.now() - timedelta(seconds=settings.HOTLINE_SWEEP_AFTER_SECONDS)
    urls = list(
        Url.objects.filter(fetch_status=FetchStatus.PENDING, first_seen_at__lt=cutoff)
        .filter(next_fetch_at__isnull=True)
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    ) + list(
        Url.objects.filter(fetch_status=FetchStatus.PENDING, next_fetch_at__lt=timezone.now()).values_list(
            "pk", flat=True
        )[:SWEEP_BATCH]
    )
    contents = list(
        Content.objects.filter(matched_at__isnull=True, first_seen_at__lt=cutoff).values_list("pk", flat=True)[
            :SWEEP_BATCH
        ]
    )
    unmatched = SubmittedHash.objects.filter(report=OuterRef("pk"), matched_at__isnull=True)
    reports = list(
        Report.objects.filter(Exists(unmatched), created_at__lt=cutoff).values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    enqueue_fetch(dict.fromkeys(urls))
    enqueue_contents_match(contents)
    enqueue_report_hashes_match(reports)
    return {"urls": len(set(urls)), "contents": len(contents), "reports": len(reports)}


HEARTBEAT_KEY = "heartbeat:{queue}"


def heartbeat_record(*, queue: str, now: float | None = None) -> None:
    """Note that a worker of `queue` has just run a task (reports.selectors.health reads it)."""
    # Kept well past the age /healthz accepts, so that a stale heartbeat reads as "late", not "never".
    cache.set(HEARTBEAT_KEY.format(queue=queue), now if now is not None else time.time(), timeout=24 * 3600)
