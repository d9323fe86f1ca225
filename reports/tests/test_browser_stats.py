"""The statistics dashboard in a real browser (Playwright driving Debian's Chromium, never a downloaded
one) against the live test server: a coordinator logs in with two factors, the dashboard shows its
charts with the hand-counted history's figures, and a filter changes figures and charts.

Screenshots land in test-artifacts/browser/ (stats-1-dashboard.png, stats-2-filtered.png).
Skipped where /usr/bin/chromium is missing.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from reports.services.staff import staff_create
from reports.services.stats import stats_refresh
from reports.tests.stats_helpers import make_history
from reports.tests.test_browser_analyst import ARTIFACTS, CHROMIUM, browser_page, sign_in  # noqa: F401 - a fixture

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"browser tests need Debian's Chromium at {CHROMIUM}"),
]


def bars(page, chart: str) -> list[float]:
    return [
        float(v)
        for v in page.locator(f'svg[data-chart="{chart}"] rect.bar').evaluate_all(
            "els => els.map(el => el.getAttribute('data-value'))"
        )
    ]


def test_dashboard_charts_and_filters_in_chromium(browser_page, live_server, transactional_db, settings):  # noqa: F811
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    page = browser_page
    base = live_server.url
    x, _p, _u = staff_create(username="stats-analyst-x", role="analyst")
    y, _p, _u = staff_create(username="stats-analyst-y", role="analyst")
    history = make_history(analyst_x=x, analyst_y=y)
    stats_refresh()
    user, password, _uri = staff_create(username="browser-coordinator", role="coordinator")
    device = TOTPDevice.objects.get(user=user, name="default")

    sign_in(page, base, user.username, password, device)

    page.get_by_role("link", name="Statistics").first.click()
    page.wait_for_url(f"{base}/staff/statistics/")
    page.fill("input[name=first]", (history.day - timedelta(days=1)).isoformat())
    page.select_option("select[name=grain]", "day")
    with page.expect_navigation():
        page.get_by_role("button", name="Show").click()

    # Three charts, drawn on the server, styled by the stylesheet (the CSP allows no inline style).
    assert page.locator("svg.chart").count() == 3
    first_bar = page.locator('svg[data-chart="volume"] rect.bar-reports').first
    assert first_bar.evaluate("el => getComputedStyle(el).fill") == "rgb(44, 93, 158)"
    assert page.locator('[data-figure="reports"]').inner_text() == "4"
    assert page.locator('[data-figure="known_share"]').inner_text() == "50.0 %"
    volume = bars(page, "volume")
    assert max(volume) == 4  # D1: 4 reports, 4 URLs
    assert page.locator('svg[data-chart="ai"] circle').count() > 0
    page.screenshot(path=ARTIFACTS / "stats-1-dashboard.png", full_page=True)

    # Filter: AI-generated imagery reports only. Figures and charts change.
    page.select_option("select[name=category]", "ai_csam")
    with page.expect_navigation():
        page.get_by_role("button", name="Show").click()
    assert "category=ai_csam" in page.url
    assert page.locator('[data-figure="reports"]').inner_text() == "1"
    filtered = bars(page, "volume")
    assert max(filtered) == 1
    assert filtered != volume
    page.screenshot(path=ARTIFACTS / "stats-2-filtered.png", full_page=True)

    # The table's CSV link carries the filters.
    href = page.locator('[data-table="countries"] a.export').get_attribute("href")
    assert "category=ai_csam" in href
    response = page.request.get(f"{base}{href}")
    assert response.status == 200
    assert "NL" in response.text()
