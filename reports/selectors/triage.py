"""Reads for casework: the queues, the cases a user may see, what a case page shows, proposals
from earlier assessments, and the analysts' exposure.

Visibility is decided here, once (`visible_cases`), and every case or content a staff view
touches is fetched through `get_case_for_user` / `get_content_for_user`: a case the user may
not see is a 404, the same as a case that does not exist.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.paginator import Page, Paginator
from django.db.models import Count, Exists, ExpressionWrapper, Min, OuterRef, Q, QuerySet
from django.db.models.fields import BooleanField
from django.db.models.functions import TruncHour
from django.http import Http404
from django.utils import timezone

from reports.models import (
    Assessment,
    AuditEvent,
    Capture,
    Case,
    Content,
    Match,
    Report,
    ReportedUrl,
    SubmittedHash,
)
from reports.models.choices import CLAIMABLE_CASE_STATUSES, CaseQueue, CaseStatus

# The senior analysts' queue: cases whose first-seen content waits for a second pair of eyes.
SECOND_OPINION = "second_opinion"
QUEUE_PAGE_SIZE = 50
AUDIT_PAGE_SIZE = 50
# Assessments made in a case that is still being worked or waits for a second opinion are not
# yet the hotline's decision: nothing is inherited from them, and nothing is closed unseen by them.
UNSETTLED_STATUSES = (CaseStatus.IN_PROGRESS, CaseStatus.AWAITING_SECOND_OPINION)
EXACT_KINDS = ("sha256", "md5", "sha1")

# Audit actions that are an analyst's casework (exposure counts hours from these).
REVEAL_ACTION = "content.revealed"
CASEWORK_ACTIONS = (
    "case.claimed",
    "case.released",
    REVEAL_ACTION,
    "assessment.created",
    "assessment.second_opinion",
    "case.confirmed_known",
)

# --- Filters ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseFilters:
    """What the queues page narrows cases by. Empty means "any"."""

    source: str = ""  # "public", "partner" (any partner) or ""
    partner_id: int | None = None
    category: str = ""
    country: str = ""  # ISO 3166-1 alpha-2 of the hosting
    older_than_hours: int | None = None

    def is_empty(self) -> bool:
        return self == CaseFilters()


def _case_reports_exist(**lookups: Any) -> Q:
    """Cases having a report that satisfies `lookups`: a report naming the case's URL, or the
    partner's hash-only report the case was made for. Subqueries, not joins: no duplicate rows,
    and the claim's SELECT … FOR UPDATE stays a lock on case rows alone."""
    via_url = ReportedUrl.objects.filter(url_id=OuterRef("url_id"), **{f"report__{k}": v for k, v in lookups.items()})
    direct = Report.objects.filter(pk=OuterRef("report_id"), **lookups)
    return Q(Exists(via_url)) | Q(Exists(direct))


def cases_filter(cases: QuerySet[Case], filters: CaseFilters | None, *, now: datetime | None = None) -> QuerySet[Case]:
    if filters is None:
        return cases
    if filters.partner_id is not None:
        cases = cases.filter(_case_reports_exist(partner_id=filters.partner_id))
    elif filters.source:
        cases = cases.filter(_case_reports_exist(source=filters.source))
    if filters.category:
        cases = cases.filter(_case_reports_exist(category=filters.category))
    if filters.country:
        cases = cases.filter(url__hosting_country=filters.country.upper())
    if filters.older_than_hours:
        cases = cases.filter(created_at__lte=(now or timezone.now()) - timedelta(hours=filters.older_than_hours))
    return cases


# --- Queues ----------------------------------------------------------------------------------


def claimable_q(now: datetime) -> Q:
    """Open work nobody holds: never claimed, released, or claimed by someone whose claim ran out."""
    return Q(status__in=list(CLAIMABLE_CASE_STATUSES)) & (Q(claimed_by__isnull=True) | Q(claim_expires_at__lt=now))


def _assessed_by(user: Any) -> Exists:
    return Exists(Assessment.objects.filter(case_id=OuterRef("pk"), analyst_id=user.pk))


