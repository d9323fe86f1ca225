"""Cases: every fetched URL joins a case; duplicates link to what came first; a case holding only
already-assessed content inherits that assessment and, by policy, is closed without anyone
viewing it (with an audit event and the reporter's status moving on).

Pictures are drawn in code and served by a `SyntheticSite` on 127.0.0.1.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest
from django.test import Client

from reports.lib.synthetic import SyntheticSite
from reports.models import Assessment, AuditEvent, Case, Content, Match, Report, Url
from reports.models.choices import CaseQueue, CaseStatus, ReportStatus, Verdict
from reports.services.audit import audit_verify
from reports.services.matching import content_match
from reports.services.triage import case_for_url
from reports.tests.factories import make_public_report, submit_report
from reports.tests.pipeline_helpers import (
    cached_routes,
    case_of,
    contents_of,
    fetch_and_match,
    only_content,
    url_row,
)


@pytest.fixture(scope="module")
def site() -> Iterator[SyntheticSite]:
    with SyntheticSite(routes=cached_routes()) as running:
        yield running


@pytest.fixture
def allowed(pipeline, site: SyntheticSite):
    pipeline.HOTLINE_FETCH_ALLOW_HOSTS = [site.authority]
    return pipeline


def assess(content: Content, verdict: str = Verdict.BASELINE) -> Assessment:
    """An analyst's classification of `content`, made directly (the analyst screens are elsewhere)."""
    case = Case.objects.filter(contents=content).order_by("pk").first()
    assert case is not None
    return Assessment.objects.create(
        case=case, content=content, verdict=verdict, age_group="pre_pubescent", site_type="image_host"
    )


def url_of(site: SyntheticSite, path: str) -> Url:
    return Url.objects.get(canonical_url=site.url(path))


# --- Every URL is work -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_each_reported_url_joins_one_case(allowed, site: SyntheticSite) -> None:
    paths = ["/img/1.jpg", "/img/1/resized.jpg", "/gallery/1.html", "/dead.jpg"]

    report = make_public_report(urls=[site.url(path) for path in paths])

    assert Case.objects.count() == len(paths)
    for path in paths:
        url = url_of(site, path)
        assert set(case_of(url).contents.all()) == set(contents_of(url))
    assert case_of(url_of(site, "/gallery/1.html")).contents.count() == 4
    assert case_of(url_of(site, "/dead.jpg")).contents.count() == 0
    assert Case.objects.filter(status=CaseStatus.OPEN).count() == len(paths)
    report.refresh_from_db()
    assert report.status == ReportStatus.IN_ASSESSMENT

    make_public_report(urls=[site.url("/img/1.jpg")])  # a new sighting, not new work

    assert Case.objects.count() == len(paths)
    assert url_of(site, "/img/1.jpg").sightings == 2
    assert site.hits["/img/1.jpg"] == 1


@pytest.mark.django_db(transaction=True)
def test_a_report_of_a_url_already_in_a_case_shows_that_case_s_progress(allowed, site: SyntheticSite) -> None:
    make_public_report(urls=[site.url("/img/2.jpg")])
    assert Case.objects.get().status == CaseStatus.OPEN

    again = make_public_report(urls=[site.url("/img/2.jpg")])

    again.refresh_from_db()
    assert again.status == ReportStatus.IN_ASSESSMENT


@pytest.mark.django_db
def test_an_exact_duplicate_is_one_content_known_at_a_new_location(allowed, site: SyntheticSite) -> None:
    first = fetch_and_match(site.url("/img/2.jpg"))
    second = fetch_and_match(site.url("/img/2.jpg?from=mirror"))

    assert only_content(first) == only_content(second)
    assert case_of(first).queue == CaseQueue.NEW_UNKNOWN
    assert case_of(second).queue == CaseQueue.KNOWN_NEW_LOCATION
    assert case_of(second).priority > case_of(first).priority
    assert case_of(first) != case_of(second)


