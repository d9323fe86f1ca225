"""Referral rules and pages: which referrals an illegal case gets by where it is hosted, what an
analyst may do with them by hand (with reasons, audited), bad input refused, and who may open what."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from reports.models import AbuseContact, AuditEvent, Case, Referral, ReferralRule, Url
from reports.models.choices import CaseStatus, PartnerKind, ReferralKind, ReferralStatus, Verdict
from reports.services.referrals import referrals_propose_for_case
from reports.services.triage import AssessmentFields, assessment_create, case_claim
from reports.tests.analyst_helpers import make_case, response_bytes
from reports.tests.factories import make_partner

LOGIN = "/account/login/"


def closed_illegal_case(analyst: Any, seed: int, *, country: str = "", asn: int | None = None) -> Case:
    """A case an analyst has closed as Baseline, hosted in `country` (empty: unknown)."""
    case = make_case(seed)
    Url.objects.filter(pk=case.url_id).update(hosting_country=country, hosting_asn=asn, hosting_ip="192.0.2.10")
    case_claim(user=analyst, case=case)
    assessment_create(
        user=analyst, case=case, content=case.contents.get(), fields=AssessmentFields(verdict=Verdict.BASELINE)
    )
    case.refresh_from_db()
    assert case.status == CaseStatus.CLOSED
    return case


@pytest.fixture
def analyst(staff_client, settings) -> Client:
    settings.HOTLINE_SECOND_OPINION_FIRST_SEEN = False
    settings.HOTLINE_COUNTRY = "NL"
    return staff_client("analyst")


def kinds(case: Case) -> dict[str, tuple[str, str]]:
    return {r.kind: (r.recipient, r.email) for r in Referral.objects.filter(case=case, automatic=True)}


# --- Rules ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_hosted_at_home_goes_to_the_police_and_the_host(analyst) -> None:
    AbuseContact.objects.create(provider="Example Hosting BV", asn=64500, email="abuse@hosting.example")
    case = closed_illegal_case(analyst.user, 1, country="NL", asn=64500)

    referrals_propose_for_case(case_id=case.pk)

    assert kinds(case) == {
        ReferralKind.POLICE: ("Police", ""),
        ReferralKind.HOSTING_NTD: ("Example Hosting BV", "abuse@hosting.example"),
    }
    assert referrals_propose_for_case(case_id=case.pk) == []  # once only
    assert Referral.objects.filter(case=case).count() == 2


@pytest.mark.django_db
def test_hosted_abroad_goes_to_that_countrys_hotline_or_else_to_the_host(analyst) -> None:
    partner = make_partner(name="Hotline DE", kind=PartnerKind.HOTLINE, country="DE")
    partner.email = "reports@hotline-de.example"
    partner.save()
    with_partner = closed_illegal_case(analyst.user, 1, country="DE")
    without_partner = closed_illegal_case(analyst.user, 2, country="FR")

    referrals_propose_for_case(case_id=with_partner.pk)
    referrals_propose_for_case(case_id=without_partner.pk)

    assert kinds(with_partner) == {ReferralKind.FOREIGN_HOTLINE: ("Hotline DE", "reports@hotline-de.example")}
    assert list(kinds(without_partner)) == [ReferralKind.HOSTING_NTD]


@pytest.mark.django_db
def test_unknown_hosting_proposes_nothing_until_the_analyst_fills_it_in(analyst) -> None:
    case = closed_illegal_case(analyst.user, 1)
    assert referrals_propose_for_case(case_id=case.pk) == []

    analyst.post(f"/staff/cases/{case.pk}/hosting", {"country": "NL", "provider": "Somehost", "reason": "WHOIS"})
    response = analyst.post(f"/staff/cases/{case.pk}/referrals/propose")

    assert response.status_code == 302
    assert set(kinds(case)) == {ReferralKind.POLICE, ReferralKind.HOSTING_NTD}


@pytest.mark.django_db
def test_coordinators_rules_decide(analyst) -> None:
    ReferralRule.objects.filter(situation="domestic", kind=ReferralKind.POLICE).update(active=False)
    case = closed_illegal_case(analyst.user, 1, country="NL")

    referrals_propose_for_case(case_id=case.pk)

    assert list(kinds(case)) == [ReferralKind.HOSTING_NTD]


@pytest.mark.django_db
def test_not_illegal_gets_no_referral(analyst) -> None:
    case = make_case(1)
    Url.objects.filter(pk=case.url_id).update(hosting_country="NL")
    case_claim(user=analyst.user, case=case)
    assessment_create(
        user=analyst.user, case=case, content=case.contents.get(), fields=AssessmentFields(verdict=Verdict.NOT_ILLEGAL)
    )
    assert referrals_propose_for_case(case_id=case.pk) == []


# --- By hand --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_analyst_adds_a_referral_with_a_reason_and_completes_its_address(analyst) -> None:
    case = closed_illegal_case(analyst.user, 1, country="NL")

    refused = analyst.post(f"/staff/cases/{case.pk}/referrals/add", {"kind": "registrar", "language": "en"})
    assert refused.status_code == 400
    assert not Referral.objects.exists()

    response = analyst.post(
        f"/staff/cases/{case.pk}/referrals/add",
        {"kind": "registrar", "recipient": "Registrar X", "language": "en", "reason": "host does not answer"},
    )
    assert response.status_code == 302
    referral = Referral.objects.get(kind=ReferralKind.REGISTRAR)
    assert (referral.automatic, referral.created_by, referral.email) == (False, analyst.user, "")
    assert "host does not answer" in referral.events.get().note
    assert AuditEvent.objects.filter(action="referral.created", object_id=str(referral.pk)).exists()

    assert analyst.post(f"/staff/referrals/{referral.pk}/recipient", {"email": "not-an-address"}).status_code == 400
    response = analyst.post(
        f"/staff/referrals/{referral.pk}/recipient", {"email": "abuse@registrar.example", "language": "nl"}
    )
    assert response.status_code == 302
    referral.refresh_from_db()
    assert (referral.email, referral.language) == ("abuse@registrar.example", "nl")

    page = analyst.get(f"/staff/cases/{case.pk}/")
    assert b"abuse@registrar.example" in page.content
    assert b"host does not answer" in page.content


@pytest.mark.django_db
def test_status_changes_follow_the_timeline_with_reasons_and_references(analyst) -> None:
    case = closed_illegal_case(analyst.user, 1, country="NL")
    referrals_propose_for_case(case_id=case.pk)
    police = Referral.objects.get(case=case, kind=ReferralKind.POLICE)
    url = f"/staff/referrals/{police.pk}/status"

    assert analyst.post(url, {"status": "removed"}).status_code == 400  # a draft cannot be removed
    assert analyst.post(url, {"status": "cancelled"}).status_code == 400  # no reason
    assert analyst.post(url, {"status": "bogus"}).status_code == 400
    assert analyst.post(url, {}).status_code == 400
    police.refresh_from_db()
    assert police.status == ReferralStatus.DRAFT

    assert analyst.post(url, {"status": "sent", "note": "handed over in person"}).status_code == 302
    assert analyst.post(url, {"status": "acknowledged", "reference": "PV-2026-0042"}).status_code == 302
    police.refresh_from_db()
    assert (police.status, police.reference) == (ReferralStatus.ACKNOWLEDGED, "PV-2026-0042")
    assert police.sent_at is not None
    assert [event.status for event in police.events.all()] == ["draft", "sent", "acknowledged"]
    assert AuditEvent.objects.filter(action="referral.status_changed", object_id=str(police.pk)).count() == 2

    ntd = Referral.objects.get(case=case, kind=ReferralKind.HOSTING_NTD)
    response = analyst.post(
        f"/staff/referrals/{ntd.pk}/status", {"status": "cancelled", "note": "host is a victim's own site"}
    )
    assert response.status_code == 302
    ntd.refresh_from_db()
    assert ntd.status == ReferralStatus.CANCELLED
    assert ntd.events.last().note == "host is a victim's own site"


@pytest.mark.django_db
def test_the_police_package_of_a_case_is_digested_in_the_audit_trail(analyst) -> None:
    case = closed_illegal_case(analyst.user, 1, country="NL")
    referrals_propose_for_case(case_id=case.pk)
    police = Referral.objects.get(case=case, kind=ReferralKind.POLICE)

    assert analyst.post("/staff/referrals/police-package", {}).status_code == 400
    assert analyst.post("/staff/referrals/police-package", {"referral": "x"}).status_code == 400
    assert analyst.post("/staff/referrals/police-package", {"referral": "999999"}).status_code == 400
    ntd = Referral.objects.get(case=case, kind=ReferralKind.HOSTING_NTD)
    assert analyst.post("/staff/referrals/police-package", {"referral": str(ntd.pk)}).status_code == 400

    response = analyst.post("/staff/referrals/police-package", {"referral": str(police.pk)})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    digest = hashlib.sha256(response.content).hexdigest()
    assert AuditEvent.objects.get(action="referral.police_package_exported").details["digest"] == digest
    police.refresh_from_db()
    assert police.status == ReferralStatus.SENT
    assert digest in police.events.last().note


@pytest.mark.django_db
def test_the_list_shows_what_needs_attention(analyst) -> None:
    case = closed_illegal_case(analyst.user, 1, country="NL")  # no abuse contact: a draft without address
    referrals_propose_for_case(case_id=case.pk)

    page = analyst.get("/staff/referrals/?status=open&attention=on")

    assert page.status_code == 200
    ntd = Referral.objects.get(case=case, kind=ReferralKind.HOSTING_NTD)
    assert f'data-referral="{ntd.pk}"'.encode() in page.content
    police = Referral.objects.get(case=case, kind=ReferralKind.POLICE)
    assert f'data-referral="{police.pk}"'.encode() not in page.content


# --- Who may open what ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    name: str
    method: str
    path: Callable[[dict[str, Any]], str]
    ok: int = 200
    data: Callable[[dict[str, Any]], dict[str, str]] | None = None


PAGES = [
    Page("list", "get", lambda w: "/staff/referrals/"),
    Page("send now", "post", lambda w: "/staff/referrals/send", ok=302),
    Page(
        "police package", "post", lambda w: "/staff/referrals/police-package", data=lambda w: {"referral": w["police"]}
    ),
    Page(
        "add",
        "post",
        lambda w: f"/staff/cases/{w['case']}/referrals/add",
        ok=302,
        data=lambda w: {"kind": "registrar", "language": "en", "reason": "r"},
    ),
    Page("propose", "post", lambda w: f"/staff/cases/{w['case']}/referrals/propose", ok=302),
    Page("hosting", "post", lambda w: f"/staff/cases/{w['case']}/hosting", ok=302, data=lambda w: {"reason": "r"}),
    Page(
        "status",
        "post",
        lambda w: f"/staff/referrals/{w['police']}/status",
        ok=302,
        data=lambda w: {"reference": "R-1"},
    ),
    Page(
        "recipient",
        "post",
        lambda w: f"/staff/referrals/{w['ntd']}/recipient",
        ok=302,
        data=lambda w: {"email": "abuse@x.example", "language": "en"},
    ),
]


def _world(staff_client, settings) -> dict[str, Any]:
    settings.HOTLINE_SECOND_OPINION_FIRST_SEEN = False
    clients = {role: staff_client(role) for role in ("analyst", "coordinator")}
    clients["no role"] = staff_client("analyst")
    clients["no role"].user.groups.clear()
    clients["other analyst"] = staff_client("analyst")
    case = closed_illegal_case(clients["analyst"].user, 1, country="NL")
    referrals_propose_for_case(case_id=case.pk)
    return {
        "clients": clients,
        "case": case.pk,
        "police": str(Referral.objects.get(kind=ReferralKind.POLICE).pk),
        "ntd": str(Referral.objects.get(kind=ReferralKind.HOSTING_NTD).pk),
    }


def _call(client: Client, page: Page, world: dict[str, Any]):
    return getattr(client, page.method)(page.path(world), page.data(world) if page.data else {})


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
@pytest.mark.django_db
def test_anonymous_is_sent_to_the_two_factor_login(page: Page, staff_client, settings) -> None:
    world = _world(staff_client, settings)

    response = _call(Client(), page, world)

    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
@pytest.mark.django_db
def test_staff_without_a_role_are_refused(page: Page, staff_client, settings) -> None:
    world = _world(staff_client, settings)
    before = AuditEvent.objects.count()

    response = _call(world["clients"]["no role"], page, world)

    assert response.status_code == 403
    assert not response_bytes(response).startswith(b"PK")  # no package
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize("role", ["analyst", "coordinator"])
@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
@pytest.mark.django_db
def test_the_right_roles_get_the_page(page: Page, role: str, staff_client, settings) -> None:
    world = _world(staff_client, settings)

    response = _call(world["clients"][role], page, world)

    assert response.status_code == page.ok, response_bytes(response)[:300]


@pytest.mark.parametrize(
    "page",
    [p for p in PAGES if p.name in ("add", "propose", "hosting", "status", "recipient", "police package")],
    ids=lambda p: p.name,
)
@pytest.mark.django_db
def test_an_analyst_cannot_act_on_a_case_they_may_not_open(page: Page, staff_client, settings) -> None:
    """The case was closed by another analyst: not in this analyst's queues, not theirs."""
    world = _world(staff_client, settings)

    response = _call(world["clients"]["other analyst"], page, world)

    assert response.status_code in (400, 404)
    assert not response_bytes(response).startswith(b"PK")


