"""Fetch tasks (queue `fetch`)."""

from __future__ import annotations

from collections.abc import Iterable

from celery import shared_task
from django.conf import settings


class TransientFetchError(Exception):
    pass


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,  # bounded by HOTLINE_FETCH_MAX_RETRIES below, so the last try can be recorded as final
)
def fetch_url(self, url_id: int) -> str:  # type: ignore[no-untyped-def]
    from reports.services.fetching import url_fetch  # services enqueue tasks, so import them late

    attempt = self.request.retries
    final = attempt >= settings.HOTLINE_FETCH_MAX_RETRIES or self.request.is_eager
    outcome = url_fetch(url_id=url_id, final_attempt=final)
    if outcome.state == "retry":
        # Exponential backoff: 30 s, 60 s, 120 s … capped at an hour.
        raise self.retry(countdown=min(3600, 30 * 2**attempt), exc=TransientFetchError(outcome.error))
    return outcome.state


def enqueue_fetch(url_ids: Iterable[int]) -> None:
    if not settings.HOTLINE_ENQUEUE_TASKS:
        return
    for url_id in url_ids:
        fetch_url.delay(url_id)
