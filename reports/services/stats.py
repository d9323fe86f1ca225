"""Statistics rollups: compute one range of days' figures from the source tables, and keep the rollup
tables (reports.models.stats) up to date incrementally.

`stats_compute` is the one definition of every figure: the beat task (`stats_refresh`) stores what it
returns for the days touched since its last run, and the selectors call it live for today, so stored
and live figures can never disagree in meaning. See docs/statistics.md.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import models, transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from reports.models import (
    Assessment,
    AuditEvent,
    Capture,
    Case,
    Content,
    Match,
    Referral,
    ReferralEvent,
    Report,
    ReportedUrl,
    StatsAnalystDay,
    StatsDay,
    StatsMonth,
    StatsWatermark,
    Url,
)
from reports.models.choices import ILLEGAL_VERDICTS, AiSuspected, ReferralKind
from reports.models.stats import ALL_COUNTRIES
from reports.selectors.triage import REVEAL_ACTION
from reports.services.audit import audit_record

# Upper edges (hours) of the duration histograms. 24, 72 and 168 are edges, so "removed within 24 h,
# 72 h, 7 days" are exact; a percentile is known to the bucket it falls in (its upper edge).
HOUR_EDGES: tuple[int, ...] = (1, 2, 4, 8, 12, 24, 36, 48, 72, 96, 120, 168, 240, 336, 720)
WATERMARK = "rollup"

Key = tuple[date, str, int, str, str]  # day, source, partner id (0 = public), category, country


def hour_bucket(seconds: float) -> int:
    """The histogram bucket of a duration: the first edge it does not exceed (len(HOUR_EDGES) = longer)."""
    hours = max(0.0, seconds) / 3600
    for index, edge in enumerate(HOUR_EDGES):
        if hours <= edge:
            return index
    return len(HOUR_EDGES)


def day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """[start of `first`, start of the day after `last`) in the hotline's time zone."""
    zone = timezone.get_current_timezone()
    start = timezone.make_aware(datetime.combine(first, time.min), zone)
    end = timezone.make_aware(datetime.combine(last + timedelta(days=1), time.min), zone)
    return start, end


def local_day(moment: datetime) -> date:
    return timezone.localtime(moment).date()


@dataclass
class DayFigures:
    """The figures of one rollup key while they are being summed (a StatsDay before it is stored)."""

    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    hist: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add_hist(self, name: str, key: str, n: int = 1) -> None:
        bucket = self.hist.setdefault(name, {})
        bucket[key] = bucket.get(key, 0) + n

    def add_nested(self, name: str, outer: str, key: str, n: int = 1) -> None:
        bucket = self.hist.setdefault(name, {}).setdefault(outer, {})
        bucket[key] = bucket.get(key, 0) + n


@dataclass
class ComputedDays:
    days: dict[Key, DayFigures]
    analysts: dict[tuple[date, int], dict[str, int]]


# --- Where a fact comes from -------------------------------------------------------------------
# Every figure is attributed to the report it came from, so the filters (source, partner, category)
# mean the same for all of them: a URL's first sighting, a content's first capture's URL, a case's
# report (hash-only partner reports) or else its URL's first sighting. Origins are looked up in
# batches by primary key, in Python: a correlated "first sighting" subquery (ORDER BY id LIMIT 1)
# tempts PostgreSQL into walking the primary key index, which at millions of rows takes minutes.

BATCH = 5000


@dataclass(frozen=True)
class Origin:
    source: str
    partner: int
    category: str
    country: str
    reported_at: datetime


def _batches(values: list[Any], size: int = BATCH) -> Iterable[list[Any]]:
    for offset in range(0, len(values), size):
        yield values[offset : offset + size]


def url_origins(url_ids: Iterable[int]) -> dict[int, Origin]:
    """Each URL's first sighting's report (intake marks it was_known=False), with the URL's hosting country."""
    wanted = sorted(set(url_ids))
    found: dict[int, Origin] = {}
    columns = ("url_id", "report__source", "report__partner_id", "report__category", "url__hosting_country")
    for batch in _batches(wanted):
        rows = ReportedUrl.objects.filter(url_id__in=batch, was_known=False).order_by("pk")
        for url_id, source, partner, category, country, at in rows.values_list(*columns, "report__created_at"):
            found.setdefault(url_id, Origin(source, partner or 0, category, country, at))
    missing = [url_id for url_id in wanted if url_id not in found]
    for batch in _batches(missing):  # rows not made by intake: the earliest sighting stands in
        rows = ReportedUrl.objects.filter(url_id__in=batch).order_by("pk")
        for url_id, source, partner, category, country, at in rows.values_list(*columns, "report__created_at"):
            found.setdefault(url_id, Origin(source, partner or 0, category, country, at))
    return found


