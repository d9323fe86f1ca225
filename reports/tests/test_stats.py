"""The statistics: every figure checked against a small history counted by hand (stats_helpers),
from the rollup tables and live, with each filter; the pages' access rules; the exports."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from reports.models import AuditEvent, Referral, StatsDay
from reports.models.choices import ReferralKind, ReferralStatus
from reports.selectors.stats import StatsFilters, percentile_hours, stats_dashboard, stats_year_summary
from reports.services.staff import staff_create
from reports.services.stats import HOUR_EDGES, hour_bucket, stats_compute, stats_refresh, stats_store
from reports.tests.stats_helpers import History, at, make_history, make_report, make_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(settings) -> History:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    x, _p, _u = staff_create(username="analyst-x", role="analyst")
    y, _p, _u = staff_create(username="analyst-y", role="analyst")
    return make_history(analyst_x=x, analyst_y=y)


def window(history: History, **kwargs: str) -> StatsFilters:
    return StatsFilters(first=history.day - timedelta(days=1), last=timezone.localdate(), grain="day", **kwargs)


def test_histogram_buckets_and_percentiles():
    assert hour_bucket(0) == 0
    assert hour_bucket(3600) == 0  # an edge belongs to its own bucket: "within 1 h"
    assert hour_bucket(3601) == 1
    assert hour_bucket(24 * 3600) == HOUR_EDGES.index(24)
    assert hour_bucket(10_000 * 3600) == len(HOUR_EDGES)
    # 5 h and 30 h: the median is in the "≤ 8 h" bucket, p90 in "≤ 36 h".
    assert percentile_hours({"3": 1, "6": 1}, 0.5) == 8
    assert percentile_hours({"3": 1, "6": 1}, 0.9) == 36
    assert percentile_hours({}, 0.5) is None


@pytest.mark.parametrize("rolled_up", [True, False], ids=["rollup", "rollup-and-live"])
def test_every_figure_on_a_hand_counted_history(history, rolled_up):
    if rolled_up:
        stats_refresh()
        assert StatsDay.objects.filter(day=history.day).exists()
        board = stats_dashboard(window(history))
    else:
        # D1 from the rollup, D1+1 computed live as if it were today: both paths add up to the same.
        stats_store(first=history.day, last=history.day)
        assert not StatsDay.objects.filter(day__gt=history.day).exists()
        board = stats_dashboard(window(history), today=history.day + timedelta(days=1))
    t, f = board.totals, board.figures
    assert t["reports"] == 4
    assert t["sightings"] == 4
    assert (t["urls_new"], t["urls_duplicate"]) == (3, 1)
    assert f["url_duplicate_rate"] == 25.0
    assert t["reports_ai_suspected"] == 1
    assert t["contents"] == 4
    assert (f["known_share"], f["new_share"], f["listed_share"]) == (50.0, 50.0, 25.0)
    assert f["content_duplicate_rate"] == 25.0
    assert f["ai_share"] == 50.0
    assert t["assessments"] == 4
    assert (t["verdict_baseline"], t["verdict_not_illegal"], t["verdict_adult"]) == (2, 1, 1)
    assert f["illegal_share"] == 50.0
    assert (t["virtual_real"], t["virtual_ai"], t["virtual_unknown"]) == (2, 1, 1)
    assert f["virtual_ai_share"] == 33.3
    assert (t["cases_assessed"], t["cases_illegal"]) == (3, 2)
    # Report to assessment, analysts' cases only: 5 h and 30 h.
    assert (f["assess"].count, f["assess"].median_hours, f["assess"].p90_hours) == (2, 8, 36)
    # Notices: removed after 20 h and 100 h, one not removed.
    assert (t["ntd_sent"], t["ntd_removed"]) == (3, 2)
    assert (f["ntd"].median_hours, f["ntd"].p90_hours) == (24, 120)
    assert [(hours, pct) for hours, _n, pct in f["ntd"].within] == [(24, 33.3), (72, 33.3), (168, 66.7)]

    tables = board.tables
    sources = {row["source"]: row for row in tables["sources"]}
    assert sources["Public form"]["reports"] == 2
    assert sources["Example Partner Hotline"]["reports"] == 2
    # Public-report accuracy: the one case from a public report was found illegal.
    assert sources["Public form"]["illegal_share"] == 100.0
    assert sources["Example Partner Hotline"]["illegal_share"] == 50.0
    assert {row["category"]: row["reports"] for row in tables["categories"]} == {
        "Sexual abuse imagery of a child": 3,
        "AI-generated, drawn or edited imagery of this kind": 1,
    }
    countries = {row["country"]: row for row in tables["countries"]}
    assert (countries["NL"]["reports"], countries["NL"]["urls"], countries["NL"]["contents"]) == (3, 3, 3)
    assert (countries["DE"]["reports"], countries["DE"]["urls"], countries["DE"]["contents"]) == (1, 1, 1)
    assert (countries["NL"]["notices"], countries["NL"]["removed"], countries["NL"]["removed_within_24h_pct"]) == (
        2,
        1,
        50.0,
    )
    assert (countries["DE"]["removal_median_h"], countries["DE"]["removed_within_168h_pct"]) == (120, 100.0)
    assert (countries["NL"]["assessment_median_h"], countries["NL"]["assessment_p90_h"]) == (8, 36)
    providers = {row["provider"]: row for row in tables["providers"]}
    assert (providers["ExampleHost NL"]["notices"], providers["ExampleHost NL"]["removed"]) == (2, 1)
    assert providers["Beispiel DE"]["removed_within_72h_pct"] == 0.0
    assert tables["hash_lists"] == [{"hash_list": "Example list", "contents_matched": 1}]
    outcomes = {(row["kind"], row["status"]): row["referrals"] for row in tables["outcomes"]}
    assert outcomes == {
        ("Notice to hosting provider", "Removed"): 2,
        ("Notice to hosting provider", "Sent"): 1,
        ("Police", "Sent"): 1,
    }
    analysts = {row["analyst"]: row for row in tables["analysts"]}
    assert (analysts["analyst-x"]["reveals"], analysts["analyst-x"]["assessments"]) == (3, 2)
    assert (analysts["analyst-x"]["active_days"], analysts["analyst-x"]["reveals_per_active_day"]) == (2, 1.5)
    assert (analysts["analyst-y"]["reveals"], analysts["analyst-y"]["max_reveals_in_a_day"]) == (1, 1)
    d1 = history.day.isoformat()
    assert {(r["source"], r["reports"], r["urls"]) for r in tables["periods_by_source"] if r["period"] == d1} == {
        ("Public form", 2, 3),
        ("Example Partner Hotline", 2, 1),
    }
    assert {(r["category"], r["reports"], r["urls"]) for r in tables["periods_by_category"] if r["period"] == d1} == {
        ("Sexual abuse imagery of a child", 3, 3),
        ("AI-generated, drawn or edited imagery of this kind", 1, 1),
    }
    per_day = {row["period"]: row for row in tables["periods"]}
    assert per_day[history.day.isoformat()]["reports"] == 4
    assert per_day[history.day.isoformat()]["ai_share"] == 50.0
    assert per_day[(history.day + timedelta(days=1)).isoformat()]["virtual_ai"] == 1


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"source": "public"}, {"reports": 2, "sightings": 3, "contents": 2, "contents_known": 1, "ntd_sent": 2}),
        ({"source": "partner"}, {"reports": 2, "sightings": 1, "contents": 2, "contents_known": 1, "ntd_sent": 1}),
        ({"category": "ai_csam"}, {"reports": 1, "sightings": 1, "contents": 0, "assessments": 0}),
        ({"country": "NL"}, {"reports": 3, "sightings": 3, "contents": 3, "ntd_sent": 2, "assessments": 3}),
        ({"country": "DE"}, {"reports": 1, "sightings": 1, "contents": 1, "ntd_sent": 1, "assessments": 0}),
        ({"country": "--"}, {"reports": 0, "sightings": 0, "assessments": 1}),
    ],
)
def test_filters_give_the_hand_counted_numbers(history, filters, expected):
    stats_refresh()
    totals = stats_dashboard(window(history, **filters)).totals
    assert {key: totals[key] for key in expected} == expected


def test_partner_filter_by_id(history):
    stats_refresh()
    totals = stats_dashboard(window(history, source=f"partner:{history.partner.pk}")).totals
    assert (totals["reports"], totals["cases_assessed"]) == (2, 2)


def test_today_is_live_and_the_rollup_follows_changes(history):
    stats_refresh()
    today = timezone.localdate()
    make_report(when=timezone.now(), urls=[make_url(country="FR")])
    # Not rolled up yet, but counted: today is computed live.
    assert stats_dashboard(window(history)).totals["reports"] == 5
    assert stats_dashboard(window(history, country="FR")).totals["reports"] == 1
    # A late removal changes the day the notice was sent: the refresh finds that day by the watermark.
    late = Referral.objects.get(kind=ReferralKind.HOSTING_NTD, removed_at__isnull=True)
    late.removed_at, late.status = timezone.now(), ReferralStatus.REMOVED
    late.save(update_fields=["removed_at", "status"])
    assert stats_dashboard(window(history)).totals["ntd_removed"] == 2  # stored figure, not yet refreshed
    result = stats_refresh()
    assert result["days"] >= 2  # D1 (sent) and today
    assert stats_dashboard(window(history)).totals["ntd_removed"] == 3
    assert StatsDay.objects.filter(day=today).exists()


def test_stored_rollup_equals_the_live_computation(history):
    stats_refresh()
    first, last = history.day, history.day + timedelta(days=1)
    computed = stats_compute(first=first, last=last)
    stored = {
        (row.day, row.source, row.partner_id, row.category, row.country): row
        for row in StatsDay.objects.filter(day__gte=first, day__lte=last)
    }
    assert set(stored) == set(computed.days)
    for key, figures in computed.days.items():
        for column, value in figures.counts.items():
            assert getattr(stored[key], column) == value, (key, column)
        assert stored[key].hist == figures.hist


def test_year_summary(history):
    stats_refresh()
    summary = stats_year_summary(history.day.year, today=timezone.localdate())
    if history.day.year != timezone.localdate().year:  # pragma: no cover - the first days of January
        pytest.skip("the history straddles the new year")
    assert summary["reports"] == 4
    assert summary["reports_public"] == 2
    assert summary["contents_known_pct"] == 50.0
    assert summary["public_reports_illegal_pct"] == 100.0
    assert summary["removed_within_24h_pct"] == 33.3
    assert summary["hosting_countries"] == {"NL": 3, "DE": 1}


# --- The pages ---------------------------------------------------------------------------------


def test_dashboard_for_a_coordinator(history, staff_client):
    stats_refresh()
    client = staff_client("coordinator")
    response = client.get(
        "/staff/statistics/", {"first": (history.day - timedelta(days=1)).isoformat(), "grain": "day"}
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-figure="reports">4<' in body
    assert 'data-figure="known_share">50.0 %<' in body
    assert body.count('<svg class="chart"') == 3
    assert 'data-value="4"' in body  # the bar of D1's reports
    # Nothing inline for the CSP to refuse.
    assert "<script>" not in body
    assert "style=" not in body


@pytest.mark.parametrize(
    "query",
    [
        {"last": "0001-01-01"},
        {"first": "0001-01-01", "last": "0001-01-02"},
        {"first": "not a date", "grain": "century", "source": "partner:abc", "country": "<script>"},
        {"last": "9999-12-31", "first": "9999-12-30"},
    ],
)
def test_hostile_filters_fall_back_to_defaults_with_a_form_error(history, staff_client, query):
    client = staff_client("coordinator")

    page = client.get("/staff/statistics/", query)
    export = client.get("/staff/statistics/export/verdicts.csv", query)

    assert page.status_code == 200
    assert export.status_code == 200
    text = page.content.decode()
    assert "data-field-error" in text or query.get("last") == "9999-12-31"
    assert "<script>" not in text


def test_dashboard_in_dutch(history, staff_client):
    client = staff_client("coordinator")
    response = client.get("/staff/statistics/", HTTP_ACCEPT_LANGUAGE="nl")
    assert response.status_code == 200
    assert "Statistieken" in response.content.decode()


@pytest.mark.parametrize(
    "path", ["/staff/statistics/", "/staff/statistics/export/sources.csv", "/staff/statistics/year/2026.json"]
)
def test_anonymous_is_sent_to_the_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/account/login/")


@pytest.mark.parametrize(
    "path", ["/staff/statistics/", "/staff/statistics/export/sources.csv", "/staff/statistics/year/2026.json"]
)
@pytest.mark.parametrize("role", ["analyst", "senior_analyst"])
def test_casework_roles_may_not_see_statistics(staff_client, path, role):
    assert staff_client(role).get(path).status_code == 403


def test_admin_may_see_statistics(staff_client):
    assert staff_client("admin").get("/staff/statistics/").status_code == 200


def test_table_export_is_csv_with_the_filters_and_audited(history, staff_client):
    stats_refresh()
    client = staff_client("coordinator")
    first = (history.day - timedelta(days=1)).isoformat()
    response = client.get("/staff/statistics/export/countries.csv", {"first": first, "source": "public"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = {row["country"]: row for row in csv.DictReader(io.StringIO(response.content.decode()))}
    # Public reports only: R1 (u1 NL, u2 DE) and R2 (u1 NL).
    assert (rows["NL"]["reports"], rows["NL"]["urls"], rows["DE"]["urls"]) == ("2", "2", "1")
    event = AuditEvent.objects.get(action="stats.exported")
    assert event.details["table"] == "countries"
    assert client.get("/staff/statistics/export/nonsense.csv").status_code == 404


def test_analyst_exposure_needs_the_exposure_permission_too(history, staff_client):
    """Reveals per analyst are the exposure page's business: statistics alone do not show them."""
    from django.contrib.auth.models import Group, Permission

    from reports.models.choices import StaffRole

    stats_refresh()
    client = staff_client("coordinator")
    assert 'data-table="analysts"' in client.get("/staff/statistics/").content.decode()
    assert client.get("/staff/statistics/export/analysts.csv").status_code == 200

    # An analyst (no exposure permission) who was also given the statistics.
    client.user.groups.set([Group.objects.get(name=StaffRole.ANALYST)])
    client.user.user_permissions.add(Permission.objects.get(codename="view_statistics"))
    client.user = type(client.user).objects.get(pk=client.user.pk)  # no cached permissions

    page = client.get("/staff/statistics/")
    assert page.status_code == 200
    assert 'data-table="analysts"' not in page.content.decode()
    assert client.get("/staff/statistics/export/analysts.csv").status_code == 404
    assert client.get("/staff/statistics/export/countries.csv").status_code == 200


