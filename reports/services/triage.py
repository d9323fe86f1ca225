"""Cases: every fetched URL and every hash-only partner report becomes work in a queue, unless
what it holds is already known and assessed (then it is closed unseen, by policy)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from reports.lib.metrics import REVEALS
from reports.models import Assessment, Case, Content, Match, Report, RevealGrant, StaffPreference, Url
from reports.models.choices import ILLEGAL_VERDICTS, CaseQueue, CaseStatus, ReportStatus, Virtual
from reports.selectors.triage import (
    REVEAL_ACTION,
    SECOND_OPINION,
    CaseFilters,
    assessment_proposals,
    claimable_cases,
    claimable_q,
    contents_first_seen,
    holds_claim,
    latest_assessments_in_case,
    second_opinion_q,
    settled_assessments,
)
from reports.services.audit import audit_record
from reports.services.staff import require_permission

QUEUE_PRIORITY = {
    CaseQueue.NEW_UNKNOWN: 10,
    CaseQueue.AI_INDICATED: 20,
    CaseQueue.HASH_ONLY: 30,
    CaseQueue.KNOWN_NEW_LOCATION: 40,
}
# Added to the priority of a case with nothing captured (a dead link): it waits behind content.
NOTHING_CAPTURED_PENALTY = 50


def _latest_assessments(content_ids: Iterable[int]) -> dict[int, Assessment]:
    latest: dict[int, Assessment] = {}
    # Not from a case still being worked or waiting for its second opinion: that is no decision yet.
    for assessment in (
        settled_assessments().filter(content_id__in=list(content_ids)).order_by("content_id", "created_at", "pk")
    ):
        latest[assessment.content_id] = assessment  # type: ignore[index]
    return latest


@dataclass
class _Known:
    """What is known about a set of contents, read in four queries whatever their number."""

    cases_of: dict[int, set[int]]  # content → the cases holding it
    own: dict[int, Assessment]  # content → its latest settled assessment
    matches: dict[int, list[Match]]  # content → its matches that count (not quarantined, live lists)
    targets: dict[int, Assessment]  # matched earlier content → its latest settled assessment ("near" policy)


def _known_about(content_ids: list[int]) -> _Known:
    cases_of: dict[int, set[int]] = {}
    for case_id, content_id in Case.contents.through.objects.filter(content_id__in=content_ids).values_list(
        "case_id", "content_id"
    ):
        cases_of.setdefault(content_id, set()).add(case_id)
    matches: dict[int, list[Match]] = {}
    for match in Match.objects.filter(content_id__in=content_ids).filter(
        Q(matched_content__isnull=False, matched_content__quarantined=False)
        | Q(known_hash__isnull=False, known_hash__quarantined=False, known_hash__hash_list__active=True)
    ):
        matches.setdefault(match.content_id, []).append(match)  # type: ignore[arg-type]
    targets: dict[int, Assessment] = {}
    if settings.HOTLINE_AUTO_CLOSE_KNOWN == "near":
        targets = _latest_assessments(
            {m.matched_content_id for found in matches.values() for m in found if m.matched_content_id}
        )
    return _Known(cases_of=cases_of, own=_latest_assessments(content_ids), matches=matches, targets=targets)


def _inherited(case: Case, contents: list[Content], known_about: _Known) -> tuple[dict[int, Assessment], set[int]]:
    """For each content: an earlier assessment to inherit (exact, or near where policy allows),
    and the set of contents known at all: from a hash list, as a near-duplicate of earlier
    content, or because the very same file was already found at another URL."""
    ids = [content.pk for content in contents]
    seen_elsewhere = {pk for pk in ids if known_about.cases_of.get(pk, set()) - {case.pk}}
    own = {pk: known_about.own[pk] for pk in ids if pk in known_about.own}
    matches = [match for pk in ids for match in known_about.matches.get(pk, [])]
    known = {match.content_id for match in matches} | set(own) | seen_elsewhere
    inherit: dict[int, Assessment] = dict(own)
    if settings.HOTLINE_AUTO_CLOSE_KNOWN == "near":
        for match in sorted(matches, key=lambda m: m.distance):
            if match.content_id not in inherit and match.matched_content_id in known_about.targets:
                inherit[match.content_id] = known_about.targets[match.matched_content_id]  # type: ignore[index,assignment]
    return inherit, known  # type: ignore[return-value]


def reports_refresh_status(report_ids: Iterable[int]) -> None:
    """What a reporter sees: received → being assessed (a case exists) → assessed (every case of
    the report closed; "action taken" when any of them holds illegal content)."""
    for report in Report.objects.filter(pk__in=list(report_ids)):
        url_ids = list(report.reported_urls.values_list("url_id", flat=True))
        cases = list(Case.objects.filter(Q(url_id__in=url_ids) | Q(report=report, url__isnull=True)))
        covered = {case.url_id for case in cases if case.url_id}
        if not cases:
            status = ReportStatus.RECEIVED
        elif any(case.status != CaseStatus.CLOSED for case in cases) or len(covered) < len(url_ids):
            status = ReportStatus.IN_ASSESSMENT
        elif Assessment.objects.filter(case__in=cases, verdict__in=ILLEGAL_VERDICTS).exists():
            status = ReportStatus.ASSESSED_ACTION
        else:
            status = ReportStatus.ASSESSED_NO_ACTION
        if report.status != status:
            report.status = status
            report.save(update_fields=["status"])


def _case_report_ids(case: Case) -> list[int]:
    if case.url_id:
        return list(Report.objects.filter(reported_urls__url_id=case.url_id).values_list("pk", flat=True))
    return [case.report_id] if case.report_id else []


def case_refresh(case: Case, *, contents: list[Content] | None = None) -> Case:
    """Put an open case in the right queue, and close it unseen if policy says its content is known.

    Called after fetching and after each content's matching; cheap and idempotent. `contents` is
    for a caller that knows them already (a case it has just created), to save reading them back.
    """
    return cases_refresh([case], contents={case.pk: contents} if contents is not None else None)[0]


def cases_refresh(cases: list[Case], *, contents: dict[int, list[Content]] | None = None) -> list[Case]:
    """`case_refresh` for many cases at once: a handful of queries for the lot (a matching batch
    refreshes the cases of all its contents), plus the writes of those that change."""
    workable = [case for case in cases if case.status == CaseStatus.OPEN and not case.claimed_by_id]
    held: dict[int, list[Content]] = dict(contents or {})
    unread = [case.pk for case in workable if case.pk not in held]
    if unread:
        # Not the encrypted preview: it is most of a row's bytes and nothing here reads it.
        links = list(Case.contents.through.objects.filter(case_id__in=unread).values_list("case_id", "content_id"))
        rows = Content.objects.defer("preview").in_bulk({content_id for _, content_id in links}) if links else {}
        for case_id in unread:
            held[case_id] = []
        for case_id, content_id in links:
            held[case_id].append(rows[content_id])
    fully_matched = [
        case for case in workable if case.url_id and held[case.pk] and all(c.matched_at for c in held[case.pk])
    ]
    ids = list({content.pk for case in fully_matched for content in held[case.pk]})
    known_about = _known_about(ids) if ids else None
    changed: list[Case] = []
    for case in workable:
        found = held[case.pk]
        queue, inherit = _placement(case, found, known_about)
        if queue is None:
            _auto_close(case, found, inherit)
            continue
        priority = _priority(case, queue, found)
        if (case.queue, case.priority) != (queue, priority):
            case.queue, case.priority = queue, priority
            changed.append(case)
    if changed:
        Case.objects.bulk_update(changed, ["queue", "priority"])
    return cases


def _priority(case: Case, queue: str, contents: list[Content]) -> int:
    return QUEUE_PRIORITY[queue] + (NOTHING_CAPTURED_PENALTY if case.url_id and not contents else 0)


def _placement(
    case: Case, contents: list[Content], known_about: _Known | None
) -> tuple[str | None, dict[int, Assessment]]:
    """The queue an open case belongs in, or (None, the assessments its contents inherit) when policy
    closes it unseen. `known_about` is needed only once every content is matched."""
    if case.url_id is None:
        return CaseQueue.HASH_ONLY, {}
    if contents and all(content.matched_at for content in contents):
        if known_about is None:  # callers read it for every fully matched case; this is a fallback
            known_about = _known_about([content.pk for content in contents])
        inherit, known = _inherited(case, contents, known_about)
        policy = settings.HOTLINE_AUTO_CLOSE_KNOWN
        if policy != "off" and all(content.pk in inherit and not content.quarantined for content in contents):
            return None, inherit
        if all(content.pk in known for content in contents):
            return CaseQueue.KNOWN_NEW_LOCATION, {}
    if any(content.ai_indicated for content in contents):
        return CaseQueue.AI_INDICATED, {}
    return CaseQueue.NEW_UNKNOWN, {}


def _propose_referrals(case: Case) -> None:
    """A closed case with an illegal verdict gets the referrals its rules ask for, after the commit."""
    from reports.tasks.referrals import enqueue_referrals_propose  # tasks import services: import late

    case_id = case.pk
    transaction.on_commit(lambda: enqueue_referrals_propose(case_id), robust=True)


def _auto_close(case: Case, contents: list[Content], inherit: dict[int, Assessment]) -> Case:
    now = timezone.now()
    Assessment.objects.bulk_create(
        [
            Assessment(
                case=case,
                content=content,
                verdict=inherit[content.pk].verdict,
                age_group=inherit[content.pk].age_group,
                gender=inherit[content.pk].gender,
                virtual=inherit[content.pk].virtual,
                site_type=inherit[content.pk].site_type,
                commercial=inherit[content.pk].commercial,
                inherited_from=inherit[content.pk],
                notes="Inherited from an earlier assessment; closed without viewing.",
            )
            for content in contents
        ]
    )
    case.status = CaseStatus.CLOSED
    case.auto_closed = True
    case.queue = CaseQueue.KNOWN_NEW_LOCATION
    case.assessed_at = case.closed_at = now
    case.save(update_fields=["status", "auto_closed", "queue", "assessed_at", "closed_at"])
    verdicts = [inherit[content.pk].verdict for content in contents]
    reports_refresh_status(_case_report_ids(case))
    _propose_referrals(case)
    audit_record(
        action="case.auto_closed",
        actor_label="system",
        obj=case,
        details={"contents": [content.sha256 for content in contents], "verdicts": verdicts},
    )
    return case


# No savepoint: inside the fetch's transaction a failure here undoes the whole fetch anyway.
@transaction.atomic(savepoint=False)
def case_for_url(*, url: Url, contents: list[Content]) -> Case:
    """The open case of `url` (created if none), holding `contents` (see `cases_for_urls`)."""
    return cases_for_urls([(url, contents)])[0]


@transaction.atomic(savepoint=False)
def cases_for_urls(items: list[tuple[Url, list[Content]]]) -> list[Case]:
    """The open case of each URL (created if none), holding its contents: five statements for any
    number of URLs. The caller holds the URLs' row locks, and the one-open-case-per-URL constraint
    backs it up."""
    if not items:
        return []
    url_ids = [url.pk for url, _ in items]
    cases = {case.url_id: case for case in Case.objects.filter(url_id__in=url_ids).exclude(status=CaseStatus.CLOSED)}
    created: dict[int, list[Content]] = {}
    for url, contents in items:
        if url.pk in cases:
            continue
        case = cases[url.pk] = Case(url=url)
        created[url.pk] = list(dict.fromkeys(contents))  # a case created now holds exactly these
        if not contents or not all(content.matched_at for content in contents):
            # Placed as it is created (no query needed while nothing is matched): saves an UPDATE.
            queue, _inherit = _placement(case, contents, None)
            if queue is not None:  # None ("close unseen") needs every content matched: excluded above
                case.queue, case.priority = queue, _priority(case, queue, contents)
    Case.objects.bulk_create([cases[url_id] for url_id in created])
    Case.contents.through.objects.bulk_create(
        [
            Case.contents.through(case_id=cases[url.pk].pk, content_id=content.pk)
            for url, contents in items
            for content in dict.fromkeys(contents)
        ],
        ignore_conflicts=True,
    )
    Report.objects.filter(reported_urls__url_id__in=url_ids, status=ReportStatus.RECEIVED).update(
        status=ReportStatus.IN_ASSESSMENT
    )
    ordered = [cases[url.pk] for url, _ in items]
    return cases_refresh(ordered, contents={cases[url_id].pk: found for url_id, found in created.items()})


@transaction.atomic
def case_for_hash_report(*, report: Report) -> Case:
    case, _created = Case.objects.get_or_create(report=report, url=None, defaults={"queue": CaseQueue.HASH_ONLY})
    case = case_refresh(case)
    reports_refresh_status([report.pk])
    return case


def cases_refresh_for_contents(content_ids: Iterable[int]) -> None:
    cases_refresh(list(Case.objects.filter(contents__in=list(content_ids), status=CaseStatus.OPEN).distinct()))


# --- Casework: claims, reveals, assessments, second opinions ------------------------------------
#
# Every function below checks what the acting user may do (the views check too, but a service
# must be safe whoever calls it), takes the case's row lock where it changes the case, and writes
# its audit event in the same transaction as the change.

CLAIM_ATTEMPTS = 5


def _case_locked(case: Case) -> Case:
    return Case.objects.select_for_update().get(pk=case.pk)


def _take(case: Case, *, user: AbstractBaseUser, now: datetime, condition: Q, status: str) -> bool:
    """Claim `case` for `user` if it still satisfies `condition` (one conditional UPDATE: of two
    concurrent claims only one changes the row, on any database). On success `case` says so too:
    the caller holds the row lock, so nothing else changed it and reading it back would tell nothing."""
    expires = now + timedelta(minutes=settings.HOTLINE_CLAIM_MINUTES)
    taken = bool(
        Case.objects.filter(condition, pk=case.pk).update(claimed_by=user, claim_expires_at=expires, status=status)
    )
    if taken:
        case.claimed_by, case.claim_expires_at, case.status = user, expires, status
    return taken


def _claim_audit(case: Case, *, user: AbstractBaseUser, queue: str, previous_holder: int | None) -> None:
    audit_record(
        action="case.claimed",
        actor=user,
        obj=case,
        # An expired claim taken over names the analyst who had it.
        details={"queue": queue, "previous_holder": previous_holder, "expires_at": case.claim_expires_at},
    )


@transaction.atomic
def case_claim_next(
    *, user: AbstractBaseUser, queue: str, filters: CaseFilters | None = None, exclude: Iterable[int] = ()
) -> Case | None:
    """Claim the first claimable case of `queue` (priority, then age) for `user`, or None if the
    queue is empty. `SELECT … FOR UPDATE SKIP LOCKED` lets concurrent analysts each take a
    different case without waiting on one another; a claim lasts HOTLINE_CLAIM_MINUTES, after
    which the case is claimable again. `exclude`: cases this analyst just skipped."""
    exclude = list(exclude)
    if queue == SECOND_OPINION:
        require_permission(user, "give_second_opinion")
    else:
        require_permission(user, "work_queue")
        if queue not in CaseQueue.values:
            raise ValueError(f"unknown queue {queue!r}")
    for _attempt in range(CLAIM_ATTEMPTS):
        now = timezone.now()
        candidates = claimable_cases(queue, filters, user=user, now=now).exclude(pk__in=exclude)
        case = candidates.select_for_update(skip_locked=True, of=("self",)).first()
        if case is None:
            return None
        condition = second_opinion_q(now, user) if queue == SECOND_OPINION else claimable_q(now)
        status = CaseStatus.AWAITING_SECOND_OPINION if queue == SECOND_OPINION else CaseStatus.IN_PROGRESS
        previous = case.claimed_by_id
        if _take(case, user=user, now=now, condition=condition, status=status):
            _claim_audit(case, user=user, queue=queue, previous_holder=previous)
            return case
    return None  # lost every race (SQLite only: PostgreSQL's row locks make the first try win)


@transaction.atomic
def case_claim(*, user: AbstractBaseUser, case: Case) -> Case:
    """Claim one particular case (from its page): open work, or a second opinion for one who may
    give it. Refused (PermissionDenied) when someone else holds it or it is not claimable."""
    now = timezone.now()
    case = _case_locked(case)
    if holds_claim(user, case, now=now):
        return case
    if case.status == CaseStatus.AWAITING_SECOND_OPINION:
        require_permission(user, "give_second_opinion")
        condition, status, queue = second_opinion_q(now, user), CaseStatus.AWAITING_SECOND_OPINION, SECOND_OPINION
    else:
        require_permission(user, "work_queue")
        condition, status, queue = claimable_q(now), CaseStatus.IN_PROGRESS, case.queue
    previous = case.claimed_by_id
    if not _take(case, user=user, now=now, condition=condition, status=status):
        raise PermissionDenied("This case cannot be claimed now.")
    _claim_audit(case, user=user, queue=queue, previous_holder=previous)
    return case


def _unclaim(case: Case) -> None:
    case.claimed_by = None
    case.claim_expires_at = None
    if case.status == CaseStatus.IN_PROGRESS:
        case.status = CaseStatus.OPEN
    case.save(update_fields=["claimed_by", "claim_expires_at", "status"])


@transaction.atomic
def case_release(*, user: AbstractBaseUser, case: Case) -> Case:
    """Give a held case back to its queue (skip). The holder may; so may whoever may reassign."""
    case = _case_locked(case)
    if case.claimed_by_id is None:
        return case
    if case.claimed_by_id != user.pk:
        require_permission(user, "reassign_case")
    holder = case.claimed_by_id
    _unclaim(case)
    audit_record(action="case.released", actor=user, obj=case, details={"holder": holder})
    # While it was held the pipeline left it alone: what it holds may have become known meanwhile.
    return case_refresh(case)


@transaction.atomic
def case_reassign(*, by: AbstractBaseUser, case: Case, to: AbstractBaseUser) -> Case:
    """Hand a case to another analyst (a coordinator's or senior analyst's decision)."""
    require_permission(by, "reassign_case")
    case = _case_locked(case)
    if case.status in (CaseStatus.ASSESSED, CaseStatus.CLOSED):
        raise ValueError("A finished case cannot be reassigned.")
    if not to.is_active or not to.has_perm("reports.work_queue"):  # type: ignore[attr-defined]
        raise ValueError("The case can only go to an active analyst.")
    if case.status == CaseStatus.AWAITING_SECOND_OPINION:
        if not to.has_perm("reports.give_second_opinion"):  # type: ignore[attr-defined]
            raise ValueError("A second opinion can only go to a senior analyst.")
        if case.assessments.filter(analyst_id=to.pk).exists():
            raise ValueError("A second opinion cannot go to the analyst who made the assessment.")
    previous = case.claimed_by_id
    case.claimed_by = to
    case.claim_expires_at = timezone.now() + timedelta(minutes=settings.HOTLINE_CLAIM_MINUTES)
    if case.status == CaseStatus.OPEN:
        case.status = CaseStatus.IN_PROGRESS
    case.save(update_fields=["claimed_by", "claim_expires_at", "status"])
    audit_record(action="case.reassigned", actor=by, obj=case, details={"from": previous, "to": to.pk})
    return case


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@transaction.atomic
def content_reveal(*, user: AbstractBaseUser, content: Content, case: Case) -> str:
    """Allow `user` to see one unblurred preview, once, now: the look is audited ("content.revealed",
    counted as exposure) and a short-lived single-use token is returned for fetching the image.
    Only the analyst holding the case may look, and only at content of that case."""
    require_permission(user, "reveal_content")
    now = timezone.now()
    case = _case_locked(case)
    if not holds_claim(user, case, now=now):
        raise PermissionDenied("Claim the case before revealing its content.")
    if not case.contents.filter(pk=content.pk).exists():
        raise PermissionDenied("This content is not part of the case.")
    if not Content.objects.filter(pk=content.pk).exclude(preview=b"").exists():
        raise ValueError("The preview of this content has been deleted.")
    token = secrets.token_urlsafe(32)
    RevealGrant.objects.create(
        user=user,
        content=content,
        case=case,
        token_digest=_token_digest(token),
        expires_at=now + timedelta(seconds=settings.HOTLINE_REVEAL_TOKEN_SECONDS),
    )
    audit_record(action=REVEAL_ACTION, actor=user, obj=content, details={"case": case.pk, "sha256": content.sha256})
    transaction.on_commit(REVEALS.inc)
    return token


def reveal_grant_consume(*, user: AbstractBaseUser, content_id: int, token: str) -> bool:
    """Spend a reveal token: True exactly once, for the user and content it was issued for, before
    it expires. One conditional UPDATE, so two requests with the same token never both succeed."""
    if not token or len(token) > 200:
        return False
    now = timezone.now()
    return bool(
        RevealGrant.objects.filter(
            token_digest=_token_digest(token),
            user_id=user.pk,
            content_id=content_id,
            used_at__isnull=True,
            expires_at__gt=now,
        ).update(used_at=now)
    )


@dataclass(frozen=True)
class AssessmentFields:
    """The ICCAM fields of one assessment."""

    verdict: str
    age_group: str = ""
    gender: str = ""
    virtual: str = Virtual.UNKNOWN
    site_type: str = ""
    commercial: bool | None = None
    notes: str = ""

    def same_classification(self, other: Assessment) -> bool:
        return all(
            getattr(self, name) == getattr(other, name)
            for name in ("verdict", "age_group", "gender", "virtual", "site_type", "commercial")
        )


def _propagate(content_ids: list[int]) -> None:
    """Open cases elsewhere holding this content, or content matching it, may now be known: place
    them again (and close them unseen where policy says so)."""
    if not content_ids:
        return
    related = set(content_ids) | set(
        Match.objects.filter(matched_content_id__in=content_ids, content__isnull=False).values_list(
            "content_id", flat=True
        )
    )
    cases_refresh_for_contents(sorted(related))


def _case_finish(case: Case, *, actor: AbstractBaseUser) -> Case:
    """Every content is assessed (and seen twice where the rule asks): the case is done.

    Closed, as cases closed unseen are: referrals follow from its assessments' verdicts."""
    now = timezone.now()
    case.status = CaseStatus.CLOSED
    case.assessed_at = case.closed_at = now
    case.claimed_by = None
    case.claim_expires_at = None
    case.save(update_fields=["status", "assessed_at", "closed_at", "claimed_by", "claim_expires_at"])
    latest = latest_assessments_in_case(case)
    audit_record(
        action="case.assessed",
        actor=actor,
        obj=case,
        details={"verdicts": sorted({assessment.verdict for assessment in latest.values()})},
    )
    reports_refresh_status(_case_report_ids(case))
    _propose_referrals(case)
    _propagate([content_id for content_id in latest if content_id is not None])
    return case