def _key(day: date, origin: Origin, country: str | None = None) -> Key:
    return (day, origin.source, origin.partner, origin.category, origin.country if country is None else country)


# --- The figures -------------------------------------------------------------------------------


def stats_compute(*, first: date, last: date) -> ComputedDays:
    """Every rollup figure of the days `first`..`last` (local days), from the source tables."""
    start, end = day_bounds(first, last)
    days: dict[Key, DayFigures] = defaultdict(DayFigures)
    _reports(days, start, end)
    _sightings(days, start, end)
    _contents(days, start, end)
    _cases(days, start, end)
    _assessments(days, start, end)
    _referrals(days, start, end)
    return ComputedDays(days=dict(days), analysts=_analysts(start, end))


def _reports(days: dict[Key, DayFigures], start: datetime, end: datetime) -> None:
    rows = (
        Report.objects.filter(created_at__gte=start, created_at__lt=end)
        .annotate(d=TruncDate("created_at"))
        .order_by()
        .values("d", "source", "partner_id", "category")
        .annotate(n=Count("pk"), ai=Count("pk", filter=Q(ai_suspected=AiSuspected.YES)))
    )
    for row in rows:
        figures = days[(row["d"], row["source"], row["partner_id"] or 0, row["category"], ALL_COUNTRIES)]
        figures.counts["reports"] += row["n"]
        figures.counts["reports_ai_suspected"] += row["ai"]


def _sightings(days: dict[Key, DayFigures], start: datetime, end: datetime) -> None:
    """URLs named by the day's reports, per hosting country: new ones and exact duplicates (URL known
    before), and the reports naming at least one URL in that country."""
    rows = (
        ReportedUrl.objects.filter(report__created_at__gte=start, report__created_at__lt=end)
        .annotate(d=TruncDate("report__created_at"))
        .order_by()
        .values("d", "report__source", "report__partner_id", "report__category", "url__hosting_country")
        .annotate(
            n=Count("pk"),
            known=Count("pk", filter=Q(was_known=True)),
            reports=Count("report_id", distinct=True),
            ai=Count("report_id", distinct=True, filter=Q(report__ai_suspected=AiSuspected.YES)),
        )
    )
    for row in rows:
        key = (
            row["d"],
            row["report__source"],
            row["report__partner_id"] or 0,
            row["report__category"],
            row["url__hosting_country"],
        )
        counts = days[key].counts
        counts["sightings"] += row["n"]
        counts["urls_duplicate"] += row["known"]
        counts["urls_new"] += row["n"] - row["known"]
        counts["reports"] += row["reports"]
        counts["reports_ai_suspected"] += row["ai"]


def _contents(days: dict[Key, DayFigures], start: datetime, end: datetime) -> None:
    """Distinct contents first seen on the day: known (matched to earlier content or a listed hash),
    listed (and on which lists), duplicates of earlier content, AI-indicated by their provenance."""
    contents = list(
        Content.objects.filter(first_seen_at__gte=start, first_seen_at__lt=end)
        .order_by()
        .values_list("pk", "first_seen_at", "ai_indicated")
    )
    for batch in _batches(contents):
        ids = [pk for pk, _at, _ai in batch]
        first_url: dict[int, int] = {}
        for content_id, url_id in (
            Capture.objects.filter(content_id__in=ids).order_by("pk").values_list("content_id", "url_id")
        ):
            first_url.setdefault(content_id, url_id)
        matched: dict[int, tuple[bool, bool, set[int]]] = {}
        for content_id, known_hash, matched_content, hash_list in Match.objects.filter(content_id__in=ids).values_list(
            "content_id", "known_hash_id", "matched_content_id", "known_hash__hash_list_id"
        ):
            listed, duplicate, lists = matched.get(content_id, (False, False, set()))
            if hash_list is not None:
                lists.add(hash_list)
            matched[content_id] = (listed or known_hash is not None, duplicate or matched_content is not None, lists)
        origins = url_origins(first_url.values())
        for pk, seen_at, ai in batch:
            origin = origins.get(first_url.get(pk, 0))
            if origin is None:  # content of no reported URL (not made by intake): nothing to file it under
                continue
            figures = days[_key(local_day(seen_at), origin)]
            counts = figures.counts
            counts["contents"] += 1
            counts["contents_ai"] += int(ai)
            if pk in matched:
                listed, duplicate, lists = matched[pk]
                counts["contents_known"] += 1
                counts["contents_listed"] += int(listed)
                counts["contents_duplicate"] += int(duplicate)
                for hash_list in lists:
                    figures.add_hist("lists", str(hash_list))


