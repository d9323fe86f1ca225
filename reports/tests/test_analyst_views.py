"""The analyst workspace's pages: who may open each one (anonymous, a partner's API token, the
wrong role, the right role), what the queue and case pages show, bulk confirmation, exposure and
the audit trail.

Every picture is drawn in code (reports.lib.synthetic).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from reports.models import AuditEvent, Case, Content
from reports.models.choices import CaseQueue, CaseStatus, PartnerKind, Verdict
from reports.services.partners import partner_create
from reports.services.triage import AssessmentFields, assessment_create, case_claim_next, content_reveal
from reports.tests.analyst_helpers import make_case, response_bytes

LOGIN = "/account/login/"
JPEG_MAGIC = b"\xff\xd8\xff"


@dataclass(frozen=True)
class StaffPage:
    """One staff endpoint: how to call it, who may, one role that may not, and the success status."""

    name: str
    method: str
    path: Callable[[dict[str, Any]], str]
    allowed: str
    denied: str
    ok: int = 200
    data: Callable[[dict[str, Any]], dict[str, str]] | None = None


def _world(staff_client: Callable[..., Client]) -> dict[str, Any]:
    """An open case, a case held by the role's user, and the clients (one per role)."""
    clients = {role: staff_client(role) for role in ("analyst", "senior_analyst", "coordinator", "admin")}
    # Signed in with both factors, but holding no staff role (a role taken away).
    clients["no role"] = staff_client("analyst")
    clients["no role"].user.groups.clear()
    open_case = make_case(1)
    held_case = make_case(2)
    return {"clients": clients, "open": open_case, "held": held_case}


PAGES = [
    StaffPage("queues", "get", lambda w: "/staff/queues/", "analyst", "coordinator"),
    StaffPage("queue list", "get", lambda w: "/staff/queues/new_unknown/", "analyst", "coordinator"),
    StaffPage("known queue", "get", lambda w: "/staff/queues/known_new_location/", "analyst", "coordinator"),
    StaffPage("next case", "post", lambda w: "/staff/queues/new_unknown/next", "analyst", "coordinator", ok=302),
    StaffPage(
        "bulk confirm",
        "post",
        lambda w: "/staff/queues/known_new_location/confirm",
        "analyst",
        "coordinator",
        ok=302,
        data=lambda w: {"case": str(w["open"].pk)},
    ),
    StaffPage("case page", "get", lambda w: f"/staff/cases/{w['open'].pk}/", "analyst", "no role"),
    StaffPage("case page (oversight)", "get", lambda w: f"/staff/cases/{w['open'].pk}/", "coordinator", "no role"),
    StaffPage("claim", "post", lambda w: f"/staff/cases/{w['open'].pk}/claim", "analyst", "coordinator", ok=302),
    StaffPage("release", "post", lambda w: f"/staff/cases/{w['held'].pk}/release", "analyst", "no role", ok=302),
    StaffPage(
        "reassign",
        "post",
        lambda w: f"/staff/cases/{w['open'].pk}/reassign",
        "coordinator",
        "analyst",
        ok=302,
        data=lambda w: {"to": str(w["clients"]["analyst"].user.pk)},
    ),
    StaffPage(
        "assess",
        "post",
        lambda w: f"/staff/cases/{w['held'].pk}/assess",
        "analyst",
        "coordinator",
        ok=302,
        data=lambda w: {"content": str(w["held"].contents.get().pk), f"c{w['held'].contents.get().pk}-verdict": ""},
    ),
    StaffPage(
        "second opinion",
        "post",
        lambda w: f"/staff/cases/{w['held'].pk}/second-opinion",
        "senior_analyst",
        "analyst",
        ok=302,
    ),
    StaffPage(
        "blurred preview",
        "get",
        lambda w: f"/staff/contents/{w['open'].contents.get().pk}/preview?view=blur",
        "analyst",
        "coordinator",
    ),
    StaffPage(
        "reveal",
        "post",
        lambda w: f"/staff/contents/{w['held'].contents.get().pk}/reveal",
        "analyst",
        "coordinator",
        data=lambda w: {"case": str(w["held"].pk)},
    ),
    StaffPage(
        "preferences",
        "post",
        lambda w: "/staff/preferences/",
        "analyst",
        "coordinator",
        ok=302,
        data=lambda w: {"greyscale": "1"},
    ),
    StaffPage("exposure", "get", lambda w: "/staff/exposure/", "coordinator", "analyst"),
    StaffPage("audit", "get", lambda w: "/staff/audit/", "coordinator", "analyst"),
    StaffPage("audit export", "post", lambda w: "/staff/audit/export.csv", "coordinator", "analyst"),
]