def _case_progress(case: Case, *, actor: AbstractBaseUser) -> Case:
    """After an assessment: done, waiting for a second opinion, or still being worked."""
    contents = list(case.contents.defer("preview"))
    latest = latest_assessments_in_case(case)
    if contents and any(content.pk not in latest for content in contents):
        return case
    if not contents and not latest:
        return case
    if contents and settings.HOTLINE_SECOND_OPINION_FIRST_SEEN:
        first_seen = contents_first_seen(case, contents)
        pending = [a for a in latest.values() if a.content_id in first_seen and a.second_opinion_by_id is None]
        if pending:
            if case.status != CaseStatus.AWAITING_SECOND_OPINION:
                case.status = CaseStatus.AWAITING_SECOND_OPINION
                case.claimed_by = None
                case.claim_expires_at = None
                case.save(update_fields=["status", "claimed_by", "claim_expires_at"])
                audit_record(
                    action="case.awaiting_second_opinion",
                    actor=actor,
                    obj=case,
                    details={"assessments": [a.pk for a in pending]},
                )
            return case
    return _case_finish(case, actor=actor)


@transaction.atomic
def assessment_create(
    *, user: AbstractBaseUser, case: Case, content: Content | None, fields: AssessmentFields
) -> Assessment:
    """Record the holder's classification of one content of the case (or of the case's URL when it
    captured nothing). When the fields are exactly those proposed by an earlier assessment of the
    same or matching content, the new one records it as `inherited_from`. Once every content is
    assessed the case closes, or, for first-seen content under HOTLINE_SECOND_OPINION_FIRST_SEEN,
    waits for a senior analyst's second opinion. A senior analyst assessing a case that waits for
    their opinion gives it by that assessment."""
    require_permission(user, "assess_content")
    now = timezone.now()
    case = _case_locked(case)
    if not holds_claim(user, case, now=now):
        raise PermissionDenied("Claim the case before assessing it.")
    second_look = case.status == CaseStatus.AWAITING_SECOND_OPINION
    if second_look:
        require_permission(user, "give_second_opinion")
        if case.assessments.filter(analyst_id=user.pk).exists():
            raise PermissionDenied("A second opinion must come from another analyst.")
    elif case.status != CaseStatus.IN_PROGRESS:
        raise ValueError("This case is not being worked.")
    if content is not None and not case.contents.filter(pk=content.pk).exists():
        raise ValueError("This content is not part of the case.")
    if content is None and case.contents.exists():
        raise ValueError("Assess each content of the case.")
    proposal = assessment_proposals([content], exclude_case=case).get(content.pk) if content is not None else None
    inherited = (
        proposal.assessment if proposal is not None and fields.same_classification(proposal.assessment) else None
    )
    assessment = Assessment(
        case=case,
        content=content,
        url=case.url if content is None else None,
        analyst=user,
        verdict=fields.verdict,
        age_group=fields.age_group,
        gender=fields.gender,
        virtual=fields.virtual,
        site_type=fields.site_type,
        commercial=fields.commercial,
        notes=fields.notes,
        inherited_from=inherited,
        second_opinion_by=user if second_look else None,
        second_opinion_at=now if second_look else None,
    )
    assessment.full_clean(exclude=["case", "content", "url", "analyst", "inherited_from", "second_opinion_by"])
    assessment.save()
    audit_record(
        action="assessment.created",
        actor=user,
        obj=assessment,
        details={
            "case": case.pk,
            "content": content.sha256 if content is not None else None,
            "verdict": fields.verdict,
            "virtual": fields.virtual,
            "proposal": proposal.assessment.pk if proposal is not None else None,
            "accepted_proposal": inherited is not None,
            "second_opinion": second_look,
        },
    )
    # Working the case keeps the claim alive.
    case.claim_expires_at = now + timedelta(minutes=settings.HOTLINE_CLAIM_MINUTES)
    case.save(update_fields=["claim_expires_at"])
    _case_progress(case, actor=user)
    return assessment