@pytest.mark.django_db
def test_the_referral_list_shows_only_referrals_of_cases_the_user_may_open(staff_client, settings) -> None:
    world = _world(staff_client, settings)
    urls = set(Referral.objects.filter(case_id=world["case"]).values_list("urls__canonical_url", flat=True))
    assert urls

    own = world["clients"]["analyst"].get("/staff/referrals/", {"status": ""}).content.decode()
    other = world["clients"]["other analyst"].get("/staff/referrals/", {"status": ""})

    assert all(url in own for url in urls)  # the analyst who assessed the case sees its referrals
    assert other.status_code == 200
    assert not any(url in other.content.decode() for url in urls)


# --- Forwarding and what partners see ---------------------------------------------------------------


@pytest.mark.django_db
def test_a_forward_to_a_partner_hotline_goes_by_e_mail(analyst) -> None:
    from datetime import UTC, datetime

    import time_machine
    from django.core import mail

    from reports.services.referrals import notices_send_due

    partner = make_partner(name="Hotline DE", kind=PartnerKind.HOTLINE, country="DE")
    partner.email = "reports@hotline-de.example"
    partner.save()
    case = closed_illegal_case(analyst.user, 1, country="DE")
    referrals_propose_for_case(case_id=case.pk)

    with time_machine.travel(datetime(2026, 3, 3, 9, 0, tzinfo=UTC), tick=False):
        assert notices_send_due() == 1

    assert mail.outbox[0].to == ["reports@hotline-de.example"]
    assert "forward" in mail.outbox[0].body
    assert case.url.canonical_url in mail.outbox[0].body
    forward = Referral.objects.get(case=case)
    assert (forward.kind, forward.status, forward.partner) == (ReferralKind.FOREIGN_HOTLINE, "sent", partner)