def second_opinion_q(now: datetime, user: Any | None = None) -> Q:
    """Cases waiting for a second opinion that nobody holds; never one the user assessed (four eyes)."""
    condition = Q(status=CaseStatus.AWAITING_SECOND_OPINION) & (
        Q(claimed_by__isnull=True) | Q(claim_expires_at__lt=now)
    )
    if user is not None:
        condition &= ~Q(_assessed_by(user))
    return condition


def claimable_cases(
    queue: str, filters: CaseFilters | None = None, *, user: Any | None = None, now: datetime | None = None
) -> QuerySet[Case]:
    """The cases of `queue` (a CaseQueue value or SECOND_OPINION) that can be claimed now, in the
    order they should be worked: priority, then age (index case_queue_order)."""
    now = now or timezone.now()
    if queue == SECOND_OPINION:
        cases = Case.objects.filter(second_opinion_q(now, user))
    else:
        cases = Case.objects.filter(claimable_q(now), queue=queue)
    return cases_filter(cases, filters, now=now).order_by("priority", "created_at", "pk")


@dataclass(frozen=True)
class QueueCount:
    key: str
    label: str
    count: int
    oldest: datetime | None


def queue_counts(user: Any, filters: CaseFilters | None = None) -> list[QueueCount]:
    """Claimable cases per queue (with the filters applied), in priority order; the second-opinion
    queue is included for those who may give one."""
    now = timezone.now()
    rows = {
        row["queue"]: row
        for row in cases_filter(Case.objects.filter(claimable_q(now)), filters, now=now)
        .order_by()
        .values("queue")
        .annotate(n=Count("pk"), oldest=Min("created_at"))
    }
    counts = [
        QueueCount(
            queue.value,
            str(queue.label),
            rows.get(queue.value, {}).get("n", 0),
            rows.get(queue.value, {}).get("oldest"),
        )
        for queue in CaseQueue
    ]
    if user.has_perm("reports.give_second_opinion"):
        second = cases_filter(Case.objects.filter(second_opinion_q(now, user)), filters, now=now).aggregate(
            n=Count("pk"), oldest=Min("created_at")
        )
        counts.append(QueueCount(SECOND_OPINION, "Second opinion", second["n"], second["oldest"]))
    return counts


def queue_cases(queue: str, filters: CaseFilters | None = None, page: int | str = 1, *, user: Any = None) -> Page:
    """One page of a queue's claimable cases, in working order, with their URL and content count."""
    cases = (
        claimable_cases(queue, filters, user=user)
        .select_related("url")
        .annotate(content_count=Count("contents", distinct=True))
    )
    return Paginator(cases, QUEUE_PAGE_SIZE).get_page(page)


def held_cases(user: Any | None = None) -> QuerySet[Case]:
    """Cases held under a claim that has not run out (by `user`, or by anyone)."""
    cases = Case.objects.filter(claimed_by__isnull=False, claim_expires_at__gte=timezone.now())
    if user is not None:
        cases = cases.filter(claimed_by=user)
    return cases.select_related("url", "claimed_by").order_by("claim_expires_at")


# --- Who sees what ---------------------------------------------------------------------------


def sees_all_cases(user: Any) -> bool:
    """Senior analysts and coordinators oversee the work: they see every case."""
    return user.has_perm("reports.give_second_opinion") or user.has_perm("reports.reassign_case")


def visible_cases(user: Any) -> QuerySet[Case]:
    """The cases `user` may open. An analyst: open cases in the queues, cases they hold, and cases
    they assessed. Senior analysts and coordinators: every case. Anyone else: none."""
    if not user.is_authenticated or not user.is_active:
        return Case.objects.none()
    if sees_all_cases(user):
        return Case.objects.all()
    if not user.has_perm("reports.work_queue"):
        return Case.objects.none()
    return Case.objects.filter(claimable_q(timezone.now()) | Q(claimed_by=user) | Q(_assessed_by(user)))


def get_case_for_user(user: Any, pk: int) -> Case:
    case = visible_cases(user).select_related("url", "report", "report__partner", "claimed_by").filter(pk=pk).first()
    if case is None:
        raise Http404("No such case.")
    return case


