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


@shared_task(acks_late=True, reject_on_worker_lost=True)
def fetch_urls(url_ids: list[int]) -> dict[str, int]:
    """Several URLs' first attempts, recorded in one transaction (see services.fetching.urls_fetch).
    A URL whose attempt failed transiently goes on as its own `fetch_url` task, counted as its first
    retry; one not reached in time goes on as its own first attempt."""
    from reports.services.fetching import retry_delay, urls_fetch

    eager = bool(fetch_urls.request.is_eager)
    outcomes = urls_fetch(url_ids=url_ids, final_attempt=eager or settings.HOTLINE_FETCH_MAX_RETRIES == 0)
    states: dict[str, int] = {}
    for outcome in outcomes:
        FETCH_OUTCOMES.labels(state=outcome.state, error=outcome.error or "none").inc()
        states[outcome.state] = states.get(outcome.state, 0) + 1
        if outcome.state == "retry":
            fetch_url.apply_async((outcome.url_id,), countdown=retry_delay(0), retries=1)
        elif outcome.state == "deferred":
            fetch_url.delay(outcome.url_id)
    return states


# Up to this many messages are published from the request; more go as one fan-out message, so
# a partner's batch of 1,000 reports costs the API one publish, not two thousand.
DIRECT_PUBLISH_LIMIT = 8


def _batches(url_ids: list[int]) -> list[list[int]]:
    size = max(1, settings.HOTLINE_FETCH_BATCH_SIZE)
    return [url_ids[start : start + size] for start in range(0, len(url_ids), size)]


@shared_task(acks_late=True, reject_on_worker_lost=True)
def fan_out_fetches(url_ids: list[int]) -> int:
    for batch in _batches(url_ids):
        fetch_urls.delay(batch)
    return len(url_ids)


def enqueue_fetch(url_ids: Iterable[int]) -> None:
    """Queue the first attempt of each URL, HOTLINE_FETCH_BATCH_SIZE URLs per task (a report's URLs
    together, say); more than DIRECT_PUBLISH_LIMIT tasks go out through one fan-out message."""
    ids = list(dict.fromkeys(url_ids))
    if not settings.HOTLINE_ENQUEUE_TASKS or not ids:
        return
    batches = _batches(ids)
    if len(batches) > DIRECT_PUBLISH_LIMIT:
        fan_out_fetches.delay(ids)
        return
    for batch in batches:
        fetch_urls.delay(batch)
