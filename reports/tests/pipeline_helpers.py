"""Helpers shared by the pipeline tests (test_pipeline_*.py, test_sweeper_recheck.py).

Every server they talk to is a `SyntheticSite` on a loopback address, serving pictures drawn in
code; nothing here resolves a name or opens a connection beyond loopback.
"""

from __future__ import annotations

import functools
from collections.abc import Collection

from django.conf import settings
from django.db import transaction

from reports.lib.synthetic import VARIANTS, Response, Route, default_routes, encode, scene, variant_bytes
from reports.lib.urls import canonicalize_url
from reports.models import Capture, Case, Content, Url
from reports.services.fetching import FetchOutcome, url_fetch
from reports.services.intake import urls_get_or_create
from reports.services.matching import content_match


def cached_routes(routes: dict[str, Route] | None = None) -> dict[str, Route]:
    """`routes` (the default site's if None) drawing each answer once rather than per request (the
    tests are about the pipeline, not about drawing), plus /img/{1..8}.jpg and their variants served
    from the same cache the tests compare with. Routes whose answer changes must not be cached."""
    cached = {path: functools.cache(route) for path, route in (default_routes() if routes is None else routes).items()}
    for seed in range(1, 9):  # the bytes the tests compare with are the very bytes served
        cached[f"/img/{seed}.jpg"] = lambda seed=seed: Response(body=original_bytes(seed))
        for name in VARIANTS:
            cached[f"/img/{seed}/{name}.jpg"] = lambda seed=seed, name=name: Response(body=variant_of(seed, name))
    return cached


@functools.cache
def original_bytes(seed: int) -> bytes:
    """The bytes /img/{seed}.jpg serves."""
    return encode(scene(seed))


@functools.cache
def variant_of(seed: int, name: str) -> bytes:
    """The bytes /img/{seed}/{name}.jpg serves."""
    return variant_bytes(seed, name)


def url_row(url: str, *, allow_hosts: Collection[str] | None = None) -> Url:
    """The `Url` row intake makes for `url` (canonical form, one sighting), without a report."""
    canonical = canonicalize_url(
        url, allow_hosts=settings.HOTLINE_FETCH_ALLOW_HOSTS if allow_hosts is None else allow_hosts
    )
    with transaction.atomic():
        return urls_get_or_create([canonical])[canonical.url][0]


def fetch(url: str, *, final_attempt: bool = True) -> tuple[Url, FetchOutcome]:
    """Fetch `url` once through the fetch service (no task queue); the row comes back refreshed."""
    row = url_row(url)
    outcome = url_fetch(url_id=row.pk, final_attempt=final_attempt)
    row.refresh_from_db()
    return row, outcome


def fetch_and_match(url: str) -> Url:
    """Fetch `url`, then match every content it found for the first time, as the tasks would."""
    row, outcome = fetch(url)
    for content_id in outcome.new_content_ids:
        content_match(content_id=content_id)
    return row


def contents_of(url: Url) -> list[Content]:
    """The contents captured at `url` (its page and the page's images), first capture first."""
    seen: dict[int, Content] = {}
    for capture in Capture.objects.filter(url=url, content__isnull=False).select_related("content").order_by("pk"):
        assert capture.content is not None
        seen.setdefault(capture.content.pk, capture.content)
    return list(seen.values())


def only_content(url: Url) -> Content:
    found = contents_of(url)
    assert len(found) == 1, found
    return found[0]


def case_of(url: Url) -> Case:
    cases = list(Case.objects.filter(url=url))
    assert len(cases) == 1, cases
    return cases[0]