@transaction.atomic
def case_confirm_second_opinion(*, user: AbstractBaseUser, case: Case, notes: str = "") -> Case:
    """A senior analyst agrees with the assessments that wait for a second opinion; the case closes.
    Never one's own assessment: four eyes are two people."""
    require_permission(user, "give_second_opinion")
    case = _case_locked(case)
    if case.status != CaseStatus.AWAITING_SECOND_OPINION:
        raise ValueError("This case does not wait for a second opinion.")
    if not holds_claim(user, case):
        raise PermissionDenied("Claim the case before giving a second opinion.")
    pending = [a for a in latest_assessments_in_case(case).values() if a.second_opinion_by_id is None]
    if any(assessment.analyst_id == user.pk for assessment in pending):
        raise PermissionDenied("A second opinion must come from another analyst.")
    now = timezone.now()
    Assessment.objects.filter(pk__in=[a.pk for a in pending]).update(second_opinion_by=user, second_opinion_at=now)
    audit_record(
        action="assessment.second_opinion",
        actor=user,
        obj=case,
        details={
            "agreed": True,
            "assessments": [a.pk for a in pending],
            "verdicts": [a.verdict for a in pending],
            "notes": notes[:2000],
        },
    )
    return _case_finish(case, actor=user)


@dataclass
class ConfirmResult:
    confirmed: list[int] = dataclass_field(default_factory=list)
    skipped: dict[int, str] = dataclass_field(default_factory=dict)