@pytest.mark.parametrize("original_first", [True, False], ids=["original-first", "variant-first"])
@pytest.mark.django_db
def test_a_near_duplicate_links_to_the_earlier_content(allowed, site: SyntheticSite, original_first: bool) -> None:
    paths = ["/img/4.jpg", "/img/4/greyscale.jpg"]
    earlier_path, later_path = paths if original_first else paths[::-1]

    earlier = only_content(fetch_and_match(site.url(earlier_path)))
    later_url = fetch_and_match(site.url(later_path))
    later = only_content(later_url)

    assert Match.objects.filter(content=later, matched_content=earlier).exists()
    assert not Match.objects.filter(content=earlier).exists()
    assert case_of(later_url).queue == CaseQueue.KNOWN_NEW_LOCATION
    assert case_of(url_of(site, earlier_path)).queue == CaseQueue.NEW_UNKNOWN


# --- Known content is closed unseen ------------------------------------------------------------------


def status_page(client: Client, code: str, pin: str) -> str | None:
    response = client.post("/report/status/", {"code": code, "pin": pin}, REMOTE_ADDR="198.51.100.7")
    found = re.search(r'data-status="([a-z_]+)"', html.unescape(response.content.decode()))
    return found.group(1) if found else None


def receipt_of(response) -> tuple[str, str]:
    found = dict(re.findall(r'data-receipt="(code|pin)">([^<]+)<', response.content.decode()))
    return found["code"], found["pin"]


@pytest.mark.django_db(transaction=True)
def test_the_same_picture_at_a_new_url_inherits_its_assessment_and_closes_unseen(
    allowed, site: SyntheticSite, client: Client
) -> None:
    assert allowed.HOTLINE_AUTO_CLOSE_KNOWN == "exact"
    first = submit_report(client, [site.url("/img/3.jpg")], remote_addr="192.0.2.31")
    code, pin = receipt_of(first)
    earlier = only_content(url_of(site, "/img/3.jpg"))
    earlier_assessment = assess(earlier, Verdict.BASELINE)
    assert status_page(client, code, pin) == ReportStatus.IN_ASSESSMENT

    second = submit_report(client, [site.url("/img/3.jpg?copy=2")], remote_addr="192.0.2.32")

    case = case_of(url_of(site, "/img/3.jpg?copy=2"))
    assert (case.status, case.auto_closed, case.queue) == (CaseStatus.CLOSED, True, CaseQueue.KNOWN_NEW_LOCATION)
    assert case.closed_at is not None
    assert case.assessed_at is not None
    assert case.claimed_by is None  # nobody held it, nobody viewed it
    inherited = Assessment.objects.get(case=case)
    assert (inherited.content, inherited.verdict, inherited.inherited_from) == (
        earlier,
        Verdict.BASELINE,
        earlier_assessment,
    )
    assert (inherited.age_group, inherited.site_type, inherited.analyst) == ("pre_pubescent", "image_host", None)
    event = AuditEvent.objects.get(action="case.auto_closed")
    assert (event.actor, event.actor_label, event.object_type, event.object_id) == (
        None,
        "system",
        "reports.case",
        str(case.pk),
    )
    assert event.details == {"contents": [earlier.sha256], "verdicts": [Verdict.BASELINE]}
    assert audit_verify() is None
    new_code, new_pin = receipt_of(second)
    assert status_page(client, new_code, new_pin) == ReportStatus.ASSESSED_ACTION
    assert Report.objects.get(receipt_code=new_code.replace("-", "")).status == ReportStatus.ASSESSED_ACTION
    assert status_page(client, code, pin) == ReportStatus.IN_ASSESSMENT  # the first case is still open