def get_content_for_user(user: Any, pk: int) -> Content:
    """A content that belongs to a case the user may open (else 404). The preview is not loaded."""
    in_visible_case = Exists(
        Case.contents.through.objects.filter(content_id=OuterRef("pk"), case_id__in=visible_cases(user).values("pk"))
    )
    content = Content.objects.defer("preview").filter(in_visible_case, pk=pk).first()
    if content is None:
        raise Http404("No such content.")
    return content


def holds_claim(user: Any, case: Case, *, now: datetime | None = None) -> bool:
    return (
        case.claimed_by_id is not None
        and case.claimed_by_id == user.pk
        and case.claim_expires_at is not None
        and case.claim_expires_at >= (now or timezone.now())
    )


def assignable_users() -> QuerySet[Any]:
    """Active staff who may work cases (the targets of a reassignment)."""
    user_model = get_user_model()
    return (
        user_model.objects.filter(is_active=True)
        .filter(
            Q(groups__permissions__codename="work_queue", groups__permissions__content_type__app_label="reports")
            | Q(user_permissions__codename="work_queue", user_permissions__content_type__app_label="reports")
            | Q(is_superuser=True)
        )
        .distinct()
        .order_by("username")
    )


# --- Proposals from earlier assessments ---------------------------------------------------------


@dataclass(frozen=True)
class Proposal:
    """An earlier assessment that a content's assessment may start from (or inherit)."""

    assessment: Assessment
    how: str  # "same file", "sha256", "pdq", "phash", …
    distance: int
    matched_content_id: int


def settled_assessments() -> QuerySet[Assessment]:
    """Assessments that are the hotline's decision: not in a case still being worked or waiting for
    its second opinion."""
    return Assessment.objects.exclude(case__status__in=UNSETTLED_STATUSES)


def _latest_by_content(content_ids: Iterable[int], *, exclude_case: Case | None) -> dict[int, Assessment]:
    assessments = settled_assessments().filter(content_id__in=list(content_ids))
    if exclude_case is not None:
        assessments = assessments.exclude(case=exclude_case)
    latest: dict[int, Assessment] = {}
    for assessment in assessments.select_related("case").order_by("content_id", "created_at", "pk"):
        latest[assessment.content_id] = assessment  # type: ignore[index]
    return latest


def assessment_proposals(contents: Iterable[Content], *, exclude_case: Case | None = None) -> dict[int, Proposal]:
    """For each content, the settled assessment closest to it: of the very same file (in another
    case), else of the nearest matched content (exact hashes before PDQ/pHash distance; matches in
    either direction). Quarantined hashes propose nothing: they match too much to be trusted."""
    ids = [content.pk for content in contents]
    if not ids:
        return {}
    pairs: list[tuple[int, int, str, int]] = []  # (content, other content, kind, distance)
    forward = Match.objects.filter(
        content_id__in=ids, matched_content__isnull=False, matched_content__quarantined=False
    )
    for content_id, other_id, kind, distance in forward.values_list(
        "content_id", "matched_content_id", "kind", "distance"
    ):
        pairs.append((content_id, other_id, kind, distance))
    backward = Match.objects.filter(matched_content_id__in=ids, content__isnull=False, content__quarantined=False)
    for content_id, other_id, kind, distance in backward.values_list(
        "matched_content_id", "content_id", "kind", "distance"
    ):
        pairs.append((content_id, other_id, kind, distance))
    own = _latest_by_content(ids, exclude_case=exclude_case)
    others = _latest_by_content({other for _, other, _, _ in pairs} - set(ids), exclude_case=exclude_case)
    proposals: dict[int, Proposal] = {
        content_id: Proposal(assessment, "same file", 0, content_id) for content_id, assessment in own.items()
    }
    for content_id, other_id, kind, distance in sorted(pairs, key=lambda p: (p[2] not in EXACT_KINDS, p[3], p[1])):
        if content_id not in proposals and other_id in others:
            proposals[content_id] = Proposal(others[other_id], kind, distance, other_id)
    quarantined = set(Content.objects.filter(pk__in=ids, quarantined=True).values_list("pk", flat=True))
    return {content_id: proposal for content_id, proposal in proposals.items() if content_id not in quarantined}


