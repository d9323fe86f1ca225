"""Partners: their API tokens and the reports they submit."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from reports.models import ApiToken, Partner, Report, ReportedUrl, SubmittedHash
from reports.models.choices import ReportSource, TokenScope
from reports.services.intake import UrlItem, urls_get_or_create
from reports.tasks.fetching import enqueue_fetch
from reports.tasks.matching import enqueue_report_hashes_match
from reports.tasks.triage import enqueue_reports_status

TOKEN_PREFIX = "hl_"  # noqa: S105 - a visible prefix, not a secret


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once, never stored


def token_digest(secret: str) -> str:
    # Tokens carry 256 random bits, so a plain SHA-256 is enough: nothing to brute-force.
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _clean_scopes(scopes: Iterable[str] | None) -> list[str]:
    valid = set(TokenScope.values)
    chosen = list(TokenScope.values) if scopes is None else list(dict.fromkeys(scopes))
    unknown = [scope for scope in chosen if scope not in valid]
    if unknown:
        raise ValueError(f"unknown scope(s): {', '.join(unknown)}; valid: {', '.join(sorted(valid))}")
    return chosen


@transaction.atomic
def token_issue(*, partner: Partner, name: str = "", scopes: Iterable[str] | None = None) -> IssuedToken:
    """A new token for `partner` with `scopes` (all scopes when None)."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        partner=partner,
        name=name,
        prefix=secret[:10],
        digest=token_digest(secret),
        scopes=_clean_scopes(scopes),
    )
    return IssuedToken(token=token, secret=secret)


_LAST_USED_RESOLUTION = timedelta(minutes=5)


def token_mark_used(*, token: ApiToken) -> None:
    """Record use coarsely: one write per token per few minutes, not one per request."""
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > _LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now


def token_revoke(*, token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])


@transaction.atomic
def partner_create(
    *, name: str, kind: str, country: str = "", scopes: Iterable[str] | None = None
) -> tuple[Partner, IssuedToken]:
    partner = Partner(name=name, kind=kind, country=country.upper())
    partner.full_clean()
    partner.save()
    return partner, token_issue(partner=partner, name="initial", scopes=scopes)


# --- Partner reports ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PartnerReportInput:
    """One validated partner report (the API layer has checked shapes, URLs and hash formats)."""

    url_items: list[UrlItem]
    hashes: list[tuple[str, str]]  # (algorithm, lower-case hex), deduplicated
    category: str
    ai_suspected: str  # yes / no / unknown
    note: str = ""
    found_at: datetime | None = None
    external_id: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class SubmitResult:
    report: Report
    created: bool


def _replay_key(item: PartnerReportInput) -> tuple[str, str] | None:
    if item.external_id is not None:
        return ("external_id", item.external_id)
    if item.idempotency_key is not None:
        return ("idempotency_key", item.idempotency_key)
    return None


def _existing_reports(partner: Partner, items: Sequence[PartnerReportInput]) -> dict[tuple[str, str], Report]:
    external_ids = {item.external_id for item in items if item.external_id is not None}
    idempotency_keys = {item.idempotency_key for item in items if item.idempotency_key is not None}
    if not external_ids and not idempotency_keys:
        return {}
    found: dict[tuple[str, str], Report] = {}
    query = Report.objects.filter(partner=partner).filter(
        Q(external_id__in=external_ids) | Q(idempotency_key__in=idempotency_keys)
    )
    for report in query:
        if report.external_id is not None:
            found[("external_id", report.external_id)] = report
        if report.idempotency_key is not None:
            found[("idempotency_key", report.idempotency_key)] = report
    return found


def _new_report(partner: Partner, item: PartnerReportInput, now: datetime) -> Report:
    return Report(
        source=ReportSource.PARTNER,
        partner=partner,
        external_id=item.external_id,
        idempotency_key=item.idempotency_key if item.external_id is None else None,
        category=item.category,
        ai_suspected=item.ai_suspected,
        description=item.note,
        found_at=item.found_at,
        created_at=now,
    )