def _case_origins(cases: list[tuple[int, int | None, int | None]]) -> dict[int, Origin]:
    """Origin per case id, for (case id, url id, report id) triples."""
    reports = {
        pk: Origin(source, partner or 0, category, "", at)
        for pk, source, partner, category, at in Report.objects.filter(
            pk__in={report for _c, url, report in cases if report is not None}
        ).values_list("pk", "source", "partner_id", "category", "created_at")
    }
    urls = url_origins(url for _c, url, report in cases if report is None and url is not None)
    countries = dict(
        Url.objects.filter(
            pk__in={url for _c, url, report in cases if report is not None and url is not None}
        ).values_list("pk", "hosting_country")
    )
    result: dict[int, Origin] = {}
    for case_id, url, report in cases:
        if report is not None and report in reports:
            origin = reports[report]
            result[case_id] = Origin(
                origin.source, origin.partner, origin.category, countries.get(url, ""), origin.reported_at
            )
        elif url is not None and url in urls:
            result[case_id] = urls[url]
    return result


def _cases(days: dict[Key, DayFigures], start: datetime, end: datetime) -> None:
    """Cases assessed on the day: public-report accuracy (share found illegal) and, for cases an
    analyst assessed (not auto-closed as known), the time from report to assessment."""
    cases = list(
        Case.objects.filter(assessed_at__gte=start, assessed_at__lt=end)
        .order_by()
        .values_list("pk", "url_id", "report_id", "assessed_at", "auto_closed")
    )
    for batch in _batches(cases):
        origins = _case_origins([(pk, url, report) for pk, url, report, _at, _auto in batch])
        illegal = set(
            Assessment.objects.filter(case_id__in=[row[0] for row in batch], verdict__in=ILLEGAL_VERDICTS)
            .values_list("case_id", flat=True)
            .distinct()
        )
        for pk, _url, _report, assessed_at, auto_closed in batch:
            origin = origins.get(pk)
            if origin is None:
                continue
            figures = days[_key(local_day(assessed_at), origin)]
            figures.counts["cases_assessed"] += 1
            figures.counts["cases_illegal"] += int(pk in illegal)
            if not auto_closed:
                figures.add_hist("assess", str(hour_bucket((assessed_at - origin.reported_at).total_seconds())))


def _assessments(days: dict[Key, DayFigures], start: datetime, end: datetime) -> None:
    rows = list(
        Assessment.objects.filter(created_at__gte=start, created_at__lt=end)
        .order_by()
        .values_list("case_id", "case__url_id", "case__report_id", "created_at", "verdict", "virtual")
    )
    for batch in _batches(rows):
        origins = _case_origins(list({(case, url, report) for case, url, report, *_rest in batch}))
        for case, _url, _report, created_at, verdict, virtual in batch:
            origin = origins.get(case)
            if origin is None:
                continue
            counts = days[_key(local_day(created_at), origin)].counts
            counts["assessments"] += 1
            counts[f"verdict_{verdict}"] += 1
            counts[f"virtual_{virtual}"] += 1


def _referrals(days: dict[Key, DayFigures], start: datetime, end: datetime) -> None:
    """Referral outcomes (by the day the referral was made: kind and where it stands now) and notices to
    hosting providers (by the day sent: removed, and how long removal took, per provider too).
    A referral is filed under its case's origin, its country and provider are its first URL's."""
    made = Q(created_at__gte=start, created_at__lt=end)
    sent = Q(kind=ReferralKind.HOSTING_NTD, sent_at__gte=start, sent_at__lt=end)
    referrals = list(
        Referral.objects.filter(made | sent)
        .order_by()
        .values_list(
            "pk", "kind", "status", "created_at", "sent_at", "removed_at", "case_id", "case__url_id", "case__report_id"
        )
    )
    for batch in _batches(referrals):
        first_url: dict[int, tuple[int, str, str]] = {}
        through = Referral.urls.through.objects.filter(referral_id__in=[row[0] for row in batch]).order_by("url_id")
        for referral_id, url_id, country, provider in through.values_list(
            "referral_id", "url_id", "url__hosting_country", "url__hosting_provider"
        ):
            first_url.setdefault(referral_id, (url_id, country, provider))
        case_origins = _case_origins([(row[6], row[7], row[8]) for row in batch if row[6] is not None])
        url_only = url_origins(first_url[row[0]][0] for row in batch if row[6] is None and row[0] in first_url)
        for pk, kind, status, created_at, sent_at, removed_at, case_id, _url, _report in batch:
            url_id, country, provider = first_url.get(pk, (None, "", ""))
            origin = case_origins.get(case_id) if case_id is not None else url_only.get(url_id or 0)
            if origin is None:
                continue
            if start <= created_at < end:
                days[_key(local_day(created_at), origin, country)].add_hist("outcomes", f"{kind}:{status}")
            if kind == ReferralKind.HOSTING_NTD and sent_at is not None and start <= sent_at < end:
                figures = days[_key(local_day(sent_at), origin, country)]
                figures.counts["ntd_sent"] += 1
                figures.add_nested("ntdp", provider or "?", "sent")
                if removed_at is not None:
                    bucket = str(hour_bucket((removed_at - sent_at).total_seconds()))
                    figures.counts["ntd_removed"] += 1
                    figures.add_hist("ntd", bucket)
                    figures.add_nested("ntdp", provider or "?", bucket)


