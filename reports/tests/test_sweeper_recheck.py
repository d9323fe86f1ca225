"""The sweeper (nothing accepted stays stranded) and the re-check hook (is it still online?).

Pictures are drawn in code and served by `SyntheticSite`s on 127.0.0.1; the re-check site's routes
are swapped between calls to play a host that keeps, changes or removes what was reported.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from reports.lib.synthetic import Response, SyntheticSite, gallery_html
from reports.models import Capture, Case, Content, Report, SubmittedHash, Url
from reports.models.choices import CaseQueue, FetchStatus
from reports.services.fetching import url_recheck
from reports.services.maintenance import sweep_stuck_work
from reports.services.partners import PartnerReportInput, partner_reports_submit
from reports.tasks.maintenance import sweep_stuck
from reports.tests.factories import make_partner, make_public_report
from reports.tests.pipeline_helpers import cached_routes, fetch, only_content, original_bytes, url_row, variant_of

SWEEP_AFTER = 600


@pytest.fixture(scope="module")
def site() -> Iterator[SyntheticSite]:
    with SyntheticSite(routes=cached_routes()) as running:
        yield running


@pytest.fixture
def allowed(pipeline, site: SyntheticSite):
    pipeline.HOTLINE_FETCH_ALLOW_HOSTS = [site.authority]
    pipeline.HOTLINE_SWEEP_AFTER_SECONDS = SWEEP_AFTER
    return pipeline


def long_ago() -> datetime:
    return timezone.now() - timedelta(seconds=SWEEP_AFTER + 60)


class Stuck:
    """One of each kind of work the sweeper looks after, left behind as a lost message would."""

    def __init__(self, settings, site: SyntheticSite, seed: int) -> None:
        settings.HOTLINE_ENQUEUE_TASKS = False  # the messages are "lost"
        self.url = make_public_report(urls=[site.url(f"/img/{seed}.jpg")]).reported_urls.get().url
        fetched, _ = fetch(site.url(f"/img/{seed}/resized.jpg"))  # content whose match task was lost
        self.content = only_content(fetched)
        item = PartnerReportInput(
            url_items=[],
            hashes=[("md5", self.content.md5)],
            category="csam",
            ai_suspected="unknown",
            external_id=f"stuck-{seed}",
        )
        self.report = partner_reports_submit(partner=make_partner(), items=[item])[0].report
        settings.HOTLINE_ENQUEUE_TASKS = True

    def backdate(self) -> Stuck:
        Url.objects.filter(pk=self.url.pk).update(first_seen_at=long_ago(), last_seen_at=long_ago())
        Content.objects.filter(pk=self.content.pk).update(first_seen_at=long_ago())
        Report.objects.filter(pk=self.report.pk).update(created_at=long_ago())
        return self

    def refresh(self) -> Stuck:
        for row in (self.url, self.content, self.report):
            row.refresh_from_db()
        return self


@pytest.mark.django_db
def test_the_sweeper_requeues_only_work_older_than_the_cutoff(allowed, site: SyntheticSite) -> None:
    old = Stuck(allowed, site, 1).backdate()
    fresh = Stuck(allowed, site, 2)
    fresh_hits = site.hits.get("/img/2.jpg", 0)

    counts = sweep_stuck_work()  # tasks run eagerly here: what is queued is done by the time it returns

    assert counts == {"urls": 1, "contents": 1, "reports": 1}
    old.refresh()
    assert old.url.fetch_status == FetchStatus.FETCHED
    assert Case.objects.filter(url=old.url).exists()
    assert old.content.matched_at is not None
    assert old.content.match_seq is not None
    assert not SubmittedHash.objects.filter(report=old.report, matched_at__isnull=True).exists()
    assert old.report.hashes.get().matches.get().matched_content == old.content
    assert Case.objects.get(report=old.report).queue == CaseQueue.HASH_ONLY
    fresh.refresh()
    assert fresh.url.fetch_status == FetchStatus.PENDING
    assert site.hits.get("/img/2.jpg", 0) == fresh_hits
    assert fresh.content.matched_at is None
    assert SubmittedHash.objects.filter(report=fresh.report, matched_at__isnull=True).exists()
    assert not Case.objects.filter(report=fresh.report).exists()


@pytest.mark.django_db
def test_the_sweeper_finds_nothing_to_do_when_nothing_is_old(allowed, site: SyntheticSite) -> None:
    Stuck(allowed, site, 3)
    hits = dict(site.hits)

    assert sweep_stuck.delay().get() == {"urls": 0, "contents": 0, "reports": 0}
    assert site.hits == hits
    assert Content.objects.filter(matched_at__isnull=True).count() == 1


@pytest.mark.django_db
def test_the_sweeper_takes_a_url_reported_again_recently_but_pending_for_long(allowed, site: SyntheticSite) -> None:
    stuck = Stuck(allowed, site, 4).backdate()
    Url.objects.filter(pk=stuck.url.pk).update(last_seen_at=timezone.now())  # a new sighting just now

    assert sweep_stuck_work()["urls"] == 1
    stuck.refresh()
    assert stuck.url.fetch_status == FetchStatus.FETCHED


@pytest.mark.django_db
def test_the_sweeper_takes_a_url_whose_retry_is_overdue_and_leaves_one_that_is_not(
    allowed, site: SyntheticSite
) -> None:
    overdue = url_row(site.url("/img/5.jpg"))
    waiting = url_row(site.url("/img/6.jpg"))
    Url.objects.filter(pk=overdue.pk).update(next_fetch_at=timezone.now() - timedelta(seconds=1))
    Url.objects.filter(pk=waiting.pk).update(
        next_fetch_at=timezone.now() + timedelta(hours=1), first_seen_at=long_ago()
    )

    assert sweep_stuck_work()["urls"] == 1
    overdue.refresh_from_db()
    waiting.refresh_from_db()
    assert (overdue.fetch_status, waiting.fetch_status) == (FetchStatus.FETCHED, FetchStatus.PENDING)


# --- Re-check ----------------------------------------------------------------------------------------


def picture(data: bytes):
    return lambda: Response(body=data)


@pytest.fixture(scope="module")
def _host() -> Iterator[SyntheticSite]:
    with SyntheticSite(routes={}) as running:
        yield running


@pytest.fixture
def host(pipeline, _host: SyntheticSite) -> SyntheticSite:
    """A host whose answers the test changes as it goes; it starts with one picture."""
    _host.handler.routes.clear()
    _host.handler.routes["/item.jpg"] = picture(original_bytes(1))
    pipeline.HOTLINE_FETCH_ALLOW_HOSTS = [_host.authority]
    return _host


def serve(host: SyntheticSite, path: str, route) -> None:
    host.handler.routes[path] = route


@pytest.mark.django_db
def test_recheck_says_whether_the_reported_picture_is_still_there(host: SyntheticSite) -> None:
    url, _ = fetch(host.url("/item.jpg"))
    original = only_content(url)

    states = []
    for route in (
        picture(original_bytes(1)),  # untouched
        picture(variant_of(1, "brightened")),  # re-encoded, brightened: the same picture
        picture(original_bytes(2)),  # something else now
        lambda: Response(status=500, body=b"", content_type="text/plain"),  # cannot tell yet
        lambda: Response(status=404, body=b"", content_type="text/plain"),
        lambda: Response(status=410, body=b"", content_type="text/plain"),
        lambda: Response(body=b"<html><body>removed</body></html>", content_type="image/jpeg"),
    ):
        serve(host, "/item.jpg", route)
        states.append(url_recheck(url_id=url.pk).state)

    assert states == ["online_same", "online_same", "online_changed", "unknown", "gone", "gone", "gone"]
    rechecks = list(Capture.objects.filter(url=url, is_recheck=True).order_by("pk"))
    assert len(rechecks) == len(states)
    assert rechecks[0].content == original
    assert rechecks[1].content not in (None, original)
    assert rechecks[2].content == Content.objects.get(sha256=hashlib.sha256(original_bytes(2)).hexdigest())
    assert [capture.http_status for capture in rechecks[3:6]] == [500, 404, 410]
    url.refresh_from_db()
    assert url.fetch_status == FetchStatus.FETCHED  # a re-check changes no fetch state or case
    assert Capture.objects.filter(url=url, is_recheck=False).count() == 1
    assert list(Case.objects.get(url=url).contents.all()) == [original]


@pytest.mark.django_db
def test_recheck_compares_with_what_was_reported_not_with_the_last_recheck(host: SyntheticSite) -> None:
    url, _ = fetch(host.url("/item.jpg"))
    serve(host, "/item.jpg", picture(original_bytes(3)))

    assert [url_recheck(url_id=url.pk).state for _ in range(2)] == ["online_changed", "online_changed"]
    serve(host, "/item.jpg", picture(original_bytes(1)))
    assert url_recheck(url_id=url.pk).state == "online_same"


@pytest.mark.django_db
def test_recheck_of_a_page_looks_at_its_pictures(host: SyntheticSite) -> None:
    serve(host, "/a.jpg", picture(original_bytes(3)))
    serve(host, "/b.jpg", picture(original_bytes(4)))
    serve(host, "/c.jpg", picture(original_bytes(5)))
    serve(host, "/page.html", lambda: Response(body=gallery_html(["/a.jpg", "/b.jpg"]), content_type="text/html"))
    url, _ = fetch(host.url("/page.html"))
    assert Capture.objects.filter(url=url, content__isnull=False).count() == 2

    states = []
    for links in (["/b.jpg"], ["/c.jpg"], []):
        serve(host, "/page.html", lambda links=links: Response(body=gallery_html(links), content_type="text/html"))
        states.append(url_recheck(url_id=url.pk).state)

    assert states == ["online_same", "online_changed", "gone"]