def test_year_summary_exports(history, staff_client):
    stats_refresh()
    client = staff_client("coordinator")
    year = history.day.year
    data = json.loads(client.get(f"/staff/statistics/year/{year}.json").content)
    assert data["year"] == year
    assert data["reports"] >= 4
    rows = list(csv.DictReader(io.StringIO(client.get(f"/staff/statistics/year/{year}.csv").content.decode())))
    figures = {row["figure"]: row["value"] for row in rows}
    assert figures["reports"] == str(data["reports"])
    assert figures["hosting_countries.NL"] == "3"
    assert client.get("/staff/statistics/year/1999.json").status_code == 404


def test_at_helper_is_local_time():
    day = timezone.localdate()
    assert timezone.localtime(at(day, 12)).hour == 12


def test_refresh_command_and_one_refresh_at_a_time(history):
    from io import StringIO

    from django.core.cache import cache
    from django.core.management import call_command

    from reports.services.stats import REFRESH_LOCK

    out = StringIO()
    call_command("stats_refresh", "--full", stdout=out)
    assert "Recomputed" in out.getvalue()
    assert StatsDay.objects.filter(day=history.day).exists()
    cache.add(REFRESH_LOCK, "1")
    assert stats_refresh() == {"days": 0, "rows": 0, "skipped": 1}
    cache.delete(REFRESH_LOCK)
    assert "skipped" not in stats_refresh()


def test_todays_live_figures_are_reused_for_a_short_while(history, settings):
    settings.HOTLINE_STATS_LIVE_SECONDS = 60
    stats_refresh()
    make_report(when=timezone.now(), urls=[make_url(country="FR")])
    assert stats_dashboard(window(history)).totals["reports"] == 5
    make_report(when=timezone.now(), urls=[make_url(country="FR")])
    # Within HOTLINE_STATS_LIVE_SECONDS the same computation serves every filter.
    assert stats_dashboard(window(history)).totals["reports"] == 5
    assert stats_dashboard(window(history, country="FR")).totals["reports"] == 1
    settings.HOTLINE_STATS_LIVE_SECONDS = 0
    from django.core.cache import cache

    cache.clear()
    assert stats_dashboard(window(history)).totals["reports"] == 6
