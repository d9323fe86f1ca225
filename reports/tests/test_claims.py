"""Claims: the next case is the most urgent one; two analysts never hold the same case; a claim
runs out; a case can be given back or handed to someone else.

Every picture is drawn in code (reports.lib.synthetic).
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection, connections, transaction
from django.utils import timezone

from reports.models import AuditEvent, Case, Url
from reports.models.choices import CaseQueue, CaseStatus
from reports.selectors.triage import CaseFilters, claimable_cases, queue_counts
from reports.services.partners import PartnerReportInput, partner_reports_submit
from reports.services.triage import case_claim, case_claim_next, case_for_url, case_reassign, case_release
from reports.tests.analyst_helpers import make_case, make_content
from reports.tests.factories import make_partner, make_url_items, unique_url

NEW = CaseQueue.NEW_UNKNOWN


@pytest.mark.django_db
def test_next_case_is_the_highest_priority_then_the_oldest(staff_client) -> None:
    analyst = staff_client("analyst").user
    dead_link = make_case(age=timedelta(hours=5))  # nothing captured: priority 60 however old
    newer = make_case(31, age=timedelta(hours=1))
    older = make_case(32, age=timedelta(hours=2))
    assert dead_link.priority > older.priority == newer.priority

    claimed = [case_claim_next(user=analyst, queue=NEW) for _ in range(4)]

    assert [case.pk if case else None for case in claimed] == [older.pk, newer.pk, dead_link.pk, None]
    for case in claimed[:3]:
        assert case.status == CaseStatus.IN_PROGRESS
        assert case.claimed_by == analyst
        assert case.claim_expires_at > timezone.now()


@pytest.mark.django_db
def test_a_claimed_case_is_not_handed_to_another_analyst_until_the_claim_expires(staff_client, settings) -> None:
    settings.HOTLINE_CLAIM_MINUTES = 20
    first, second = staff_client("analyst").user, staff_client("analyst").user
    case = make_case(33)

    assert case_claim_next(user=first, queue=NEW) == case
    assert case_claim_next(user=second, queue=NEW) is None
    with pytest.raises(PermissionDenied):
        case_claim(user=second, case=case)
    assert queue_counts(second)[0].count == 0

    case.refresh_from_db()
    assert timedelta(minutes=19) < case.claim_expires_at - timezone.now() <= timedelta(minutes=20)
    Case.objects.filter(pk=case.pk).update(claim_expires_at=timezone.now() - timedelta(seconds=1))

    taken = case_claim_next(user=second, queue=NEW)

    assert taken == case
    assert taken.claimed_by == second
    event = AuditEvent.objects.filter(action="case.claimed", actor=second).get()
    assert event.details["previous_holder"] == first.pk


@pytest.mark.django_db
def test_release_gives_the_case_back_to_its_queue(staff_client, client) -> None:
    analyst_client = staff_client("analyst")
    analyst, other = analyst_client.user, staff_client("analyst").user
    case = make_case(34)
    case_claim_next(user=analyst, queue=NEW)

    response = analyst_client.post(f"/staff/cases/{case.pk}/release")

    assert response.status_code == 302
    case.refresh_from_db()
    assert (case.status, case.claimed_by, case.claim_expires_at) == (CaseStatus.OPEN, None, None)
    assert AuditEvent.objects.filter(action="case.released", actor=analyst).count() == 1
    assert case_claim_next(user=other, queue=NEW) == case


@pytest.mark.django_db
def test_skip_gives_the_case_back_and_takes_the_next(staff_client) -> None:
    analyst_client = staff_client("analyst")
    first = make_case(35, age=timedelta(hours=2))
    second = make_case(36, age=timedelta(hours=1))
    case_claim_next(user=analyst_client.user, queue=NEW)

    response = analyst_client.post("/staff/queues/new_unknown/next", {"release": first.pk})

    assert response["Location"] == f"/staff/cases/{second.pk}/"
    first.refresh_from_db()
    assert first.claimed_by is None
    assert first.status == CaseStatus.OPEN


@pytest.mark.django_db
def test_an_analyst_cannot_release_someone_elses_case(staff_client) -> None:
    holder = staff_client("analyst").user
    other = staff_client("analyst").user
    case = make_case(37)
    case_claim_next(user=holder, queue=NEW)

    with pytest.raises(PermissionDenied):
        case_release(user=other, case=case)
    case.refresh_from_db()
    assert case.claimed_by == holder


@pytest.mark.django_db
def test_a_coordinator_reassigns_a_case(staff_client) -> None:
    coordinator = staff_client("coordinator")
    holder, target = staff_client("analyst").user, staff_client("analyst").user
    case = make_case(38)
    case_claim_next(user=holder, queue=NEW)

    response = coordinator.post(f"/staff/cases/{case.pk}/reassign", {"to": target.pk})

    assert response.status_code == 302
    case.refresh_from_db()
    assert case.claimed_by == target
    event = AuditEvent.objects.get(action="case.reassigned")
    assert (event.actor, event.details) == (coordinator.user, {"from": holder.pk, "to": target.pk})
    with pytest.raises(ValueError, match="active analyst"):
        case_reassign(by=coordinator.user, case=case, to=coordinator.user)  # coordinators work no cases


@pytest.mark.django_db
def test_an_analyst_cannot_reassign(staff_client) -> None:
    analyst = staff_client("analyst")
    other = staff_client("analyst").user
    case = make_case(39)

    assert analyst.post(f"/staff/cases/{case.pk}/reassign", {"to": other.pk}).status_code == 403
    with pytest.raises(PermissionDenied):
        case_reassign(by=analyst.user, case=case, to=other)


@pytest.mark.django_db
def test_filters_decide_which_case_is_next(staff_client) -> None:
    analyst = staff_client("analyst").user
    public_old = make_case(40, age=timedelta(hours=30))
    public_new = make_case(41, category="sextortion")
    partner = make_partner(name="Partner NL")
    [result] = partner_reports_submit(
        partner=partner,
        items=[
            PartnerReportInput(url_items=make_url_items([unique_url()]), hashes=[], category="csam", ai_suspected="no")
        ],
    )
    url = Url.objects.get(sightings_set__report=result.report)
    Url.objects.filter(pk=url.pk).update(hosting_country="DE")
    with transaction.atomic():
        partner_case = case_for_url(url=Url.objects.get(pk=url.pk), contents=[make_content(42)])

    def next_with(**filters):
        case = case_claim_next(user=analyst, queue=NEW, filters=CaseFilters(**filters))
        if case is not None:
            case_release(user=analyst, case=case)
        return case

    assert next_with(partner_id=partner.pk) == partner_case
    assert next_with(source="partner") == partner_case
    assert next_with(country="de") == partner_case
    assert next_with(source="public", category="sextortion") == public_new
    assert next_with(older_than_hours=24) == public_old
    assert next_with(source="public", older_than_hours=24, category="sextortion") is None


# --- Concurrency (PostgreSQL) ----------------------------------------------------------------------

CASES = 50
WORKERS = 8


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SELECT … FOR UPDATE SKIP LOCKED is PostgreSQL's; SQLite has one writer at a time anyway",
)
@pytest.mark.django_db(transaction=True)
def test_concurrent_analysts_claim_every_case_exactly_once(staff_client) -> None:
    analysts = [staff_client("analyst").user for _ in range(WORKERS)]
    cases = [make_case() for _ in range(CASES)]  # dead links: cheap, and all in one queue
    start = threading.Barrier(WORKERS)
    claimed: dict[int, list[int]] = {analyst.pk: [] for analyst in analysts}
    errors: list[BaseException] = []

    def work(analyst) -> None:
        try:
            start.wait(timeout=30)
            for _ in range(CASES + 5):  # bounded: never more attempts than there are cases
                case = case_claim_next(user=analyst, queue=NEW)
                if case is None:
                    break
                claimed[analyst.pk].append(case.pk)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()  # each thread had its own connection

    threads = [threading.Thread(target=work, args=(analyst,)) for analyst in analysts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors, errors
    everything = [pk for pks in claimed.values() for pk in pks]
    assert sorted(everything) == sorted(case.pk for case in cases)  # each exactly once
    assert sum(1 for pks in claimed.values() if pks) > 1  # and they really ran side by side
    holders = dict(Case.objects.values_list("pk", "claimed_by_id"))
    for analyst_pk, pks in claimed.items():
        assert all(holders[pk] == analyst_pk for pk in pks)
    assert AuditEvent.objects.filter(action="case.claimed").count() == CASES


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the claim's query plan is PostgreSQL's")
@pytest.mark.django_db
def test_the_next_case_is_read_from_the_head_of_the_claim_index(staff_client) -> None:
    """The claim's SELECT walks the partial index case_claim_order in work order and stops at the first
    case nobody holds: no sort of the whole queue. (If claimable_q and the index's condition drift
    apart, PostgreSQL can no longer use the index and the claim sorts every open case again.)"""
    analyst = staff_client("analyst").user
    for seed in range(3):
        make_case(70 + seed)
    queryset = claimable_cases(NEW, user=analyst).select_for_update(skip_locked=True, of=("self",))[:1]

    with transaction.atomic(), connection.cursor() as cursor:
        sql, params = queryset.query.get_compiler(connection=connection).as_sql()
        # A table this small would be read whole; the question is whether the index can serve at all.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]

    nodes, todo = [], [plan[0]["Plan"]]
    while todo:
        node = todo.pop()
        nodes.append(node)
        todo.extend(node.get("Plans", []))
    assert [node.get("Index Name") for node in nodes if "Index Name" in node] == ["case_claim_order"]
    assert not [node for node in nodes if node["Node Type"] in ("Sort", "Incremental Sort")]
