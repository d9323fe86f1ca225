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
from django.db import transaction
from django.db.models import CharField, Count, DateTimeField, Exists, F, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce, TruncDate
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
    StatsWatermark,
    Url,
)
from reports.models.choices import AiSuspected, ReferralKind, Verdict
from reports.models.stats import ALL_COUNTRIES

# Upper edges (hours) of the duration histograms. 24, 72 and 168 are edges, so "removed within 24 h,
# 72 h, 7 days" are exact; a percentile is known to the bucket it falls in (its upper edge).
HOUR_EDGES: tuple[int, ...] = (1, 2, 4, 8, 12, 24, 36, 48, 72, 96, 120, 168, 240, 336, 720)
ILLEGAL_VERDICTS = (Verdict.BASELINE, Verdict.NATIONAL)
REVEAL_ACTION = "content.revealed"
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
# report (hash-only partner reports) or else its URL's first sighting.


def _first_sighting(url_ref: Any) -> Any:
    return ReportedUrl.objects.filter(url_id=url_ref).order_by("pk")


def _url_origin(url_ref: Any) -> dict[str, Any]:
    first = _first_sighting(url_ref)
    return {
        "o_source": Subquery(first.values("report__source")[:1]),
        "o_partner": Subquery(first.values("report__partner_id")[:1]),
        "o_category": Subquery(first.values("report__category")[:1]),
        "o_country": Subquery(Url.objects.filter(pk=url_ref).values("hosting_country")[:1]),
    }


def _case_origin(prefix: str = "") -> dict[str, Any]:
    """Origin of a case reached by `prefix` ("" for Case itself, "case__" from an assessment)."""
    first = _first_sighting(OuterRef(f"{prefix}url_id"))
    return {
        "o_source": Coalesce(
            F(f"{prefix}report__source"), Subquery(first.values("report__source")[:1]), output_field=CharField()
        ),
        "o_partner": Coalesce(
            F(f"{prefix}report__partner_id"),
            Subquery(first.values("report__partner_id")[:1]),
            output_field=IntegerField(),
        ),
        "o_category": Coalesce(
            F(f"{prefix}report__category"), Subquery(first.values("report__category")[:1]), output_field=CharField()
        ),
        # A hash-only partner report's case has no URL, hence no hosting country.
        "o_country": Coalesce(F(f"{prefix}url__hosting_country"), Value(""), output_field=CharField()),
        "o_reported_at": Coalesce(
            F(f"{prefix}report__created_at"),
            Subquery(first.values("report__created_at")[:1]),
            output_field=DateTimeField(),
        ),
    }


def _key(day: date, row: dict[str, Any]) -> Key:
    return (day, row["o_source"] or "", row["o_partner"] or 0, row["o_category"] or "", row["o_country"] or "")


# --- The figures -------------------------------------------------------------------------------


def stats_compute(*, first: date, last: date) -> ComputedDays:
    """Every rollup figure of the days `first`..`last` (local days), from the source tables."""
    start, end = day_bounds(first, last)
    days: dict[Key, DayFigures] = defaultdict(DayFigures)
    _reports(days, start, end)
    _sightings(days, start, end)
    _contents(days, start, end)
    _list_hits(days, start, end)
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


def _content_origin() -> dict[str, Any]:
    first_url = Subquery(Capture.objects.filter(content_id=OuterRef("pk")).order_by("pk").values("url_id")[:1])
    return {"o_url": first_url}


def _contents(days: dict[Key, DayFigures], start: datetime, end: datetime) -> None:
    """Distinct contents first seen on the day: known (matched to earlier content or a listed hash),
    listed, duplicates of earlier content, AI-indicated by their provenance."""
    matches = Match.objects.filter(content_id=OuterRef("pk"))
    rows = (
        Content.objects.filter(first_seen_at__gte=start, first_seen_at__lt=end)
        .annotate(**_content_origin())
        .annotate(**_url_origin(OuterRef("o_url")))
        .annotate(
            d=TruncDate("first_seen_at"),
            is_known=Exists(matches),
            is_listed=Exists(matches.filter(known_hash__isnull=False)),
            is_duplicate=Exists(matches.filter(matched_content__isnull=False)),
        )
        .order_by()
        .values("d", "o_source", "o_partner", "o_category", "o_country")
        .annotate(
            n=Count("pk"),
            known=Count("pk", filter=Q(is_known=True)),
            listed=Count("pk", filter=Q(is_listed=True)),
            duplicate=Count("pk", filter=Q(is_duplicate=True)),
            ai=Count("pk", filter=Q(ai_indicated=True)),
        )
    )
    for row in rows:
        if row["o_source"] is None:  # content of no reported URL (not made by intake): nothing to file it under
            continue
        counts = days[_key(row["d"], row)].counts
        counts["contents"] += row["n"]
        counts["contents_known"] += row["known"]
        counts["contents_listed"] += row["listed"]
        counts["contents_duplicate"] += row["duplicate"]
        counts["contents_ai"] += row["ai"]


