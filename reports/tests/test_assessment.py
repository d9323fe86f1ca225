"""Assessments: the ICCAM classification, written with its audit event; proposals from earlier
assessments; four eyes on first-seen content; known duplicates confirmed in bulk without anyone
looking; the reporter's status following.

Every picture is drawn in code (reports.lib.synthetic) and served, where a real fetch is wanted,
by a SyntheticSite on 127.0.0.1.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.core.exceptions import PermissionDenied

from reports.lib.synthetic import SyntheticSite
from reports.models import Assessment, AuditEvent, Case, Match, Report, RevealGrant
from reports.models.choices import CaseQueue, CaseStatus, ReportStatus, Verdict, Virtual
from reports.selectors.triage import SECOND_OPINION, queue_counts
from reports.services.triage import (
    AssessmentFields,
    assessment_create,
    case_claim_next,
    case_confirm_second_opinion,
    cases_confirm_known,
)
from reports.tests.analyst_helpers import make_case, make_content
from reports.tests.pipeline_helpers import cached_routes, case_of, fetch_and_match

NEW = CaseQueue.NEW_UNKNOWN
KNOWN = CaseQueue.KNOWN_NEW_LOCATION


def form_data(content_id: int | None, **fields: str) -> dict[str, str]:
    prefix = f"c{content_id}" if content_id else "url"
    data = {"content": str(content_id or "")}
    values = {"verdict": Verdict.BASELINE, "virtual": Virtual.REAL, "age_group": "pre_pubescent"} | fields
    data.update({f"{prefix}-{name}": value for name, value in values.items()})
    return data


def report_of(case: Case) -> Report:
    return Report.objects.get(reported_urls__url=case.url)


def baseline(**overrides) -> AssessmentFields:
    return AssessmentFields(
        **({"verdict": Verdict.BASELINE, "age_group": "pre_pubescent", "virtual": Virtual.REAL} | overrides)
    )


# --- One content, first seen: four eyes -------------------------------------------------------------


@pytest.mark.django_db
def test_an_assessment_of_first_seen_content_waits_for_a_second_opinion(staff_client) -> None:
    analyst, senior = staff_client("analyst"), staff_client("senior_analyst")
    case = make_case(51)
    content = case.contents.get()
    case_claim_next(user=analyst.user, queue=NEW)

    response = analyst.post(
        f"/staff/cases/{case.pk}/assess",
        form_data(content.pk, gender="female", site_type="forum", commercial="no", notes="Synthetic test"),
    )

    assert response.status_code == 302
    assessment = Assessment.objects.get()
    assert (assessment.case, assessment.content, assessment.analyst) == (case, content, analyst.user)
    assert (assessment.verdict, assessment.age_group, assessment.gender) == ("baseline", "pre_pubescent", "female")
    assert (assessment.virtual, assessment.site_type, assessment.commercial) == ("real", "forum", False)
    assert assessment.inherited_from is None
    event = AuditEvent.objects.get(action="assessment.created")
    assert (event.actor, event.object_id) == (analyst.user, str(assessment.pk))
    assert event.details["case"] == case.pk
    assert event.details["verdict"] == "baseline"
    case.refresh_from_db()
    assert case.status == CaseStatus.AWAITING_SECOND_OPINION
    assert case.claimed_by is None
    assert report_of(case).status == ReportStatus.IN_ASSESSMENT

    # Not by the analyst who assessed it.
    assert analyst.post(f"/staff/queues/{SECOND_OPINION}/next").status_code == 403
    assert analyst.post(f"/staff/cases/{case.pk}/second-opinion").status_code == 403

    counts = {row.key: row.count for row in queue_counts(senior.user)}
    assert counts[SECOND_OPINION] == 1
    assert senior.post(f"/staff/queues/{SECOND_OPINION}/next")["Location"] == f"/staff/cases/{case.pk}/"
    page = senior.get(f"/staff/cases/{case.pk}/").content.decode()
    assert "Confirm the assessments and close" in page

    assert senior.post(f"/staff/cases/{case.pk}/second-opinion", {"notes": "Agreed"}).status_code == 302

    case.refresh_from_db()
    assessment.refresh_from_db()
    assert case.status == CaseStatus.CLOSED
    assert case.auto_closed is False
    assert assessment.second_opinion_by == senior.user
    assert assessment.second_opinion_at is not None
    opinion = AuditEvent.objects.get(action="assessment.second_opinion")
    assert (opinion.actor, opinion.details["assessments"], opinion.details["agreed"]) == (
        senior.user,
        [assessment.pk],
        True,
    )
    assert AuditEvent.objects.filter(action="case.assessed", object_id=str(case.pk)).count() == 1
    assert report_of(case).status == ReportStatus.ASSESSED_ACTION


@pytest.mark.django_db
def test_no_one_gives_a_second_opinion_on_their_own_assessment(staff_client) -> None:
    first, second = staff_client("senior_analyst").user, staff_client("senior_analyst").user
    case = make_case(52)
    case_claim_next(user=first, queue=NEW)
    assessment_create(user=first, case=case, content=case.contents.get(), fields=baseline())

    assert case_claim_next(user=first, queue=SECOND_OPINION) is None
    case.refresh_from_db()
    case.claimed_by, case.claim_expires_at = first, None  # even when holding it somehow
    with pytest.raises(PermissionDenied):
        case_confirm_second_opinion(user=first, case=case)
    assert case_claim_next(user=second, queue=SECOND_OPINION) == case


@pytest.mark.django_db
def test_a_senior_analyst_who_disagrees_assesses_again_and_that_counts(staff_client) -> None:
    analyst, senior = staff_client("analyst").user, staff_client("senior_analyst").user
    case = make_case(53)
    content = case.contents.get()
    case_claim_next(user=analyst, queue=NEW)
    assessment_create(user=analyst, case=case, content=content, fields=baseline())
    case_claim_next(user=senior, queue=SECOND_OPINION)

    amended = assessment_create(
        user=senior, case=case, content=content, fields=baseline(verdict=Verdict.NATIONAL, notes="Not baseline")
    )

    case.refresh_from_db()
    assert case.status == CaseStatus.CLOSED
    assert amended.second_opinion_by == senior
    assert report_of(case).status == ReportStatus.ASSESSED_ACTION
    assert AuditEvent.objects.filter(action="assessment.created").last().details["second_opinion"] is True


@pytest.mark.django_db
def test_with_the_rule_off_an_assessment_closes_the_case(staff_client, settings) -> None:
    settings.HOTLINE_SECOND_OPINION_FIRST_SEEN = False
    analyst = staff_client("analyst").user
    case = make_case(54)
    case_claim_next(user=analyst, queue=NEW)

    assessment_create(user=analyst, case=case, content=case.contents.get(), fields=baseline(verdict=Verdict.ADULT))

    case.refresh_from_db()
    assert (case.status, case.claimed_by, case.assessed_at is not None) == (CaseStatus.CLOSED, None, True)
    assert report_of(case).status == ReportStatus.ASSESSED_NO_ACTION


@pytest.mark.django_db
def test_every_content_is_assessed_before_the_case_moves_on(staff_client, settings) -> None:
    settings.HOTLINE_SECOND_OPINION_FIRST_SEEN = False
    analyst = staff_client("analyst").user
    case = make_case(55, 56)
    first, second = case.contents.order_by("pk")
    case_claim_next(user=analyst, queue=NEW)

    assessment_create(user=analyst, case=case, content=first, fields=baseline())
    case.refresh_from_db()
    assert case.status == CaseStatus.IN_PROGRESS
    assert case.claimed_by == analyst

    assessment_create(user=analyst, case=case, content=second, fields=baseline(verdict=Verdict.NOT_ILLEGAL))
    case.refresh_from_db()
    assert case.status == CaseStatus.CLOSED


@pytest.mark.django_db
def test_a_case_with_nothing_captured_is_assessed_as_a_url(staff_client) -> None:
    analyst = staff_client("analyst")
    case = make_case()
    case_claim_next(user=analyst.user, queue=NEW)
    assert "Assessment of the URL" in analyst.get(f"/staff/cases/{case.pk}/").content.decode()

    analyst.post(f"/staff/cases/{case.pk}/assess", form_data(None, verdict=Verdict.UNREACHABLE, virtual="unknown"))

    assessment = Assessment.objects.get()
    assert (assessment.content, assessment.url, assessment.verdict) == (None, case.url, Verdict.UNREACHABLE)
    case.refresh_from_db()
    assert case.status == CaseStatus.CLOSED  # no picture: nothing for a second pair of eyes
    assert report_of(case).status == ReportStatus.ASSESSED_NO_ACTION


@pytest.mark.django_db
def test_only_the_holder_assesses_and_only_valid_fields(staff_client) -> None:
    holder, other = staff_client("analyst"), staff_client("analyst")
    case = make_case(57)
    content = case.contents.get()

    with pytest.raises(PermissionDenied):
        assessment_create(user=holder.user, case=case, content=content, fields=baseline())  # not claimed yet
    case_claim_next(user=holder.user, queue=NEW)
    assert other.post(f"/staff/cases/{case.pk}/assess", form_data(content.pk)).status_code == 404
    holder.post(f"/staff/cases/{case.pk}/assess", form_data(content.pk, verdict="very_bad"))

    assert not Assessment.objects.exists()
    assert not AuditEvent.objects.filter(action="assessment.created").exists()


# --- Proposals and inheritance -----------------------------------------------------------------------


def closed_with(staff_client, settings, seed: int, verdict: str = Verdict.NATIONAL) -> Assessment:
    """A content assessed in a closed case (the rule switched off for the set-up only)."""
    rule = getattr(settings, "HOTLINE_SECOND_OPINION_FIRST_SEEN", True)
    settings.HOTLINE_SECOND_OPINION_FIRST_SEEN = False
    analyst = staff_client("analyst").user
    case = make_case(seed)
    case_claim_next(user=analyst, queue=NEW)
    assessment = assessment_create(
        user=analyst, case=case, content=case.contents.get(), fields=baseline(verdict=verdict, site_type="forum")
    )
    settings.HOTLINE_SECOND_OPINION_FIRST_SEEN = rule
    return assessment


@pytest.mark.django_db
def test_the_form_proposes_the_assessment_of_matching_content_and_accepting_it_inherits(staff_client, settings) -> None:
    earlier = closed_with(staff_client, settings, 58)
    near = make_content(59)
    Match.objects.create(content=near, matched_content=earlier.content, kind="pdq", distance=12)
    case = make_case(contents=[near])
    assert case.queue == KNOWN
    analyst = staff_client("analyst")
    case_claim_next(user=analyst.user, queue=KNOWN)

    page = analyst.get(f"/staff/cases/{case.pk}/").content.decode()

    assert "Proposed: National" in page
    assert re.search(rf'<input[^>]*name="c{near.pk}-verdict"[^>]*value="national"[^>]*checked', page)
    assert re.search(r'<option value="forum" selected>', page)
    analyst.post(
        f"/staff/cases/{case.pk}/assess",
        form_data(near.pk, verdict=Verdict.NATIONAL, site_type="forum"),
    )
    assessment = Assessment.objects.get(case=case)
    assert assessment.inherited_from == earlier
    case.refresh_from_db()
    assert case.status == CaseStatus.CLOSED  # known content: no second opinion needed
    event = AuditEvent.objects.filter(action="assessment.created").last()
    assert event.details["proposal"] == earlier.pk
    assert event.details["accepted_proposal"] is True


@pytest.mark.django_db
def test_a_changed_classification_does_not_inherit(staff_client, settings) -> None:
    earlier = closed_with(staff_client, settings, 60)
    near = make_content(61)
    Match.objects.create(content=near, matched_content=earlier.content, kind="phash", distance=4)
    case = make_case(contents=[near])
    analyst = staff_client("analyst").user
    case_claim_next(user=analyst, queue=KNOWN)

    assessment = assessment_create(user=analyst, case=case, content=near, fields=baseline(verdict=Verdict.ADULT))

    assert assessment.inherited_from is None


@pytest.mark.django_db
def test_finishing_a_case_closes_open_cases_of_the_same_file_unseen(staff_client) -> None:
    analyst, senior = staff_client("analyst").user, staff_client("senior_analyst").user
    content = make_content(62)
    first = make_case(contents=[content])
    second = make_case(contents=[content])  # the same file at another URL
    assert second.queue == KNOWN
    case_claim_next(user=analyst, queue=NEW)
    assessment_create(user=analyst, case=first, content=content, fields=baseline())

    # Waiting for its second opinion, the assessment is no decision yet: nothing inherits it.
    second.refresh_from_db()
    assert second.status == CaseStatus.OPEN
    assert cases_confirm_known(user=analyst, case_ids=[second.pk]).skipped == {
        second.pk: "not every content has an earlier assessment"
    }

    case_claim_next(user=senior, queue=SECOND_OPINION)
    case_confirm_second_opinion(user=senior, case=first)

    second.refresh_from_db()
    assert (second.status, second.auto_closed) == (CaseStatus.CLOSED, True)
    inherited = Assessment.objects.get(case=second)
    assert inherited.inherited_from == Assessment.objects.get(case=first)
    assert report_of(second).status == ReportStatus.ASSESSED_ACTION


# --- Known duplicates, confirmed in bulk without looking ----------------------------------------------


@pytest.fixture(scope="module")
def site() -> Iterator[SyntheticSite]:
    with SyntheticSite(routes=cached_routes()) as running:
        yield running


@pytest.mark.django_db
def test_known_duplicates_are_confirmed_in_bulk_without_revealing_anything(
    pipeline, site: SyntheticSite, staff_client, settings
) -> None:
    pipeline.HOTLINE_FETCH_ALLOW_HOSTS = [site.authority]
    analyst = staff_client("analyst")
    settings.HOTLINE_SECOND_OPINION_FIRST_SEEN = False
    original = case_of(fetch_and_match(site.url("/img/5.jpg")))
    case_claim_next(user=analyst.user, queue=NEW)
    assessment_create(user=analyst.user, case=original, content=original.contents.get(), fields=baseline())
    settings.HOTLINE_SECOND_OPINION_FIRST_SEEN = True
    # Near duplicates (PDQ/pHash) at new locations: known, but not closed by policy ("exact").
    duplicates = [case_of(fetch_and_match(site.url(f"/img/5/{name}.jpg"))) for name in ("greyscale", "resized")]
    unknown = case_of(fetch_and_match(site.url("/img/6.jpg")))
    assert [case.queue for case in duplicates] == [KNOWN, KNOWN]
    assert unknown.queue == NEW

    listing = analyst.get("/staff/queues/known_new_location/")
    text = listing.content.decode()
    assert "<img" not in text
    assert "/preview" not in text
    assert text.count('name="case"') == 2

    response = analyst.post(
        "/staff/queues/known_new_location/confirm", {"case": [case.pk for case in [*duplicates, unknown]]}
    )

    assert response.status_code == 302
    for case in duplicates:
        case.refresh_from_db()
        assert (case.status, case.auto_closed) == (CaseStatus.CLOSED, True)
        inherited = Assessment.objects.get(case=case)
        assert inherited.inherited_from.case == original
        assert (inherited.verdict, inherited.analyst) == (Verdict.BASELINE, analyst.user)
    unknown.refresh_from_db()
    assert unknown.status == CaseStatus.OPEN
    assert AuditEvent.objects.filter(action="case.confirmed_known", actor=analyst.user).count() == 2
    assert not AuditEvent.objects.filter(action="content.revealed").exists()
    assert not RevealGrant.objects.exists()


@pytest.mark.django_db
def test_bulk_confirm_leaves_a_case_someone_else_holds(staff_client, settings) -> None:
    earlier = closed_with(staff_client, settings, 63)
    near = make_content(64)
    Match.objects.create(content=near, matched_content=earlier.content, kind="pdq", distance=8)
    case = make_case(contents=[near])
    holder, other = staff_client("analyst").user, staff_client("analyst").user
    case_claim_next(user=holder, queue=KNOWN)

    result = cases_confirm_known(user=other, case_ids=[case.pk])

    assert result.confirmed == []
    assert case.pk in result.skipped
    assert cases_confirm_known(user=holder, case_ids=[case.pk]).confirmed == [case.pk]