def _call(client: Client, page: StaffPage, world: dict[str, Any], **extra: Any):
    data = page.data(world) if page.data else {}
    return getattr(client, page.method)(page.path(world), data, **extra)


def _hold(world: dict[str, Any], role: str) -> None:
    """Let `role`'s user hold the "held" case (the views that act on a held case need one)."""
    user = world["clients"][role].user
    Case.objects.filter(pk=world["held"].pk).update(claimed_by=None, claim_expires_at=None, status=CaseStatus.OPEN)
    if user.has_perm("reports.work_queue"):
        from reports.services.triage import case_claim

        case_claim(user=user, case=Case.objects.get(pk=world["held"].pk))


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
@pytest.mark.django_db
def test_anonymous_is_sent_to_the_two_factor_login(page: StaffPage, staff_client) -> None:
    world = _world(staff_client)

    response = _call(Client(), page, world)

    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
@pytest.mark.django_db
def test_a_partner_api_token_opens_no_staff_page(page: StaffPage, staff_client) -> None:
    world = _world(staff_client)
    _partner, issued = partner_create(name="Partner X", kind=PartnerKind.HOTLINE, scopes=["submit", "read"])

    response = _call(Client(), page, world, HTTP_AUTHORIZATION=f"Bearer {issued.secret}")

    assert response.status_code in (302, 401, 403)
    if response.status_code == 302:
        assert response["Location"].startswith(LOGIN)
    body = response_bytes(response)
    assert not body.startswith(JPEG_MAGIC)
    assert b"sha256" not in body.lower()


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
@pytest.mark.django_db
def test_the_wrong_role_is_refused(page: StaffPage, staff_client) -> None:
    world = _world(staff_client)
    _hold(world, page.denied)

    response = _call(world["clients"][page.denied], page, world)

    assert response.status_code in (403, 404)
    assert not response_bytes(response).startswith(JPEG_MAGIC)


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
@pytest.mark.django_db
def test_the_right_role_gets_the_page(page: StaffPage, staff_client) -> None:
    world = _world(staff_client)
    _hold(world, page.allowed)
    if page.name == "second opinion":
        # A first-seen content assessed by an analyst, waiting for a senior analyst.
        analyst = world["clients"]["analyst"].user
        _hold(world, "analyst")
        held = world["held"]
        assessment_create(
            user=analyst, case=held, content=held.contents.get(), fields=AssessmentFields(verdict=Verdict.BASELINE)
        )
        senior = world["clients"]["senior_analyst"].user
        assert case_claim_next(user=senior, queue="second_opinion") is not None

    response = _call(world["clients"][page.allowed], page, world)

    assert response.status_code == page.ok, response_bytes(response)[:300]


# --- What the pages show --------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_analyst_cannot_open_a_case_another_analyst_holds(staff_client) -> None:
    first, second = staff_client("analyst"), staff_client("analyst")
    case = make_case(3)
    case_claim_next(user=first.user, queue=CaseQueue.NEW_UNKNOWN)

    assert first.get(f"/staff/cases/{case.pk}/").status_code == 200
    assert second.get(f"/staff/cases/{case.pk}/").status_code == 404
    content = case.contents.get()
    assert second.get(f"/staff/contents/{content.pk}/preview?view=blur").status_code == 404
    # A senior analyst oversees all cases.
    assert staff_client("senior_analyst").get(f"/staff/cases/{case.pk}/").status_code == 200


@pytest.mark.django_db
def test_queues_page_counts_each_queue_and_next_case_opens_the_claimed_case(staff_client) -> None:
    analyst = staff_client("analyst")
    make_case(4)
    make_case(5)
    make_case(url="https://example.com/dead-link")  # nothing captured: waits behind content

    page = analyst.get("/staff/queues/")

    text = page.content.decode()
    assert page.status_code == 200
    counts = {row.key: row.count for row in page.context["counts"]}
    assert counts[CaseQueue.NEW_UNKNOWN] == 3
    assert counts[CaseQueue.KNOWN_NEW_LOCATION] == 0
    assert "Second opinion" not in text  # analysts give none
    response = analyst.post("/staff/queues/new_unknown/next")
    assert response.status_code == 302
    case = Case.objects.get(claimed_by=analyst.user)
    assert response["Location"] == f"/staff/cases/{case.pk}/"
    assert case.contents.exists()  # content first, the dead link after


@pytest.mark.django_db
def test_next_case_on_an_empty_queue_says_so(staff_client) -> None:
    analyst = staff_client("analyst")

    response = analyst.post("/staff/queues/ai_indicated/next", follow=True)

    assert response.redirect_chain[-1][0].startswith("/staff/queues/")
    assert "No case is waiting" in response.content.decode()