def _list_hits(days: dict[Key, DayFigures], start: datetime, end: datetime) -> None:
    """Per hash list: distinct contents (first seen on the day) that matched one of its entries."""
    first_url = Subquery(Capture.objects.filter(content_id=OuterRef("content_id")).order_by("pk").values("url_id")[:1])
    rows = (
        Match.objects.filter(
            content__first_seen_at__gte=start, content__first_seen_at__lt=end, known_hash__isnull=False
        )
        .annotate(o_url=first_url)
        .annotate(**_url_origin(OuterRef("o_url")))
        .annotate(d=TruncDate("content__first_seen_at"))
        .order_by()
        .values("d", "o_source", "o_partner", "o_category", "o_country", "known_hash__hash_list_id")
        .annotate(n=Count("content_id", distinct=True))
    )
    for row in rows:
        if row["o_source"] is None:
            continue
        days[_key(row["d"], row)].add_hist("lists", str(row["known_hash__hash_list_id"]), row["n"])


def _cases(days: dict[Key, DayFigures], start: datetime, end: datetime) -> None:
    """Cases assessed on the day: public-report accuracy (share found illegal) and, for cases an
    analyst assessed (not auto-closed as known), the time from report to assessment."""
    illegal = Assessment.objects.filter(case_id=OuterRef("pk"), verdict__in=ILLEGAL_VERDICTS)
    rows = (
        Case.objects.filter(assessed_at__gte=start, assessed_at__lt=end)
        .annotate(**_case_origin())
        .annotate(is_illegal=Exists(illegal))
        .values(
            "assessed_at",
            "auto_closed",
            "is_illegal",
            "o_source",
            "o_partner",
            "o_category",
            "o_country",
            "o_reported_at",
        )
        .order_by()
    )
    for row in rows.iterator(chunk_size=5000):
        if row["o_source"] is None:
            continue
        figures = days[_key(local_day(row["assessed_at"]), row)]
        figures.counts["cases_assessed"] += 1
        figures.counts["cases_illegal"] += int(row["is_illegal"])
        if not row["auto_closed"] and row["o_reported_at"] is not None:
            seconds = (row["assessed_at"] - row["o_reported_at"]).total_seconds()
            figures.add_hist("assess", str(hour_bucket(seconds)))


def _assessments(days: dict[Key, DayFigures], start: datetime, end: datetime) -> None:
    origin = _case_origin("case__")
    rows = (
        Assessment.objects.filter(created_at__gte=start, created_at__lt=end)
        .annotate(
            d=TruncDate("created_at"),
            o_source=origin["o_source"],
            o_partner=origin["o_partner"],
            o_category=origin["o_category"],
            o_country=Coalesce(
                F("case__url__hosting_country"), F("url__hosting_country"), Value(""), output_field=CharField()
            ),
        )
        .order_by()
        .values("d", "o_source", "o_partner", "o_category", "o_country", "verdict", "virtual")
        .annotate(n=Count("pk"))
    )
    for row in rows:
        if row["o_source"] is None:
            continue
        counts = days[_key(row["d"], row)].counts
        counts["assessments"] += row["n"]
        counts[f"verdict_{row['verdict']}"] += row["n"]
        counts[f"virtual_{row['virtual']}"] += row["n"]


def _referral_rows(referrals: Iterable[Referral]) -> Iterable[tuple[Referral, dict[str, Any], str]]:
    """Each referral with its origin (its case's, else its first URL's first sighting) and hosting provider."""
    for referral in referrals:
        url = min(referral.urls.all(), key=lambda u: u.pk, default=None)
        case = referral.case
        report = case.report if case is not None and case.report_id else None
        if report is None:
            url_for_origin = url or (case.url if case is not None else None)
            sighting = (
                ReportedUrl.objects.filter(url=url_for_origin).order_by("pk").select_related("report").first()
                if url_for_origin is not None
                else None
            )
            report = sighting.report if sighting is not None else None
        if report is None:
            continue
        country = url.hosting_country if url is not None else ""
        origin = {
            "o_source": report.source,
            "o_partner": report.partner_id,
            "o_category": report.category,
            "o_country": country,
        }
        provider = (url.hosting_provider if url is not None else "") or "?"
        yield referral, origin, provider


def _referrals(days: dict[Key, DayFigures], start: datetime, end: datetime) -> None:
    """Referral outcomes (by the day the referral was made: kind and where it stands now) and notices to
    hosting providers (by the day sent: removed, and how long removal took, per provider too)."""
    base = Referral.objects.select_related("case__report", "case__url").prefetch_related("urls")
    for referral, origin, _provider in _referral_rows(base.filter(created_at__gte=start, created_at__lt=end)):
        days[_key(local_day(referral.created_at), origin)].add_hist("outcomes", f"{referral.kind}:{referral.status}")
    ntds = base.filter(kind=ReferralKind.HOSTING_NTD, sent_at__gte=start, sent_at__lt=end)
    for referral, origin, provider in _referral_rows(ntds):
        figures = days[_key(local_day(referral.sent_at), origin)]
        figures.counts["ntd_sent"] += 1
        figures.add_nested("ntdp", provider, "sent")
        if referral.removed_at is not None:
            bucket = str(hour_bucket((referral.removed_at - referral.sent_at).total_seconds()))
            figures.counts["ntd_removed"] += 1
            figures.add_hist("ntd", bucket)
            figures.add_nested("ntdp", provider, bucket)


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
    """Recompute and replace the rollup rows of `first`..`last`; returns the rows written."""
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
    return len(rows)


def stats_refresh(*, full: bool = False, now: datetime | None = None) -> dict[str, int]:
    """Bring the rollups up to date: recompute the days touched since the watermark (all days if `full`
    or on the first run), then move the watermark. Rows committed late with an earlier stamp are
    caught by re-reading an overlap (HOTLINE_STATS_OVERLAP_SECONDS) before the watermark."""
    now = now or timezone.now()
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