@pytest.mark.parametrize(
    ("policy", "closes"), [("near", True), ("exact", False), ("off", False)], ids=["near", "exact", "off"]
)
@pytest.mark.django_db
def test_a_near_duplicate_of_assessed_content_closes_only_under_the_near_policy(
    allowed, site: SyntheticSite, policy: str, closes: bool
) -> None:
    allowed.HOTLINE_AUTO_CLOSE_KNOWN = policy
    original = only_content(fetch_and_match(site.url("/img/5.jpg")))
    earlier = assess(original, Verdict.NOT_ILLEGAL)
    report = make_public_report(urls=[site.url("/img/5/brightened.jpg")])
    url = report.reported_urls.get().url

    fetch_and_match(url.canonical_url)

    case = case_of(url)
    report.refresh_from_db()
    if closes:
        assert (case.status, case.auto_closed) == (CaseStatus.CLOSED, True)
        inherited = Assessment.objects.get(case=case)
        assert (inherited.inherited_from, inherited.verdict) == (earlier, Verdict.NOT_ILLEGAL)
        assert inherited.content == only_content(url)
        assert report.status == ReportStatus.ASSESSED_NO_ACTION
        assert AuditEvent.objects.filter(action="case.auto_closed", object_id=str(case.pk)).exists()
    else:
        assert (case.status, case.auto_closed, case.queue) == (CaseStatus.OPEN, False, CaseQueue.KNOWN_NEW_LOCATION)
        assert not Assessment.objects.filter(case=case).exists()
        assert report.status == ReportStatus.IN_ASSESSMENT
        assert not AuditEvent.objects.filter(action="case.auto_closed").exists()


@pytest.mark.django_db
def test_the_exact_same_file_is_not_closed_when_the_policy_is_off(allowed, site: SyntheticSite) -> None:
    allowed.HOTLINE_AUTO_CLOSE_KNOWN = "off"
    assess(only_content(fetch_and_match(site.url("/img/6.jpg"))))

    case = case_of(fetch_and_match(site.url("/img/6.jpg?again=1")))

    assert (case.status, case.queue) == (CaseStatus.OPEN, CaseQueue.KNOWN_NEW_LOCATION)


@pytest.mark.django_db
def test_a_page_with_one_unassessed_picture_stays_open(allowed, site: SyntheticSite) -> None:
    for seed in (3, 4, 5):
        assess(only_content(fetch_and_match(site.url(f"/img/{seed}.jpg"))))

    gallery = case_of(fetch_and_match(site.url("/gallery/1.html")))  # also holds /img/1/mirrored.jpg

    assert (gallery.status, gallery.auto_closed) == (CaseStatus.OPEN, False)
    assert gallery.queue == CaseQueue.NEW_UNKNOWN
    assert not Assessment.objects.filter(case=gallery).exists()


@pytest.mark.django_db
def test_a_page_whose_pictures_are_all_assessed_closes_with_one_assessment_each(allowed, site: SyntheticSite) -> None:
    for path in ("/img/3.jpg", "/img/4.jpg", "/img/5.jpg", "/img/1/mirrored.jpg"):
        assess(only_content(fetch_and_match(site.url(path))), Verdict.NATIONAL)

    gallery = case_of(fetch_and_match(site.url("/gallery/1.html")))

    assert (gallery.status, gallery.auto_closed) == (CaseStatus.CLOSED, True)
    assert Assessment.objects.filter(case=gallery, inherited_from__isnull=False).count() == 4


# --- A runaway target decides nothing ----------------------------------------------------------------


def planted(pdq: str, serial: int) -> Content:
    content = Content.objects.create(
        sha256=f"{serial:064x}",
        md5=f"{serial:032x}",
        sha1=f"{serial:040x}",
        pdq=pdq,
        pdq_quality=100,
        pdq_dihedral=[pdq],
    )
    case_for_url(url=url_row(f"https://example.com/planted/{serial}"), contents=[content])
    return content


@pytest.mark.django_db
def test_assessed_content_matched_by_too_much_stops_closing_cases(pipeline) -> None:
    pipeline.HOTLINE_AUTO_CLOSE_KNOWN = "near"
    pipeline.HOTLINE_RUNAWAY_THRESHOLD = 2
    blank = planted("0" * 64, 1)
    content_match(content_id=blank.pk)
    assess(blank)
    # Each 20 bits from the assessed hash, in disjoint places: near it, 40 apart from one another.
    near = [planted(f"{((1 << 20) - 1) << (20 * i):064x}", 10 + i) for i in range(3)]

    for content in near:
        content_match(content_id=content.pk)

    blank.refresh_from_db()
    assert blank.quarantined
    states = [(case.status, case.auto_closed) for case in (Case.objects.get(contents=c) for c in near)]
    assert states == [(CaseStatus.CLOSED, True), (CaseStatus.CLOSED, True), (CaseStatus.OPEN, False)]
    assert Case.objects.get(contents=near[2]).queue == CaseQueue.NEW_UNKNOWN