@pytest.mark.django_db
def test_next_case_after_assessing_first_seen_content_stays_in_the_analysts_queue(staff_client) -> None:
    """The assessed case now waits in "Second opinion", a queue the analyst may not work: its page's
    "Next case" (n) draws from the queue the case came from. A senior analyst who did not assess it
    goes on with the second opinions."""
    analyst, senior = staff_client("analyst"), staff_client("senior_analyst")
    make_case(41)
    make_case(42)
    case = case_claim_next(user=analyst.user, queue=CaseQueue.NEW_UNKNOWN)
    assessment_create(
        user=analyst.user, case=case, content=case.contents.get(), fields=AssessmentFields(verdict=Verdict.NOT_ILLEGAL)
    )
    case.refresh_from_db()
    assert case.status == CaseStatus.AWAITING_SECOND_OPINION

    page = analyst.get(f"/staff/cases/{case.pk}/").content.decode()
    assert '<form method="post" action="/staff/queues/new_unknown/next">' in page
    assert 'data-shortcut="next"' in page
    assert "/staff/queues/second_opinion/next" not in page
    response = analyst.post("/staff/queues/new_unknown/next")
    assert response.status_code == 302
    assert response["Location"] != f"/staff/cases/{case.pk}/"
    assert response["Location"].startswith("/staff/cases/")

    page = senior.get(f"/staff/cases/{case.pk}/").content.decode()
    assert '<form method="post" action="/staff/queues/second_opinion/next">' in page


@pytest.mark.django_db
def test_case_page_shows_report_url_captures_hashes_and_only_blurred_previews(staff_client) -> None:
    analyst = staff_client("analyst")
    case = make_case(6, 7, description="Seen on a forum")
    case_claim_next(user=analyst.user, queue=CaseQueue.NEW_UNKNOWN)

    response = analyst.get(f"/staff/cases/{case.pk}/")

    text = response.content.decode()
    assert response.status_code == 200
    assert "Seen on a forum" in text
    assert case.url.canonical_url in text
    assert f'href="{case.url.canonical_url}"' not in text  # never a link to the reported site
    for content in case.contents.all():
        assert content.sha256 in text
        assert f"/staff/contents/{content.pk}/preview?view=blur" in text
    assert "view=sharp" not in text
    assert 'src="/staff/contents/' in text
    assert "<script>" not in text
    assert "style=" not in text
    assert '<script src="/static/js/analyst.js" defer>' in text
    assert response["Content-Security-Policy"].startswith("default-src 'self'")
    assert 'name="c' in text
    assert "-verdict" in text


@pytest.mark.django_db
def test_a_coordinator_sees_a_case_without_any_preview(staff_client) -> None:
    coordinator = staff_client("coordinator")
    case = make_case(8)

    text = coordinator.get(f"/staff/cases/{case.pk}/").content.decode()

    assert case.contents.get().sha256 in text
    assert "/preview" not in text


@pytest.mark.django_db
def test_greyscale_preference_is_remembered_and_audited(staff_client) -> None:
    analyst = staff_client("analyst")
    case = make_case(9)

    analyst.post("/staff/preferences/", {"greyscale": "1", "next": f"/staff/cases/{case.pk}/"})

    text = analyst.get(f"/staff/cases/{case.pk}/").content.decode()
    assert "preview?view=blur&amp;grey=1" in text
    assert AuditEvent.objects.filter(action="staff.preference_changed", actor=analyst.user).count() == 1
    other = staff_client("analyst")
    assert "grey=1" not in other.get(f"/staff/cases/{case.pk}/").content.decode()


@pytest.mark.django_db
def test_preferences_never_redirect_off_site(staff_client) -> None:
    analyst = staff_client("analyst")

    response = analyst.post("/staff/preferences/", {"greyscale": "0", "next": "https://evil.example/"})

    assert response["Location"] == "/staff/queues/"


@pytest.mark.django_db
def test_filters_narrow_the_queue_counts(staff_client) -> None:
    analyst = staff_client("analyst")
    make_case(10, category="sextortion")
    make_case(11)

    page = analyst.get("/staff/queues/", {"category": "sextortion"})

    counts = {row.key: row.count for row in page.context["counts"]}
    assert counts[CaseQueue.NEW_UNKNOWN] == 1


# --- Exposure and the audit trail ----------------------------------------------------------------


