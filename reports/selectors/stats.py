"""The coordinators' statistics: read from the rollup tables (reports.models.stats) for past days and
computed live for today, through the one definition of each figure (reports.services.stats).

A page view reads a few thousand small rows whatever the size of the history: see docs/statistics.md.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import Q, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from reports.models import Content, HashList, KnownHash, Partner, StatsAnalystDay, StatsDay, StatsMonth
from reports.models.choices import Category, ReferralKind, ReferralStatus, ReportSource, Verdict
from reports.models.stats import ALL_COUNTRIES
from reports.services.stats import HOUR_EDGES, ComputedDays, DayFigures, merge_hist, stats_compute

REPORT_COLUMNS = ("reports", "reports_ai_suspected")
OTHER_COLUMNS = (
    "sightings",
    "urls_new",
    "urls_duplicate",
    "contents",
    "contents_known",
    "contents_listed",
    "contents_duplicate",
    "contents_ai",
    "assessments",
    "verdict_baseline",
    "verdict_national",
    "verdict_not_illegal",
    "verdict_adult",
    "verdict_unreachable",
    "virtual_real",
    "virtual_ai",
    "virtual_drawn",
    "virtual_unknown",
    "cases_assessed",
    "cases_illegal",
    "ntd_sent",
    "ntd_removed",
)
COLUMNS = REPORT_COLUMNS + OTHER_COLUMNS
GRAINS = ("day", "week", "month")
# Shares of notices with the content removed within these many hours of the notice.
REMOVAL_WITHIN_HOURS = (24, 72, 168)


@dataclass(frozen=True)
class StatsFilters:
    first: date
    last: date
    source: str = ""  # "" all, "public", "partner" (all partners) or "partner:<id>"
    category: str = ""
    country: str = ""  # ISO code, "" all; "--" unknown
    grain: str = "week"

    @property
    def partner_id(self) -> int | None:
        if self.source.startswith("partner:"):
            return int(self.source.split(":", 1)[1])
        return None


def default_filters(*, days: int, today: date | None = None) -> StatsFilters:
    today = today or timezone.localdate()
    return StatsFilters(first=today - timedelta(days=days - 1), last=today)


def source_choices() -> list[tuple[str, str]]:
    """The source filter's options: everything, the public, all partners, each partner."""
    choices = [
        ("", _("All sources")),
        (ReportSource.PUBLIC, _("Public form")),
        (ReportSource.PARTNER, _("All partners")),
    ]
    choices += [(f"partner:{pk}", name) for pk, name in Partner.objects.order_by("name").values_list("pk", "name")]
    return choices


# --- Reading rows, stored and live -------------------------------------------------------------


def _country_value(filters: StatsFilters) -> str | None:
    if not filters.country:
        return None
    return "" if filters.country == "--" else filters.country.upper()


def _narrow(rows: QuerySet[Any], filters: StatsFilters) -> QuerySet[Any]:
    if filters.source in (ReportSource.PUBLIC, ReportSource.PARTNER):
        rows = rows.filter(source=filters.source)
    elif filters.partner_id is not None:
        rows = rows.filter(source=ReportSource.PARTNER, partner_id=filters.partner_id)
    if filters.category:
        rows = rows.filter(category=filters.category)
    country = _country_value(filters)
    if country is not None:
        rows = rows.filter(country=country)
    return rows