def contents_first_seen(case: Case, contents: Iterable[Content]) -> set[int]:
    """The contents of `case` that nobody has classified before, nor anything like them: no settled
    assessment of the same file or of matching content (see `assessment_proposals`) and no hit in
    an active hash list. The same unassessed file found at several URLs is still first-seen.
    Content whose matching has not run yet counts as first-seen (we cannot tell: the careful answer)."""
    contents = list(contents)
    ids = [content.pk for content in contents]
    known = set(assessment_proposals(contents, exclude_case=case))
    known |= set(
        Match.objects.filter(
            content_id__in=ids,
            known_hash__isnull=False,
            known_hash__quarantined=False,
            known_hash__hash_list__active=True,
        ).values_list("content_id", flat=True)
    )
    return {content.pk for content in contents if content.matched_at is None or content.pk not in known}


# --- The case page -------------------------------------------------------------------------------


@dataclass
class MatchView:
    kind: str
    distance: int
    direction: str  # "earlier" (this content matched it) or "later" (it matched this content)
    content_id: int | None = None
    content_sha256: str = ""
    cases: list[Case] = field(default_factory=list)
    assessment: Assessment | None = None
    hash_list: str = ""
    category: str = ""
    quarantined: bool = False


@dataclass
class ContentView:
    content: Content
    has_preview: bool
    matches: list[MatchView]
    assessments: list[Assessment]  # in this case, oldest first
    proposal: Proposal | None
    other_cases: list[Case]

    @property
    def latest_assessment(self) -> Assessment | None:
        return self.assessments[-1] if self.assessments else None


@dataclass
class CaseDetail:
    case: Case
    reports: list[Report]
    sightings: list[ReportedUrl]
    captures: list[Capture]
    contents: list[ContentView]
    submitted_hashes: list[tuple[SubmittedHash, list[MatchView]]]
    assessments: list[Assessment]
    url_assessments: list[Assessment]


def case_reports(case: Case) -> list[Report]:
    reports = Report.objects.select_related("partner").order_by("created_at", "pk")
    if case.url_id:
        return list(reports.filter(reported_urls__url_id=case.url_id).distinct())
    return list(reports.filter(pk=case.report_id))


def _assessment_of_cases(content_ids: set[int]) -> tuple[dict[int, list[Case]], dict[int, Assessment]]:
    cases_by_content: dict[int, list[Case]] = defaultdict(list)
    links = Case.contents.through.objects.filter(content_id__in=content_ids).select_related("case")
    for link in links.order_by("case_id"):
        cases_by_content[link.content_id].append(link.case)
    latest: dict[int, Assessment] = {}
    for assessment in Assessment.objects.filter(content_id__in=content_ids).order_by("content_id", "created_at", "pk"):
        latest[assessment.content_id] = assessment  # type: ignore[index]
    return cases_by_content, latest


def _list_view(match: Match) -> MatchView:
    known = match.known_hash
    assert known is not None  # noqa: S101 - callers check known_hash_id
    return MatchView(
        kind=match.kind,
        distance=match.distance,
        direction="list",
        hash_list=known.hash_list.name,
        category=known.get_category_display(),
        quarantined=known.quarantined,
    )


def _match_views(
    matches: list[Match], *, subject_ids: set[int], by_submitted: bool = False
) -> dict[int, list[MatchView]]:
    """Views of `matches`, keyed by the subject (a content, or a submitted hash) they concern. A
    content sees what it matched ("earlier") and what matched it later ("later")."""
    other_ids: set[int] = set()
    for match in matches:
        if (by_submitted or match.content_id in subject_ids) and match.matched_content_id:
            other_ids.add(match.matched_content_id)
        if not by_submitted and match.matched_content_id in subject_ids and match.content_id:
            other_ids.add(match.content_id)
    cases_by_content, latest = _assessment_of_cases(other_ids)
    sha = dict(Content.objects.filter(pk__in=other_ids).values_list("pk", "sha256"))
    views: dict[int, list[MatchView]] = defaultdict(list)

    def content_view(match: Match, other_id: int, direction: str) -> MatchView:
        return MatchView(
            kind=match.kind,
            distance=match.distance,
            direction=direction,
            content_id=other_id,
            content_sha256=sha.get(other_id, ""),
            cases=cases_by_content.get(other_id, []),
            assessment=latest.get(other_id),
        )

    for match in matches:
        key = match.submitted_hash_id if by_submitted else match.content_id
        if by_submitted or match.content_id in subject_ids:
            if match.matched_content_id:
                views[key].append(content_view(match, match.matched_content_id, "earlier"))  # type: ignore[index]
            if match.known_hash_id:
                views[key].append(_list_view(match))  # type: ignore[index]
        if not by_submitted and match.matched_content_id in subject_ids:
            key = match.matched_content_id
            if match.content_id:
                views[key].append(content_view(match, match.content_id, "later"))
            else:  # a partner's submitted hash matched this content: nothing to link to
                views[key].append(MatchView(kind=match.kind, distance=match.distance, direction="submitted"))
    for items in views.values():
        items.sort(key=lambda view: (view.direction != "list", view.distance))
    return views


