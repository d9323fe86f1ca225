"""Fetch tasks (queue `fetch`)."""

from __future__ import annotations

from collections.abc import Iterable

from celery import shared_task
from django.conf import settings

from reports.lib.metrics import FETCH_OUTCOMES


class TransientFetchError(Exception):
    pass


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,  # bounded by HOTLINE_FETCH_MAX_RETRIES below, so the last try can be recorded as final
)
def fetch_url(self, url_id: int) -> str:  # type: ignore[no-untyped-def]
    from reports.services.fetching import retry_delay, url_fetch  # services enqueue tasks: import late

    attempt = self.request.retries
    final = attempt >= settings.HOTLINE_FETCH_MAX_RETRIES or self.request.is_eager
    outcome = url_fetch(url_id=url_id, final_attempt=final)
    FETCH_OUTCOMES.labels(state=outcome.state, error=outcome.error or "none").inc()
    if outcome.state == "retry":
        raise self.retry(countdown=retry_delay(attempt), exc=TransientFetchError(outcome.error))
    return outcome.state


# Up to this many messages are published from the request; more go as one fan-out message, so
# a partner's batch of 1,000 reports costs the API one publish, not two thousand.
DIRECT_PUBLISH_LIMIT = 8


@shared_task(acks_late=True, reject_on_worker_lost=True)
def fan_out_fetches(url_ids: list[int]) -> int:
    for url_id in url_ids:
        fetch_url.delay(url_id)
    return len(url_ids)


def enqueue_fetch(url_ids: Iterable[int]) -> None:
    ids = list(url_ids)
    if not settings.HOTLINE_ENQUEUE_TASKS or not ids:
        return
    if len(ids) > DIRECT_PUBLISH_LIMIT:
        fan_out_fetches.delay(ids)
        return
    for url_id in ids:
        fetch_url.delay(url_id)
