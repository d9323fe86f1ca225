"""Statistics rollups: small tables the coordinators' dashboard reads instead of scanning millions of rows.

Maintained incrementally by `reports.services.stats.stats_refresh` (Celery beat): only the days touched
since its last run (the watermark) are recomputed; today is always computed live by the selectors.
See docs/statistics.md.
"""

from __future__ import annotations

from django.db import models

from .choices import Category, ReportSource

# `StatsDay.country` of the rows that hold the distinct count of reports over all countries: a report
# may name URLs in several countries, so its per-country counts do not add up to the total.
ALL_COUNTRIES = "*"


class StatsFigures(models.Model):
    """The figures of one period for one source × partner × category × hosting country.

    Every fact is attributed to the report it came from (a URL's first sighting, a content's first
    capture, a case's report or URL), so the filters apply to all figures alike. Counters sum across
    rows; `hist` holds the histograms and keyed counts (hash lists, referral outcomes, providers),
    summed key by key.
    """

    day = models.DateField()
    source = models.CharField(max_length=8, choices=ReportSource.choices)
    partner_id = models.PositiveIntegerField(default=0, help_text="0 for public reports.")
    category = models.CharField(max_length=16, choices=Category.choices)
    country = models.CharField(max_length=2, blank=True, help_text="Hosting country; '' unknown, '*' all.")
    # Report counts: in '*' rows the day's distinct reports; in a country's row the reports naming at
    # least one URL hosted there (the selector reads one kind or the other, never both).
    reports = models.PositiveIntegerField(default=0)
    reports_ai_suspected = models.PositiveIntegerField(default=0)
    sightings = models.PositiveIntegerField(default=0)
    urls_new = models.PositiveIntegerField(default=0)
    urls_duplicate = models.PositiveIntegerField(default=0)
    contents = models.PositiveIntegerField(default=0)
    contents_known = models.PositiveIntegerField(default=0)
    contents_listed = models.PositiveIntegerField(default=0)
    contents_duplicate = models.PositiveIntegerField(default=0)
    contents_ai = models.PositiveIntegerField(default=0)
    assessments = models.PositiveIntegerField(default=0)
    verdict_baseline = models.PositiveIntegerField(default=0)
    verdict_national = models.PositiveIntegerField(default=0)
    verdict_not_illegal = models.PositiveIntegerField(default=0)
    verdict_adult = models.PositiveIntegerField(default=0)
    verdict_unreachable = models.PositiveIntegerField(default=0)
    virtual_real = models.PositiveIntegerField(default=0)
    virtual_ai = models.PositiveIntegerField(default=0)
    virtual_drawn = models.PositiveIntegerField(default=0)
    virtual_unknown = models.PositiveIntegerField(default=0)
    cases_assessed = models.PositiveIntegerField(default=0)
    cases_illegal = models.PositiveIntegerField(default=0)
    ntd_sent = models.PositiveIntegerField(default=0)
    ntd_removed = models.PositiveIntegerField(default=0)
    hist = models.JSONField(default=dict, blank=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.day} {self.source}/{self.partner_id} {self.category} {self.country}"


class StatsDay(StatsFigures):
    """One local day's figures (see StatsFigures)."""

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "source", "partner_id", "category", "country"], name="statsday_unique_key"
            )
        ]
        indexes = [models.Index(fields=["country", "day"], name="statsday_country_day")]


class StatsMonth(StatsFigures):
    """One calendar month's figures (`day` is its first day): the sum of its StatsDay rows, so that a
    year reads twelve months of rows instead of 365 days of them."""

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "source", "partner_id", "category", "country"], name="statsmonth_unique_key"
            )
        ]
        indexes = [models.Index(fields=["country", "day"], name="statsmonth_country_day")]


class StatsAnalystDay(models.Model):
    """One analyst's day: images revealed (exposure) and assessments made (workload)."""

    day = models.DateField()
    user_id = models.PositiveIntegerField()
    reveals = models.PositiveIntegerField(default=0)
    assessments = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "user_id"], name="statsanalystday_unique")]

    def __str__(self) -> str:
        return f"{self.day} user {self.user_id}"


class StatsWatermark(models.Model):
    """Up to when the rollups have seen the data: rows stamped later mark their days for recomputation."""

    name = models.CharField(max_length=32, primary_key=True)
    value = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name}: {self.value:%Y-%m-%d %H:%M:%S}"