def _analysts(start: datetime, end: datetime) -> dict[tuple[date, int], dict[str, int]]:
    """Per analyst per day: images revealed (the audit trail's reveals) and assessments made."""
    result: dict[tuple[date, int], dict[str, int]] = defaultdict(lambda: {"reveals": 0, "assessments": 0})
    reveals = (
        AuditEvent.objects.filter(action=REVEAL_ACTION, at__gte=start, at__lt=end, actor__isnull=False)
        .annotate(d=TruncDate("at"))
        .order_by()
        .values("d", "actor_id")
        .annotate(n=Count("pk"))
    )
    for row in reveals:
        result[(row["d"], row["actor_id"])]["reveals"] += row["n"]
    assessments = (
        Assessment.objects.filter(created_at__gte=start, created_at__lt=end, analyst__isnull=False)
        .annotate(d=TruncDate("created_at"))
        .order_by()
        .values("d", "analyst_id")
        .annotate(n=Count("pk"))
    )
    for row in assessments:
        result[(row["d"], row["analyst_id"])]["assessments"] += row["n"]
    return dict(result)


# --- Keeping the rollups up to date ------------------------------------------------------------


def touched_days(*, since: datetime) -> set[date]:
    """Local days whose figures may have changed by rows stamped after `since`: each row's own day,
    and for late facts the day they are filed under (a match → its content's day, a removal or a
    referral's new status → the days it was made and sent)."""
    found: set[date] = set()

    def days_of(queryset: Any, column: str) -> None:
        found.update(
            d for d in queryset.annotate(d=TruncDate(column)).order_by().values_list("d", flat=True).distinct() if d
        )

    days_of(Report.objects.filter(created_at__gt=since), "created_at")
    days_of(Content.objects.filter(first_seen_at__gt=since), "first_seen_at")
    days_of(Match.objects.filter(created_at__gt=since, content__isnull=False), "content__first_seen_at")
    days_of(Case.objects.filter(assessed_at__gt=since), "assessed_at")
    days_of(Assessment.objects.filter(created_at__gt=since), "created_at")
    days_of(AuditEvent.objects.filter(at__gt=since, action=REVEAL_ACTION), "at")
    changed = Referral.objects.filter(
        Q(created_at__gt=since)
        | Q(sent_at__gt=since)
        | Q(removed_at__gt=since)
        | Q(pk__in=ReferralEvent.objects.filter(at__gt=since).values("referral_id"))
    )
    days_of(changed, "created_at")
    days_of(changed.filter(sent_at__isnull=False), "sent_at")
    return found


def _ranges(days: Iterable[date], *, max_len: int = 31) -> list[tuple[date, date]]:
    """Consecutive days as (first, last) ranges of at most `max_len` days."""
    ranges: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if ranges and day == ranges[-1][1] + timedelta(days=1) and (day - ranges[-1][0]).days < max_len:
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


@transaction.atomic
def stats_store(*, first: date, last: date) -> int:
    """Recompute and replace the rollup rows of `first`..`last`, and the months they fall in; returns the
    day rows written."""
    computed = stats_compute(first=first, last=last)
    StatsDay.objects.filter(day__gte=first, day__lte=last).delete()
    StatsAnalystDay.objects.filter(day__gte=first, day__lte=last).delete()
    rows = [
        StatsDay(
            day=day, source=source, partner_id=partner, category=category, country=country, hist=f.hist, **f.counts
        )
        for (day, source, partner, category, country), f in computed.days.items()
    ]
    StatsDay.objects.bulk_create(rows, batch_size=2000)
    StatsAnalystDay.objects.bulk_create(
        [StatsAnalystDay(day=day, user_id=user, **counts) for (day, user), counts in computed.analysts.items()],
        batch_size=2000,
    )
    month = first.replace(day=1)
    while month <= last:
        stats_store_month(month=month)
        month = (month + timedelta(days=32)).replace(day=1)
    return len(rows)


