"""Intake: store reports and their URLs durably, deduplicating URLs by canonical form."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from reports.lib import receipts
from reports.lib.urls import CanonicalUrl
from reports.models import Report, ReportedUrl, Url
from reports.models.choices import ReportSource
from reports.tasks.fetching import enqueue_fetch
from reports.tasks.triage import enqueue_reports_status


@dataclass(frozen=True)
class UrlItem:
    """A URL as the reporter gave it, with its canonical form."""

    submitted: str
    canonical: CanonicalUrl


@dataclass(frozen=True)
class PublicReceipt:
    report: Report
    code: str  # formatted for display
    pin: str  # shown once, never stored


def url_hash(canonical_url: str) -> str:
    return hashlib.sha256(canonical_url.encode("utf-8")).hexdigest()


def dedupe_url_items(items: Iterable[UrlItem]) -> list[UrlItem]:
    """Keep the first of each canonical URL, in order: duplicate lines in one report collapse."""
    seen: set[str] = set()
    unique: list[UrlItem] = []
    for item in items:
        if item.canonical.url not in seen:
            seen.add(item.canonical.url)
            unique.append(item)
    return unique


def urls_get_or_create(canonicals: Sequence[CanonicalUrl]) -> dict[str, tuple[Url, bool]]:
    """Map each canonical URL to its `Url` row and whether it existed before, in a fixed number
    of queries whatever the count, and record one sighting per occurrence in `canonicals`.

    Safe against concurrent writers: the unique `url_hash` decides and `ignore_conflicts` lets the
    loser of a race read the winner's row. The loser recognises that row by its `first_seen_at`
    (not the timestamp it wrote) and counts its sighting on it. Must run inside a transaction.
    """
    occurrences = Counter(c.url for c in canonicals)
    by_hash = {url_hash(c.url): c for c in canonicals}
    if not by_hash:
        return {}
    existing = {row.url_hash: row for row in Url.objects.filter(url_hash__in=by_hash.keys())}
    missing = [h for h in by_hash if h not in existing]
    ours: dict[str, Url] = {}
    if missing:
        now = timezone.now()
        Url.objects.bulk_create(
            [
                Url(
                    canonical_url=by_hash[h].url,
                    url_hash=h,
                    scheme=by_hash[h].scheme,
                    host=by_hash[h].host,
                    first_seen_at=now,
                    last_seen_at=now,
                    sightings=occurrences[by_hash[h].url],
                )
                for h in missing
            ],
            ignore_conflicts=True,
        )
        for row in Url.objects.filter(url_hash__in=missing):
            if row.first_seen_at == now:
                ours[row.url_hash] = row
            else:  # a concurrent report created it first
                existing[row.url_hash] = row
    # Rows that existed get their new sightings; F() keeps concurrent increments correct.
    pks_by_increment: dict[int, list[int]] = defaultdict(list)
    for h, row in existing.items():
        pks_by_increment[occurrences[by_hash[h].url]].append(row.pk)
    for increment, pks in pks_by_increment.items():
        Url.objects.filter(pk__in=pks).update(sightings=F("sightings") + increment, last_seen_at=timezone.now())
    result: dict[str, tuple[Url, bool]] = {}
    for h, canonical in by_hash.items():
        result[canonical.url] = (existing[h], True) if h in existing else (ours[h], False)
    return result


def report_attach_urls(*, report: Report, items: Sequence[UrlItem]) -> list[ReportedUrl]:
    """Link a report to its URLs (already validated and deduplicated)."""
    rows = urls_get_or_create([item.canonical for item in items])
    sightings = [
        ReportedUrl(
            report=report,
            url=rows[item.canonical.url][0],
            submitted_url=item.submitted[: settings.HOTLINE_MAX_URL_LENGTH],
            position=position,
            was_known=rows[item.canonical.url][1],
        )
        for position, item in enumerate(items)
    ]
    return ReportedUrl.objects.bulk_create(sightings)


def _create_with_unique_code(fields: dict[str, object]) -> tuple[Report, str, str]:
    # 50-bit codes practically never collide; if one does, the unique index says so and we retry.
    for _attempt in range(5):
        code, pin = receipts.new_code(), receipts.new_pin()
        try:
            with transaction.atomic():
                report = Report.objects.create(
                    receipt_code=code,
                    pin_digest=receipts.pin_digest(pepper=settings.HOTLINE_PEPPER, code=code, pin=pin),
                    **fields,
                )
            return report, code, pin
        except IntegrityError:
            continue
    raise RuntimeError("could not allocate a unique receipt code")


@transaction.atomic
def report_create_public(
    *,
    url_items: Sequence[UrlItem],
    category: str,
    ai_suspected: str,
    where_found: str,
    description: str = "",
    email: str = "",
) -> PublicReceipt:
    """Store a public report with its URLs and return its receipt. All or nothing."""
    items = dedupe_url_items(url_items)
    if not items:
        raise ValueError("a report needs at least one URL")
    report, code, pin = _create_with_unique_code(
        {
            "source": ReportSource.PUBLIC,
            "category": category,
            "ai_suspected": ai_suspected,
            "where_found": where_found,
            "description": description,
            "email": email,
        }
    )
    sightings = report_attach_urls(report=report, items=items)
    new_url_ids = [sighting.url_id for sighting in sightings if not sighting.was_known]
    transaction.on_commit(lambda: enqueue_fetch(new_url_ids), robust=True)
    if len(new_url_ids) < len(sightings):
        transaction.on_commit(lambda: enqueue_reports_status([report.pk]), robust=True)
    return PublicReceipt(report=report, code=receipts.format_code(code), pin=pin)