@pytest.mark.django_db
def test_exposure_counts_reveals_and_cases_per_analyst_never_content(staff_client) -> None:
    analyst, coordinator = staff_client("analyst"), staff_client("coordinator")
    case = make_case(12, 13)
    case_claim_next(user=analyst.user, queue=CaseQueue.NEW_UNKNOWN)
    for content in case.contents.all():
        content_reveal(user=analyst.user, content=content, case=case)
    content = case.contents.first()
    assessment_create(user=analyst.user, case=case, content=content, fields=AssessmentFields(verdict=Verdict.ADULT))

    response = coordinator.get("/staff/exposure/", {"period": "today"})

    rows = {row.username: row for row in response.context["rows"]}
    row = rows[analyst.user.username]
    assert (row.reveals, row.reveals_today, row.cases_assessed, row.contents_assessed) == (2, 2, 1, 1)
    assert row.active_hours >= 1
    text = response.content.decode()
    assert "/preview" not in text
    assert content.sha256 not in text


@pytest.mark.django_db
def test_reveal_soft_limit_suggests_a_break(staff_client, settings) -> None:
    settings.HOTLINE_REVEAL_SOFT_LIMIT = 2
    analyst, coordinator = staff_client("analyst"), staff_client("coordinator")
    case = make_case(14, 15)
    case_claim_next(user=analyst.user, queue=CaseQueue.NEW_UNKNOWN)
    first, second = case.contents.order_by("pk")

    answer = analyst.post(f"/staff/contents/{first.pk}/reveal", {"case": case.pk}).json()
    assert answer["break_due"] is False
    assert "Time for a break" not in analyst.get("/staff/queues/").content.decode().split("data-break-reminder")[0]
    answer = analyst.post(f"/staff/contents/{second.pk}/reveal", {"case": case.pk}).json()

    assert answer["break_due"] is True
    assert answer["reveals_today"] == 2
    page = analyst.get("/staff/queues/").content.decode()
    assert "You have revealed 2 images today." in page
    exposure = coordinator.get("/staff/exposure/", {"period": "today"})
    assert [row.over_limit_today for row in exposure.context["rows"]] == [True]


@pytest.mark.django_db
def test_audit_trail_lists_events_and_its_export_is_itself_audited(staff_client) -> None:
    analyst, coordinator = staff_client("analyst"), staff_client("coordinator")
    case = make_case(16)
    case_claim_next(user=analyst.user, queue=CaseQueue.NEW_UNKNOWN)
    content_reveal(user=analyst.user, content=case.contents.get(), case=case)

    page = coordinator.get("/staff/audit/", {"action": "content.revealed"})
    assert [event.action for event in page.context["page"].object_list] == ["content.revealed"]

    expected = AuditEvent.objects.filter(actor=analyst.user).count()  # a login, the claim, the reveal

    response = coordinator.post("/staff/audit/export.csv", {"actor": analyst.user.username})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response_bytes(response).decode())))
    assert rows[0][:5] == ["id", "at", "actor", "actor_label", "action"]
    assert len(rows) == 1 + expected
    assert {"case.claimed", "content.revealed"} <= {row[4] for row in rows[1:]}
    assert {row[2] for row in rows[1:]} == {analyst.user.username}
    export = AuditEvent.objects.get(action="audit.exported")
    assert export.actor == coordinator.user
    assert export.details["filters"]["actor"] == analyst.user.username
    assert export.details["rows"] == expected


@pytest.mark.django_db
def test_the_known_content_queue_shows_no_picture(staff_client) -> None:
    analyst = staff_client("analyst")
    content = Content.objects.get(pk=make_case(17).contents.get().pk)
    Case.objects.update(queue=CaseQueue.KNOWN_NEW_LOCATION)

    text = analyst.get("/staff/queues/known_new_location/").content.decode()

    assert "<img" not in text
    assert "/preview" not in text
    assert content.sha256 not in text


@pytest.mark.django_db
def test_a_partner_hash_only_case_shows_its_hashes_and_is_assessed_as_a_whole(staff_client) -> None:
    from reports.services.partners import PartnerReportInput, partner_reports_submit
    from reports.services.triage import case_for_hash_report
    from reports.tests.factories import make_partner

    analyst = staff_client("analyst")
    pdq = "f" * 64
    [result] = partner_reports_submit(
        partner=make_partner(name="Partner H"),
        items=[PartnerReportInput(url_items=[], hashes=[("pdq", pdq)], category="csam", ai_suspected="no")],
    )
    case = case_for_hash_report(report=result.report)
    assert case.queue == CaseQueue.HASH_ONLY
    case_claim_next(user=analyst.user, queue=CaseQueue.HASH_ONLY)

    text = analyst.get(f"/staff/cases/{case.pk}/").content.decode()

    assert "Submitted hashes" in text
    assert pdq in text
    assert "Partner H" in text
    assert "Assessment of the report" in text
    response = analyst.post(
        f"/staff/cases/{case.pk}/assess", {"content": "", "url-verdict": "unreachable", "url-virtual": "unknown"}
    )
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.status == CaseStatus.CLOSED
