"""Cases: every fetched URL and every hash-only partner report becomes work in a queue, unless
what it holds is already known and assessed (then it is closed unseen, by policy)."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from reports.models import Assessment, Case, Content, Match, Report, Url
from reports.models.choices import CaseQueue, CaseStatus, ReportStatus, Verdict
from reports.services.audit import audit_record

QUEUE_PRIORITY = {
    CaseQueue.NEW_UNKNOWN: 10,
    CaseQueue.AI_INDICATED: 20,
    CaseQueue.HASH_ONLY: 30,
    CaseQueue.KNOWN_NEW_LOCATION: 40,
}
# Added to the priority of a case with nothing captured (a dead link): it waits behind content.
NOTHING_CAPTURED_PENALTY = 50
ILLEGAL_VERDICTS = frozenset({Verdict.BASELINE, Verdict.NATIONAL})


def _latest_assessments(content_ids: Iterable[int]) -> dict[int, Assessment]:
    latest: dict[int, Assessment] = {}
    for assessment in Assessment.objects.filter(content_id__in=list(content_ids)).order_by(
        "content_id", "created_at", "pk"
    ):
        latest[assessment.content_id] = assessment  # type: ignore[index]
    return latest


def _inherited(case: Case, contents: list[Content]) -> tuple[dict[int, Assessment], set[int]]:
    """For each content: an earlier assessment to inherit (exact, or near where policy allows),
    and the set of contents known at all: from a hash list, as a near-duplicate of earlier
    content, or because the very same file was already found at another URL."""
    ids = [content.pk for content in contents]
    seen_elsewhere = set(
        Case.contents.through.objects.filter(content_id__in=ids)
        .exclude(case_id=case.pk)
        .values_list("content_id", flat=True)
    )
    own = _latest_assessments(ids)
    matches = list(
        Match.objects.filter(content_id__in=ids).filter(
            Q(matched_content__isnull=False, matched_content__quarantined=False)
            | Q(known_hash__isnull=False, known_hash__quarantined=False, known_hash__hash_list__active=True)
        )
    )
    known = {match.content_id for match in matches} | set(own) | seen_elsewhere
    inherit: dict[int, Assessment] = dict(own)
    if settings.HOTLINE_AUTO_CLOSE_KNOWN == "near":
        targets = _latest_assessments(m.matched_content_id for m in matches if m.matched_content_id)
        for match in sorted(matches, key=lambda m: m.distance):
            if match.content_id not in inherit and match.matched_content_id in targets:
                inherit[match.content_id] = targets[match.matched_content_id]  # type: ignore[index]
    return inherit, known


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
    if case.status != CaseStatus.OPEN or case.claimed_by_id:
        return case
    if contents is None:
        # Not the encrypted preview: it is most of a row's bytes and nothing here reads it.
        contents = list(case.contents.defer("preview"))
    if case.url_id is None:
        queue = CaseQueue.HASH_ONLY
    elif contents and all(content.matched_at for content in contents):
        inherit, known = _inherited(case, contents)
        policy = settings.HOTLINE_AUTO_CLOSE_KNOWN
        if policy != "off" and all(content.pk in inherit and not content.quarantined for content in contents):
            return _auto_close(case, contents, inherit)
        if all(content.pk in known for content in contents):
            queue = CaseQueue.KNOWN_NEW_LOCATION
        elif any(content.ai_indicated for content in contents):
            queue = CaseQueue.AI_INDICATED
        else:
            queue = CaseQueue.NEW_UNKNOWN
    elif any(content.ai_indicated for content in contents):
        queue = CaseQueue.AI_INDICATED
    else:
        queue = CaseQueue.NEW_UNKNOWN
    priority = QUEUE_PRIORITY[queue] + (NOTHING_CAPTURED_PENALTY if case.url_id and not contents else 0)
    if (case.queue, case.priority) != (queue, priority):
        case.queue, case.priority = queue, priority
        case.save(update_fields=["queue", "priority"])
    return case


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
    """The open case of `url` (created if none), holding `contents`. The caller holds the URL's row
    lock, and the one-open-case-per-URL constraint backs it up."""
    case = Case.objects.filter(url=url).exclude(status=CaseStatus.CLOSED).first()
    created = case is None
    if case is None:
        case = Case.objects.create(url=url)
    if contents:
        case.contents.add(*contents)
    Report.objects.filter(reported_urls__url=url, status=ReportStatus.RECEIVED).update(
        status=ReportStatus.IN_ASSESSMENT
    )
    # A case created just now holds exactly `contents`.
    return case_refresh(case, contents=list(dict.fromkeys(contents)) if created else None)


@transaction.atomic
def case_for_hash_report(*, report: Report) -> Case:
    case, _created = Case.objects.get_or_create(report=report, url=None, defaults={"queue": CaseQueue.HASH_ONLY})
    case = case_refresh(case)
    reports_refresh_status([report.pk])
    return case


def cases_refresh_for_contents(content_ids: Iterable[int]) -> None:
    for case in Case.objects.filter(contents__in=list(content_ids), status=CaseStatus.OPEN).distinct():
        case_refresh(case)