@pytest.mark.django_db
def test_the_outcome_is_removed_once_every_url_asked_for_is_gone(analyst) -> None:
    from django.utils import timezone

    from reports.models import Report
    from reports.selectors.referrals import report_referral_outcome

    case = closed_illegal_case(analyst.user, 1, country="NL")
    referrals_propose_for_case(case_id=case.pk)
    report = Report.objects.get(reported_urls__url=case.url)
    assert report_referral_outcome(report) is None  # drafts only

    Referral.objects.filter(case=case).update(status=ReferralStatus.SENT, sent_at=timezone.now())
    assert report_referral_outcome(report) == "sent"

    Url.objects.filter(pk=case.url_id).update(removed_at=timezone.now())
    assert report_referral_outcome(report) == "removed"  # although the police referral is still "sent"


@pytest.mark.django_db
def test_a_url_with_an_open_referral_is_not_referred_twice(analyst) -> None:
    first = closed_illegal_case(analyst.user, 1, country="NL")
    referrals_propose_for_case(case_id=first.pk)
    # The same URL comes back as a new case (a new sighting after the first case closed).
    second = Case.objects.create(url=first.url, status=CaseStatus.CLOSED)
    second.assessments.create(content=first.contents.get(), analyst=analyst.user, verdict=Verdict.BASELINE)

    assert referrals_propose_for_case(case_id=second.pk) == []

    Referral.objects.filter(case=first, kind=ReferralKind.HOSTING_NTD).update(status=ReferralStatus.REFUSED)
    third = Case.objects.create(url=first.url, status=CaseStatus.CLOSED)
    third.assessments.create(content=first.contents.get(), analyst=analyst.user, verdict=Verdict.BASELINE)
    assert [r.kind for r in referrals_propose_for_case(case_id=third.pk)] == [ReferralKind.HOSTING_NTD]
