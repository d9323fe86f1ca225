"""`seed_demo --reports N`: a synthetic history, bulk-written, with the shape the statistics should show."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from reports.models import Content, Report, ReportedUrl, StatsDay, StatsMonth, Url
from reports.selectors.stats import StatsFilters, stats_dashboard
from reports.services.demo_history import seed_history
from reports.services.stats import stats_compute, stats_refresh

pytestmark = pytest.mark.django_db


def test_seed_demo_adds_a_history_and_builds_the_rollups(settings):
    settings.DEBUG = True
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.HOTLINE_FETCH_ALLOW_HOSTS = []  # the demo's own reports: example domains only, no site
    out = StringIO()
    call_command("seed_demo", "--reports", "400", stdout=out)
    assert "Synthetic history: 400 reports" in out.getvalue()
    assert Report.objects.count() >= 400
    # Obviously synthetic: every host on a reserved example domain.
    assert all(
        host.endswith((".example", "example.com", "example.org")) for host in Url.objects.values_list("host", flat=True)
    )
    assert StatsDay.objects.exists()
    totals = stats_dashboard(
        StatsFilters(first=timezone.localdate() - timedelta(days=800), last=timezone.localdate(), grain="month")
    ).totals
    assert totals["reports"] == Report.objects.count()
    assert totals["sightings"] == ReportedUrl.objects.count()


def test_make_demos_history_is_seeded_once(settings):
    """`make demo` passes --history: the first run seeds it, a second adds nothing."""
    settings.DEBUG = True
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.HOTLINE_FETCH_ALLOW_HOSTS = []
    first, second = StringIO(), StringIO()
    call_command("seed_demo", "--history", "150", stdout=first)
    reports = Report.objects.count()
    call_command("seed_demo", "--history", "150", stdout=second)

    assert "Synthetic history: 150 reports" in first.getvalue()
    assert "Synthetic history: already there" in second.getvalue()
    assert Report.objects.count() == reports
    # The history carries fields other parts of the app added later (referrals' URL re-check state).
    assert not Url.objects.filter(recheck_state__isnull=True).exists()


def test_history_shape():
    result = seed_history(reports=3000, days=365)
    assert result.reports == 3000
    assert 2.3 < result.sightings / result.reports < 3.3
    duplicates = ReportedUrl.objects.filter(was_known=True).count() / ReportedUrl.objects.count()
    assert 0.10 < duplicates < 0.20
    # Every URL's sightings counter agrees with its sightings.
    url = ReportedUrl.objects.filter(was_known=True).values_list("url_id", flat=True).first()
    assert Url.objects.get(pk=url).sightings == ReportedUrl.objects.filter(url_id=url).count()
    # The AI-indicated share rises: the last quarter's is well above the first quarter's.
    now = timezone.now()
    early = Content.objects.filter(first_seen_at__lt=now - timedelta(days=270))
    late = Content.objects.filter(first_seen_at__gte=now - timedelta(days=90))
    assert (
        late.filter(ai_indicated=True).count() / late.count()
        > 2 * early.filter(ai_indicated=True).count() / early.count()
    )
    # More reports recently.
    assert Report.objects.filter(created_at__gte=now - timedelta(days=182)).count() > 1800


def test_rollup_of_the_history_equals_the_figures_from_the_source_tables():
    seed_history(reports=1500, days=120)
    stats_refresh()
    today = timezone.localdate()
    first, last = today - timedelta(days=60), today - timedelta(days=1)
    computed = stats_compute(first=first, last=last)
    stored = {
        (r.day, r.source, r.partner_id, r.category, r.country): r
        for r in StatsDay.objects.filter(day__gte=first, day__lte=last)
    }
    assert set(stored) == set(computed.days)
    for key, figures in computed.days.items():
        assert {c: getattr(stored[key], c) for c in figures.counts} == dict(figures.counts)
        assert stored[key].hist == figures.hist


@pytest.mark.parametrize("filters", [{}, {"country": "NL"}, {"source": "public", "category": "csam"}])
def test_month_rollup_gives_the_same_figures_as_the_day_rollup(filters):
    """Per month the dashboard reads whole months from StatsMonth; per week only from StatsDay."""
    seed_history(reports=2000, days=150)
    stats_refresh()
    assert StatsMonth.objects.filter(day__lt=timezone.localdate().replace(day=1)).exists()
    today = timezone.localdate()
    period = {"first": today - timedelta(days=140), "last": today, **filters}
    by_month = stats_dashboard(StatsFilters(grain="month", **period))
    by_week = stats_dashboard(StatsFilters(grain="week", **period))
    assert by_month.totals["reports"] > 0
    assert dict(by_month.totals) == dict(by_week.totals)
    for name, rows in by_month.tables.items():
        if not name.startswith("periods"):  # per period: months vs weeks differ by design
            assert rows == by_week.tables[name], name
    assert by_month.figures["ntd"] == by_week.figures["ntd"]