def _month_after(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def _stored_parts(filters: StatsFilters, today: date, *, months: bool = True) -> list[QuerySet[Any]]:
    """The stored rows of the period up to yesterday (today is live): whole calendar months from
    StatsMonth (if `months`), the days before and after them from StatsDay."""
    first, last = filters.first, min(filters.last, today - timedelta(days=1))
    if first > last:
        return []
    month_first = first if first.day == 1 else _month_after(first)
    month_last = month_first
    while _month_after(month_last) - timedelta(days=1) <= last:
        month_last = _month_after(month_last)
    # Full months are [month_first, month_last); none if month_last == month_first.
    if not months or month_last == month_first:
        return [_narrow(StatsDay.objects.filter(day__gte=first, day__lte=last), filters)]
    parts = [_narrow(StatsMonth.objects.filter(day__gte=month_first, day__lt=month_last), filters)]
    if first < month_first:
        parts.append(_narrow(StatsDay.objects.filter(day__gte=first, day__lt=month_first), filters))
    if month_last <= last:
        parts.append(_narrow(StatsDay.objects.filter(day__gte=month_last, day__lte=last), filters))
    return parts


def _live_matches(key: tuple[date, str, int, str, str], filters: StatsFilters) -> bool:
    day, source, partner, category, country = key
    if not filters.first <= day <= filters.last:
        return False
    if filters.source in (ReportSource.PUBLIC, ReportSource.PARTNER) and source != filters.source:
        return False
    if filters.partner_id is not None and (source, partner) != (ReportSource.PARTNER, filters.partner_id):
        return False
    if filters.category and category != filters.category:
        return False
    wanted = _country_value(filters)
    return wanted is None or country == wanted


def _row_counts(country: str, counts: dict[str, int], *, by_country: bool, filtered_country: bool) -> dict[str, int]:
    """The counters one row contributes: report counts come from the '*' rows for totals over all
    countries, from the country rows when a country is chosen or rows are grouped by country."""
    use_reports = country != ALL_COUNTRIES if (by_country or filtered_country) else country == ALL_COUNTRIES
    result = {column: counts.get(column, 0) for column in OTHER_COLUMNS}
    for column in REPORT_COLUMNS:
        result[column] = counts.get(column, 0) if use_reports else 0
    return result


@dataclass
class StatsData:
    """The filtered rows' sums, grouped as the dashboard needs them, stored and live merged."""

    by_day: dict[date, dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    by_source: dict[tuple[str, int], dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    by_category: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    by_country: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    # Reports and URLs per day (or month) and source, and per day and category: the volume tables.
    by_day_source: dict[tuple[date, str, int], dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    by_day_category: dict[tuple[date, str], dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    hist: dict[str, Any] = field(default_factory=dict)
    hist_by_country: dict[str, dict[str, Any]] = field(default_factory=lambda: defaultdict(dict))

    def totals(self) -> dict[str, int]:
        total: dict[str, int] = defaultdict(int)
        for counts in self.by_day.values():
            for column, value in counts.items():
                total[column] += value
        return total


def _add(target: dict[str, int], counts: dict[str, Any]) -> None:
    for column in COLUMNS:
        target[column] += counts.get(column) or 0


def _sums(*, filtered_country: bool, by_country: bool = False) -> dict[str, Any]:
    sums: dict[str, Any] = {column: Sum(column) for column in OTHER_COLUMNS}
    for column in REPORT_COLUMNS:
        if by_country or filtered_country:
            sums[column] = Sum(column, filter=~Q(country=ALL_COUNTRIES))
        else:
            sums[column] = Sum(column, filter=Q(country=ALL_COUNTRIES))
    return sums


def _live(filters: StatsFilters, today: date) -> ComputedDays | None:
    """Today's figures, computed from the source tables, if today is in the period.

    Computed for every source, category and country at once and filtered afterwards, so one computation
    serves every view; kept in the cache for HOTLINE_STATS_LIVE_SECONDS, since at a million reports a
    day's computation costs a few hundred milliseconds."""
    if not filters.first <= today <= filters.last:
        return None
    key = f"hotline:stats-live:{today.isoformat()}"
    live = cache.get(key)
    if live is None:
        live = stats_compute(first=today, last=today)
        if settings.HOTLINE_STATS_LIVE_SECONDS > 0:
            cache.set(key, live, timeout=settings.HOTLINE_STATS_LIVE_SECONDS)
    return live


def stats_data(filters: StatsFilters, *, today: date | None = None, live: ComputedDays | None = None) -> StatsData:
    today = today or timezone.localdate()
    filtered_country = bool(filters.country)
    data = StatsData()
    sums = _sums(filtered_country=filtered_country)
    parts = _stored_parts(filters, today)
    # Per month, month rows serve the chart; per day or week, only day rows can.
    series_parts = parts if filters.grain == "month" else _stored_parts(filters, today, months=False)
    volume = {"reports": sums["reports"], "sightings": sums["sightings"]}
    for rows in series_parts:
        for row in rows.order_by().values("day").annotate(**sums):
            _add(data.by_day[row["day"]], row)
        for row in rows.order_by().values("day", "source", "partner_id").annotate(**volume):
            _add_volume(data.by_day_source[(row["day"], row["source"], row["partner_id"])], row)
        for row in rows.order_by().values("day", "category").annotate(**volume):
            _add_volume(data.by_day_category[(row["day"], row["category"])], row)
    for rows in parts:
        for row in rows.order_by().values("source", "partner_id").annotate(**sums):
            _add(data.by_source[(row["source"], row["partner_id"])], row)
        for row in rows.order_by().values("category").annotate(**sums):
            _add(data.by_category[row["category"]], row)
        by_country = rows.exclude(country=ALL_COUNTRIES).order_by().values("country")
        for row in by_country.annotate(**_sums(filtered_country=filtered_country, by_country=True)):
            _add(data.by_country[row["country"]], row)
        for country, hist in rows.exclude(hist={}).values_list("country", "hist").iterator(chunk_size=5000):
            merge_hist(data.hist, hist)
            merge_hist(data.hist_by_country[country], hist)
    if live is not None:
        _add_live(data, filters, live.days, filtered_country)
    return data


def _add_volume(target: dict[str, int], counts: dict[str, Any]) -> None:
    target["reports"] += counts.get("reports") or 0
    target["sightings"] += counts.get("sightings") or 0


def _add_live(
    data: StatsData, filters: StatsFilters, days: dict[tuple[date, str, int, str, str], DayFigures], filtered: bool
) -> None:
    for key, figures in days.items():
        if not _live_matches(key, filters):
            continue
        day, source, partner, category, country = key
        counts = _row_counts(country, figures.counts, by_country=False, filtered_country=filtered)
        _add(data.by_day[day], counts)
        _add_volume(data.by_day_source[(day, source, partner)], counts)
        _add_volume(data.by_day_category[(day, category)], counts)
        _add(data.by_source[(source, partner)], counts)
        _add(data.by_category[category], counts)
        if country != ALL_COUNTRIES:
            _add(data.by_country[country], _row_counts(country, figures.counts, by_country=True, filtered_country=True))
        merge_hist(data.hist, figures.hist)
        merge_hist(data.hist_by_country[country], figures.hist)


# --- Figures from sums -------------------------------------------------------------------------


def share(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def percentile_hours(histogram: dict[str, int], fraction: float) -> int | None:
    """The upper edge (hours) of the bucket holding the `fraction` quantile; None if empty, or one
    past the last edge for "longer than all of them"."""
    counts = [histogram.get(str(i), 0) for i in range(len(HOUR_EDGES) + 1)]
    total = sum(counts)
    if not total:
        return None
    rank = fraction * total
    running = 0
    for index, count in enumerate(counts):
        running += count
        if running >= rank and count:
            return HOUR_EDGES[index] if index < len(HOUR_EDGES) else HOUR_EDGES[-1] + 1
    return None


def within_hours(histogram: dict[str, int], hours: int) -> int:
    """How many durations were at most `hours` (an edge of HOUR_EDGES)."""
    last = HOUR_EDGES.index(hours)
    return sum(histogram.get(str(i), 0) for i in range(last + 1))


@dataclass(frozen=True)
class Duration:
    count: int
    median_hours: int | None
    p90_hours: int | None
    within: tuple[tuple[int, int, float | None], ...] = ()  # (hours, count, share %)


def duration(histogram: dict[str, int], *, sent: int | None = None) -> Duration:
    count = sum(histogram.values())
    whole = sent if sent is not None else count
    return Duration(
        count=count,
        median_hours=percentile_hours(histogram, 0.5),
        p90_hours=percentile_hours(histogram, 0.9),
        within=tuple(
            (hours, within_hours(histogram, hours), share(within_hours(histogram, hours), whole))
            for hours in REMOVAL_WITHIN_HOURS
        ),
    )


def period_start(day: date, grain: str) -> date:
    if grain == "week":
        return day - timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    return day


def series(data: StatsData, filters: StatsFilters) -> list[tuple[date, dict[str, int]]]:
    """Counters per period (day, ISO week or month) over the whole filtered range, empty periods included."""
    periods: dict[date, dict[str, int]] = {}
    day = filters.first
    while day <= filters.last:
        periods.setdefault(period_start(day, filters.grain), defaultdict(int))
        day += timedelta(days=1)
    for day, counts in data.by_day.items():
        _add(periods[period_start(day, filters.grain)], counts)
    return sorted(periods.items())


@dataclass
class Dashboard:
    filters: StatsFilters
    totals: dict[str, int]
    figures: dict[str, Any]
    series: list[tuple[date, dict[str, int]]]
    tables: dict[str, list[dict[str, Any]]]


def _label_source(source: str, partner_id: int, partners: dict[int, str]) -> str:
    if source == ReportSource.PUBLIC:
        return str(_("Public form"))
    return partners.get(partner_id, f"partner {partner_id}")


def stats_dashboard(filters: StatsFilters, *, today: date | None = None) -> Dashboard:
    """Every figure and table of the dashboard for `filters`."""
    today = today or timezone.localdate()
    live = _live(filters, today)
    data = stats_data(filters, today=today, live=live)
    t = data.totals()
    assess = duration(data.hist.get("assess", {}))
    ntd = duration(data.hist.get("ntd", {}), sent=t["ntd_sent"])
    illegal = t["verdict_baseline"] + t["verdict_national"]
    verdicts_decided = illegal + t["verdict_not_illegal"] + t["verdict_adult"]
    figures = {
        "known_share": share(t["contents_known"], t["contents"]),
        "new_share": share(t["contents"] - t["contents_known"], t["contents"]),
        "listed_share": share(t["contents_listed"], t["contents"]),
        "url_duplicate_rate": share(t["urls_duplicate"], t["sightings"]),
        "content_duplicate_rate": share(t["contents_duplicate"], t["contents"]),
        "ai_share": share(t["contents_ai"], t["contents"]),
        "ai_suspected_share": share(t["reports_ai_suspected"], t["reports"]),
        "illegal_share": share(illegal, verdicts_decided),
        "virtual_ai_share": share(
            t["virtual_ai"] + t["virtual_drawn"], t["virtual_ai"] + t["virtual_drawn"] + t["virtual_real"]
        ),
        "case_illegal_share": share(t["cases_illegal"], t["cases_assessed"]),
        "assess": assess,
        "ntd": ntd,
        "runaway_contents": Content.objects.filter(quarantined=True).count(),
        "runaway_known_hashes": KnownHash.objects.filter(quarantined=True).count(),
    }
    return Dashboard(
        filters=filters,
        totals=t,
        figures=figures,
        series=series(data, filters),
        tables=_tables(data, filters, analyst_rows(filters, today=today, live=live)),
    )


def _tables(data: StatsData, filters: StatsFilters, analysts: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    partners = dict(Partner.objects.values_list("pk", "name"))
    categories = dict(Category.choices)
    tables: dict[str, list[dict[str, Any]]] = {}
    tables["periods"] = [
        {
            "period": start.isoformat(),
            "reports": c["reports"],
            "urls": c["sightings"],
            "urls_new": c["urls_new"],
            "urls_duplicate": c["urls_duplicate"],
            "contents": c["contents"],
            "contents_known": c["contents_known"],
            "known_share": share(c["contents_known"], c["contents"]),
            "contents_ai": c["contents_ai"],
            "ai_share": share(c["contents_ai"], c["contents"]),
            "assessments": c["assessments"],
            "virtual_real": c["virtual_real"],
            "virtual_ai": c["virtual_ai"],
            "virtual_drawn": c["virtual_drawn"],
            "virtual_unknown": c["virtual_unknown"],
        }
        for start, c in series(data, filters)
    ]
    by_period: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for (day, source, partner), c in data.by_day_source.items():
        _add_volume(
            by_period[(period_start(day, filters.grain).isoformat(), _label_source(source, partner, partners))], c
        )
    tables["periods_by_source"] = [
        {"period": period, "source": source, "reports": c["reports"], "urls": c["sightings"]}
        for (period, source), c in sorted(by_period.items())
    ]
    by_period = defaultdict(lambda: defaultdict(int))
    for (day, category), c in data.by_day_category.items():
        _add_volume(
            by_period[(period_start(day, filters.grain).isoformat(), str(categories.get(category, category)))], c
        )
    tables["periods_by_category"] = [
        {"period": period, "category": category, "reports": c["reports"], "urls": c["sightings"]}
        for (period, category), c in sorted(by_period.items())
    ]
    tables["sources"] = sorted(
        (
            {
                "source": _label_source(source, partner, partners),
                "reports": c["reports"],
                "urls": c["sightings"],
                "cases_assessed": c["cases_assessed"],
                "cases_illegal": c["cases_illegal"],
                "illegal_share": share(c["cases_illegal"], c["cases_assessed"]),
            }
            for (source, partner), c in data.by_source.items()
        ),
        key=lambda row: (-row["reports"], row["source"]),
    )
    tables["categories"] = sorted(
        (
            {"category": str(categories.get(cat, cat)), "reports": c["reports"], "urls": c["sightings"]}
            for cat, c in data.by_category.items()
        ),
        key=lambda row: (-row["reports"], row["category"]),
    )
    tables["verdicts"] = [
        {"verdict": str(label), "assessments": data.totals()[f"verdict_{value}"]} for value, label in _verdict_choices()
    ]
    tables["countries"] = sorted(
        (_country_row(country, c, data.hist_by_country.get(country, {})) for country, c in data.by_country.items()),
        key=lambda row: (-row["urls"], row["country"]),
    )
    tables["providers"] = sorted(
        (_provider_row(provider, hist) for provider, hist in data.hist.get("ntdp", {}).items()),
        key=lambda row: (-row["notices"], row["provider"]),
    )
    list_names = dict(HashList.objects.values_list("pk", "name"))
    tables["hash_lists"] = sorted(
        (
            {"hash_list": list_names.get(int(pk), f"list {pk}"), "contents_matched": n}
            for pk, n in data.hist.get("lists", {}).items()
        ),
        key=lambda row: (-row["contents_matched"], row["hash_list"]),
    )
    kinds, statuses = dict(ReferralKind.choices), dict(ReferralStatus.choices)
    outcomes = []
    for key, n in data.hist.get("outcomes", {}).items():
        kind, status = key.split(":", 1)
        outcomes.append(
            {"kind": str(kinds.get(kind, kind)), "status": str(statuses.get(status, status)), "referrals": n}
        )
    tables["outcomes"] = sorted(outcomes, key=lambda row: (row["kind"], -row["referrals"]))
    tables["analysts"] = analysts
    return tables


def _verdict_choices() -> Iterable[tuple[str, str]]:
    return Verdict.choices


def _ntd_fields(histogram: dict[str, int], sent: int) -> dict[str, Any]:
    removal = duration(histogram, sent=sent)
    row: dict[str, Any] = {
        "notices": sent,
        "removed": removal.count,
        "removal_median_h": removal.median_hours,
        "removal_p90_h": removal.p90_hours,
    }
    for hours, _count, pct in removal.within:
        row[f"removed_within_{hours}h_pct"] = pct
    return row


def _country_row(country: str, c: dict[str, int], hist: dict[str, Any]) -> dict[str, Any]:
    return {
        "country": country or "--",
        "reports": c["reports"],
        "urls": c["sightings"],
        "contents": c["contents"],
        "assessment_median_h": percentile_hours(hist.get("assess", {}), 0.5),
        "assessment_p90_h": percentile_hours(hist.get("assess", {}), 0.9),
        **_ntd_fields(hist.get("ntd", {}), c["ntd_sent"]),
    }


def _provider_row(provider: str, hist: dict[str, int]) -> dict[str, Any]:
    buckets = {key: n for key, n in hist.items() if key != "sent"}
    return {"provider": provider, **_ntd_fields(buckets, hist.get("sent", 0))}


def analyst_rows(
    filters: StatsFilters, *, today: date | None = None, live: ComputedDays | None = None
) -> list[dict[str, Any]]:
    """Workload and exposure per analyst over the period (not filtered by source, category or country:
    reveals are counted per person, not per report)."""
    today = today or timezone.localdate()
    totals: dict[int, dict[str, Any]] = defaultdict(lambda: {"reveals": 0, "assessments": 0, "days": 0, "max": 0})
    stored = StatsAnalystDay.objects.filter(
        day__gte=filters.first, day__lte=min(filters.last, today - timedelta(days=1))
    )
    rows: list[tuple[int, int, int]] = list(stored.values_list("user_id", "reveals", "assessments"))
    if live is not None:
        rows += [(user, c["reveals"], c["assessments"]) for (_day, user), c in live.analysts.items()]
    for user, reveals, assessments in rows:
        entry = totals[user]
        entry["reveals"] += reveals
        entry["assessments"] += assessments
        entry["days"] += 1 if reveals or assessments else 0
        entry["max"] = max(entry["max"], reveals)
    names = dict(get_user_model().objects.filter(pk__in=totals).values_list("pk", "username"))
    result = [
        {
            "analyst": names.get(user, str(user)),
            "reveals": e["reveals"],
            "assessments": e["assessments"],
            "active_days": e["days"],
            "reveals_per_active_day": round(e["reveals"] / e["days"], 1) if e["days"] else None,
            "max_reveals_in_a_day": e["max"],
        }
        for user, e in totals.items()
    ]
    return sorted(result, key=lambda row: (-row["reveals"], row["analyst"]))


# --- The yearly summary (annual reports) -------------------------------------------------------


def stats_year_summary(year: int, *, today: date | None = None) -> dict[str, Any]:
    """The figures an annual report needs, for one calendar year (up to today if it is this year)."""
    today = today or timezone.localdate()
    last = min(date(year, 12, 31), today)
    filters = StatsFilters(first=date(year, 1, 1), last=last, grain="month")
    board = stats_dashboard(filters, today=today)
    t, f = board.totals, board.figures
    return {
        "year": year,
        "period": {"first": filters.first.isoformat(), "last": last.isoformat()},
        "reports": t["reports"],
        "reports_public": sum(r["reports"] for r in board.tables["sources"] if r["source"] == str(_("Public form"))),
        "urls_reported": t["sightings"],
        "urls_new": t["urls_new"],
        "url_duplicate_rate_pct": f["url_duplicate_rate"],
        "contents": t["contents"],
        "contents_known_pct": f["known_share"],
        "contents_new_pct": f["new_share"],
        "contents_on_hash_lists_pct": f["listed_share"],
        "content_duplicate_rate_pct": f["content_duplicate_rate"],
        "contents_ai_indicated_pct": f["ai_share"],
        "assessments": t["assessments"],
        "verdicts": {row["verdict"]: row["assessments"] for row in board.tables["verdicts"]},
        "assessments_illegal_pct": f["illegal_share"],
        "virtual_ai_or_drawn_pct": f["virtual_ai_share"],
        "public_reports_illegal_pct": next(
            (r["illegal_share"] for r in board.tables["sources"] if r["source"] == str(_("Public form"))), None
        ),
        "assessment_median_h": f["assess"].median_hours,
        "assessment_p90_h": f["assess"].p90_hours,
        "notices_sent": t["ntd_sent"],
        "notices_removed": t["ntd_removed"],
        "removal_median_h": f["ntd"].median_hours,
        "removal_p90_h": f["ntd"].p90_hours,
        **{f"removed_within_{hours}h_pct": pct for hours, _n, pct in f["ntd"].within},
        "hosting_countries": {row["country"]: row["urls"] for row in board.tables["countries"] if row["urls"]},
        "months": board.tables["periods"],
    }