COUNTER_COLUMNS = tuple(
    f.name
    for f in StatsDay._meta.get_fields()
    if isinstance(f, models.PositiveIntegerField) and f.name not in ("partner_id",)
)


def merge_hist(target: dict[str, Any], hist: dict[str, Any]) -> None:
    """Sum `hist` into `target` key by key (nested dicts too)."""
    for key, value in hist.items():
        if isinstance(value, dict):
            merge_hist(target.setdefault(key, {}), value)
        else:
            target[key] = target.get(key, 0) + value


@transaction.atomic
def stats_store_month(*, month: date) -> int:
    """Replace the StatsMonth rows of `month` (its first day) by the sums of its StatsDay rows."""
    month = month.replace(day=1)
    following = (month + timedelta(days=32)).replace(day=1)
    days = StatsDay.objects.filter(day__gte=month, day__lt=following)
    dims = ("source", "partner_id", "category", "country")
    sums = {
        (row["source"], row["partner_id"], row["category"], row["country"]): row
        for row in days.order_by().values(*dims).annotate(**{c: Sum(c) for c in COUNTER_COLUMNS})
    }
    hists: dict[tuple[str, int, str, str], dict[str, Any]] = defaultdict(dict)
    for *key, hist in days.exclude(hist={}).values_list(*dims, "hist").iterator(chunk_size=5000):
        merge_hist(hists[tuple(key)], hist)  # type: ignore[index]
    StatsMonth.objects.filter(day=month).delete()
    StatsMonth.objects.bulk_create(
        [
            StatsMonth(
                day=month,
                source=source,
                partner_id=partner,
                category=category,
                country=country,
                hist=hists.get((source, partner, category, country), {}),
                **{c: row[c] or 0 for c in COUNTER_COLUMNS},
            )
            for (source, partner, category, country), row in sums.items()
        ],
        batch_size=2000,
    )
    return len(sums)


REFRESH_LOCK = "hotline:stats-refresh"
REFRESH_LOCK_SECONDS = 1800


def stats_refresh(*, full: bool = False, now: datetime | None = None) -> dict[str, int]:
    """Bring the rollups up to date: recompute the days touched since the watermark (all days if `full`
    or on the first run), then move the watermark. Rows committed late with an earlier stamp are
    caught by re-reading an overlap (HOTLINE_STATS_OVERLAP_SECONDS) before the watermark.

    One refresh at a time (a lock in the cache, Redis in production): a beat run that finds another
    still going skips its turn instead of writing the same days twice."""
    if not cache.add(REFRESH_LOCK, "1", timeout=REFRESH_LOCK_SECONDS):
        return {"days": 0, "rows": 0, "skipped": 1}
    try:
        return _refresh(full=full, now=now or timezone.now())
    finally:
        cache.delete(REFRESH_LOCK)


def _refresh(*, full: bool, now: datetime) -> dict[str, int]:
    mark = StatsWatermark.objects.filter(name=WATERMARK).first()
    if full or mark is None:
        oldest = Report.objects.order_by("created_at").values_list("created_at", flat=True).first()
        first = local_day(oldest) if oldest else local_day(now)
        days = {first + timedelta(days=i) for i in range((local_day(now) - first).days + 1)}
    else:
        days = touched_days(since=mark.value - timedelta(seconds=settings.HOTLINE_STATS_OVERLAP_SECONDS))
    written = 0
    for first_day, last_day in _ranges(days):
        written += stats_store(first=first_day, last=last_day)
    StatsWatermark.objects.update_or_create(name=WATERMARK, defaults={"value": now})
    return {"days": len(days), "rows": written}


def stats_export_record(
    *, user: Any, table: str, filters: Any = None, rows: int | None = None, format: str = "csv"
) -> None:
    """An export of statistics leaves the building: the audit trail says who took which table."""
    details: dict[str, Any] = {"table": table, "format": format}
    if filters is not None:
        details.update(first=filters.first.isoformat(), last=filters.last.isoformat(), rows=rows)
    audit_record(action="stats.exported", actor=user, details=details)