def _store_new(partner: Partner, pending: list[tuple[int, PartnerReportInput]]) -> dict[int, Report]:
    """Insert reports, their URL sightings and hashes in bulk: a fixed number of queries.

    `created_at` is set here rather than left to the column's database default: rows whose values
    are all literals are inserted by PostgreSQL's UNNEST form of bulk_create (one array per column),
    which is far cheaper to build and plan than a DEFAULT placeholder per row.
    """
    if not pending:
        return {}
    now = timezone.now()
    reports = Report.objects.bulk_create([_new_report(partner, item, now) for _, item in pending])
    rows = urls_get_or_create([url.canonical for _, item in pending for url in item.url_items])
    seen_in_batch: set[str] = set()
    sightings: list[ReportedUrl] = []
    hashes: list[SubmittedHash] = []
    for report, (_, item) in zip(reports, pending, strict=True):
        for position, url in enumerate(item.url_items):
            row, existed = rows[url.canonical.url]
            sightings.append(
                ReportedUrl(
                    report=report,
                    url=row,
                    submitted_url=url.submitted,
                    position=position,
                    was_known=existed or url.canonical.url in seen_in_batch,
                    created_at=now,
                )
            )
            seen_in_batch.add(url.canonical.url)
        hashes.extend(
            SubmittedHash(report=report, algorithm=alg, value=value, created_at=now) for alg, value in item.hashes
        )
    ReportedUrl.objects.bulk_create(sightings)
    SubmittedHash.objects.bulk_create(hashes)
    new_url_ids = [sighting.url_id for sighting in sightings if not sighting.was_known]
    hash_report_ids = list(dict.fromkeys(submitted.report_id for submitted in hashes))
    known_url_report_ids = [sighting.report_id for sighting in sightings if sighting.was_known]
    transaction.on_commit(lambda: enqueue_fetch(new_url_ids), robust=True)
    transaction.on_commit(lambda: enqueue_report_hashes_match(hash_report_ids), robust=True)
    transaction.on_commit(lambda: enqueue_reports_status(known_url_report_ids), robust=True)
    return {index: report for report, (index, _) in zip(reports, pending, strict=True)}


def _submit(partner: Partner, items: Sequence[PartnerReportInput]) -> list[SubmitResult]:
    existing = _existing_reports(partner, items)
    results: list[SubmitResult | None] = [None] * len(items)
    first_in_batch: dict[tuple[str, str], int] = {}
    aliases: dict[int, int] = {}
    pending: list[tuple[int, PartnerReportInput]] = []
    for index, item in enumerate(items):
        key = _replay_key(item)
        if key is not None and key in existing:
            results[index] = SubmitResult(report=existing[key], created=False)
        elif key is not None and key in first_in_batch:
            aliases[index] = first_in_batch[key]  # the same report twice in one batch: a replay
        else:
            if key is not None:
                first_in_batch[key] = index
            pending.append((index, item))
    created = _store_new(partner, pending)
    for index, report in created.items():
        results[index] = SubmitResult(report=report, created=True)
    for index, first in aliases.items():
        results[index] = SubmitResult(report=created[first], created=False)
    return [result for result in results if result is not None]


@transaction.atomic
def partner_reports_submit(*, partner: Partner, items: Sequence[PartnerReportInput]) -> list[SubmitResult]:
    """Store partner reports, idempotently, one result per item in order.

    A report whose external id (or idempotency key) this partner has used before is not stored
    again; its result points at the first report with `created=False`. The bulk path runs in a
    savepoint; if a concurrent request stored one of the same ids first, the unique constraint
    stops it and the items are retried one by one so each finds its twin.
    """
    try:
        with transaction.atomic():
            return _submit(partner, items)
    except IntegrityError:
        results: list[SubmitResult] = []
        for item in items:
            try:
                with transaction.atomic():
                    results.extend(_submit(partner, [item]))
            except IntegrityError:
                results.extend(_submit(partner, [item]))
        return results