def case_detail(case: Case) -> CaseDetail:
    """Everything the case page shows, in a bounded number of queries. Never the previews."""
    contents = list(
        case.contents.defer("preview")
        .annotate(has_preview=ExpressionWrapper(~Q(preview=b""), output_field=BooleanField()))
        .order_by("first_seen_at", "pk")
    )
    ids = {content.pk for content in contents}
    matches = list(
        Match.objects.filter(Q(content_id__in=ids) | Q(matched_content_id__in=ids)).select_related(
            "known_hash", "known_hash__hash_list"
        )
    )
    match_views = _match_views(matches, subject_ids=ids)
    assessments = list(case.assessments.select_related("analyst", "second_opinion_by").order_by("created_at", "pk"))
    by_content: dict[int, list[Assessment]] = defaultdict(list)
    for assessment in assessments:
        if assessment.content_id:
            by_content[assessment.content_id].append(assessment)
    proposals = assessment_proposals(contents, exclude_case=case)
    elsewhere, _latest = _assessment_of_cases(ids)
    content_views = [
        ContentView(
            content=content,
            has_preview=bool(content.has_preview),  # type: ignore[attr-defined]
            matches=match_views.get(content.pk, []),
            assessments=by_content.get(content.pk, []),
            proposal=proposals.get(content.pk),
            other_cases=[other for other in elsewhere.get(content.pk, []) if other.pk != case.pk],
        )
        for content in contents
    ]
    submitted: list[tuple[SubmittedHash, list[MatchView]]] = []
    if case.url_id is None and case.report_id:
        hashes = list(SubmittedHash.objects.filter(report_id=case.report_id).order_by("pk"))
        hash_matches = list(
            Match.objects.filter(submitted_hash__in=hashes).select_related("known_hash", "known_hash__hash_list")
        )
        views = _match_views(hash_matches, subject_ids=set(), by_submitted=True)
        submitted = [(submitted_hash, views.get(submitted_hash.pk, [])) for submitted_hash in hashes]
    return CaseDetail(
        case=case,
        reports=case_reports(case),
        sightings=list(ReportedUrl.objects.filter(url_id=case.url_id).select_related("report").order_by("created_at"))
        if case.url_id
        else [],
        captures=list(Capture.objects.filter(url_id=case.url_id).order_by("started_at", "pk")) if case.url_id else [],
        contents=content_views,
        submitted_hashes=submitted,
        assessments=assessments,
        url_assessments=[assessment for assessment in assessments if assessment.content_id is None],
    )


@dataclass(frozen=True)
class KnownCaseSummary:
    """A case in the known-content queue as the bulk-confirm list shows it: no picture, only what
    the earlier assessments say."""

    case: Case
    content_count: int
    proposals: list[Proposal]
    confirmable: bool


def known_case_summaries(cases: Iterable[Case]) -> list[KnownCaseSummary]:
    cases = list(cases)
    links = Case.contents.through.objects.filter(case_id__in=[case.pk for case in cases]).select_related("content")
    contents_by_case: dict[int, list[Content]] = defaultdict(list)
    for link in links.defer("content__preview"):
        contents_by_case[link.case_id].append(link.content)
    summaries = []
    for case in cases:
        contents = contents_by_case.get(case.pk, [])
        proposals = assessment_proposals(contents, exclude_case=case)
        confirmable = bool(contents) and all(content.pk in proposals for content in contents)
        summaries.append(KnownCaseSummary(case, len(contents), list(proposals.values()), confirmable))
    return summaries