@transaction.atomic
def cases_confirm_known(*, user: AbstractBaseUser, case_ids: Iterable[int]) -> ConfirmResult:
    """Close cases of known content at new locations without anyone looking: each content inherits
    the settled assessment of the same file or of the content it matched (ICCAM: re-seen items
    keep their classification). Nothing is revealed. A case is skipped, and left in its queue,
    when any of its contents has nothing to inherit, when it is not in the known-content queue,
    or when someone else holds it."""
    require_permission(user, "work_queue")
    require_permission(user, "assess_content")
    ids = sorted({int(case_id) for case_id in case_ids})
    result = ConfirmResult()
    now = timezone.now()
    available = Q(claimable_q(now)) | Q(claimed_by_id=user.pk, status=CaseStatus.IN_PROGRESS)
    locked = {
        case.pk: case
        for case in Case.objects.select_for_update(skip_locked=True, of=("self",)).filter(
            available, pk__in=ids, queue=CaseQueue.KNOWN_NEW_LOCATION
        )
    }
    report_ids: set[int] = set()
    for case_id in ids:
        case = locked.get(case_id)
        if case is None:
            result.skipped[case_id] = "not available in the known-content queue"
            continue
        contents = list(case.contents.defer("preview"))
        proposals = assessment_proposals(contents, exclude_case=case)
        if not contents or any(content.pk not in proposals for content in contents):
            result.skipped[case_id] = "not every content has an earlier assessment"
            continue
        Assessment.objects.bulk_create(
            [
                Assessment(
                    case=case,
                    content=content,
                    analyst=user,
                    verdict=proposals[content.pk].assessment.verdict,
                    age_group=proposals[content.pk].assessment.age_group,
                    gender=proposals[content.pk].assessment.gender,
                    virtual=proposals[content.pk].assessment.virtual,
                    site_type=proposals[content.pk].assessment.site_type,
                    commercial=proposals[content.pk].assessment.commercial,
                    inherited_from=proposals[content.pk].assessment,
                    notes="Confirmed as known content without viewing.",
                )
                for content in contents
            ]
        )
        case.status = CaseStatus.CLOSED
        case.auto_closed = True
        case.assessed_at = case.closed_at = now
        case.claimed_by = None
        case.claim_expires_at = None
        case.save(update_fields=["status", "auto_closed", "assessed_at", "closed_at", "claimed_by", "claim_expires_at"])
        audit_record(
            action="case.confirmed_known",
            actor=user,
            obj=case,
            details={
                "contents": [content.sha256 for content in contents],
                "inherited_from": [proposals[content.pk].assessment.pk for content in contents],
                "verdicts": [proposals[content.pk].assessment.verdict for content in contents],
                "how": [proposals[content.pk].how for content in contents],
            },
        )
        report_ids.update(_case_report_ids(case))
        _propose_referrals(case)
        result.confirmed.append(case_id)
    reports_refresh_status(sorted(report_ids))
    return result


@transaction.atomic
def staff_preference_set(*, user: AbstractBaseUser, greyscale: bool) -> StaffPreference:
    """Remember how `user` wants previews shown by default (audited: a setting change)."""
    preference, _created = StaffPreference.objects.select_for_update().get_or_create(user=user)
    if preference.greyscale != greyscale:
        preference.greyscale = greyscale
        preference.save(update_fields=["greyscale", "updated_at"])
        audit_record(action="staff.preference_changed", actor=user, obj=preference, details={"greyscale": greyscale})
    return preference