# --- Exposure and the audit trail --------------------------------------------------------------


def start_of_today(now: datetime | None = None) -> datetime:
    local = timezone.localtime(now or timezone.now())
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def reveals_today(user: Any) -> int:
    """How many images `user` has revealed today (local day), from the audit trail."""
    return AuditEvent.objects.filter(action=REVEAL_ACTION, actor_id=user.pk, at__gte=start_of_today()).count()


@dataclass(frozen=True)
class ExposureRow:
    user_id: int
    username: str
    reveals: int
    reveals_today: int
    cases_assessed: int
    contents_assessed: int
    active_hours: int
    over_limit_today: bool


def exposure_by_analyst(*, since: datetime) -> list[ExposureRow]:
    """Per staff member with casework since `since`: images revealed, cases and contents assessed,
    and hours in which they did casework (clock hours with at least one claim, reveal or
    assessment). Counts only, never content."""
    events = AuditEvent.objects.filter(at__gte=since, action__in=CASEWORK_ACTIONS, actor__isnull=False)
    reveals = dict(
        events.filter(action=REVEAL_ACTION)
        .order_by()
        .values("actor_id")
        .annotate(n=Count("pk"))
        .values_list("actor_id", "n")
    )
    today = dict(
        AuditEvent.objects.filter(action=REVEAL_ACTION, at__gte=start_of_today(), actor__isnull=False)
        .order_by()
        .values("actor_id")
        .annotate(n=Count("pk"))
        .values_list("actor_id", "n")
    )
    hours: dict[int, int] = defaultdict(int)
    for actor_id, _hour in events.annotate(hour=TruncHour("at")).order_by().values_list("actor_id", "hour").distinct():
        hours[actor_id] += 1
    assessed = {
        row["analyst_id"]: row
        for row in Assessment.objects.filter(created_at__gte=since, analyst__isnull=False)
        .order_by()
        .values("analyst_id")
        .annotate(cases=Count("case_id", distinct=True), contents=Count("content_id", distinct=True))
    }
    user_ids = set(reveals) | set(today) | set(hours) | set(assessed)
    names = dict(get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "username"))
    limit = settings.HOTLINE_REVEAL_SOFT_LIMIT
    rows = [
        ExposureRow(
            user_id=user_id,
            username=names.get(user_id, str(user_id)),
            reveals=reveals.get(user_id, 0),
            reveals_today=today.get(user_id, 0),
            cases_assessed=assessed.get(user_id, {}).get("cases", 0),
            contents_assessed=assessed.get(user_id, {}).get("contents", 0),
            active_hours=hours.get(user_id, 0),
            over_limit_today=today.get(user_id, 0) >= limit,
        )
        for user_id in user_ids
    ]
    return sorted(rows, key=lambda row: (-row.reveals, row.username))


@dataclass(frozen=True)
class AuditFilters:
    action: str = ""
    actor: str = ""  # username
    since: datetime | None = None
    until: datetime | None = None

    def as_details(self) -> dict[str, str]:
        return {
            "action": self.action,
            "actor": self.actor,
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
        }


def audit_events(filters: AuditFilters | None = None) -> QuerySet[AuditEvent]:
    """Audit events, newest first, narrowed by `filters`."""
    events = AuditEvent.objects.select_related("actor").order_by("-pk")
    if filters is None:
        return events
    if filters.action:
        events = events.filter(action=filters.action)
    if filters.actor:
        events = events.filter(actor__username=filters.actor)
    if filters.since:
        events = events.filter(at__gte=filters.since)
    if filters.until:
        events = events.filter(at__lt=filters.until)
    return events


def audit_page(filters: AuditFilters | None, page: int | str = 1) -> Page:
    return Paginator(audit_events(filters), AUDIT_PAGE_SIZE).get_page(page)


def audit_actions() -> list[str]:
    return list(AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct())


def latest_assessments_in_case(case: Case) -> dict[int | None, Assessment]:
    """The latest assessment of each content of `case` (None: the URL's own, when nothing was captured)."""
    latest: dict[int | None, Assessment] = {}
    for assessment in case.assessments.select_related("content").order_by("created_at", "pk"):
        latest[assessment.content_id] = assessment
    return latest
