"""Reads for referrals: the lists coordinators work from, what is due, and what a reporter may see."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone

from reports.models import Case, Referral, Report, Url
from reports.models.choices import OPEN_REFERRAL_STATUSES, TAKEDOWN_KINDS, ReferralStatus
from reports.selectors.triage import visible_cases


def referrals_due_for_recheck(*, now: datetime | None = None, limit: int = 1000) -> list[int]:
    now = now or timezone.now()
    return list(
        Referral.objects.filter(status__in=OPEN_REFERRAL_STATUSES, kind__in=TAKEDOWN_KINDS, next_check_at__lte=now)
        .order_by("next_check_at")
        .values_list("pk", flat=True)[:limit]
    )


def case_referrals(case: Case) -> list[Referral]:
    return list(
        case.referrals.select_related("abuse_contact", "partner", "created_by")
        .prefetch_related("events", "events__actor", "urls")
        .order_by("pk")
    )


@dataclass(frozen=True)
class ReferralFilters:
    status: str = ""
    kind: str = ""
    attention: bool = False  # drafts without an address, changed content, escalations


def referral_list(user: Any, filters: ReferralFilters) -> QuerySet[Referral]:
    """The referrals `user` may see: those of cases they may open (as `get_referral_for_user` checks)."""
    query = (
        Referral.objects.filter(Q(case__isnull=True) | Q(case__in=visible_cases(user)))
        .select_related("case", "abuse_contact", "partner")
        .prefetch_related("urls")
    )
    if filters.status == "open":
        query = query.filter(status__in=[ReferralStatus.DRAFT, *OPEN_REFERRAL_STATUSES])
    elif filters.status:
        query = query.filter(status=filters.status)
    if filters.kind:
        query = query.filter(kind=filters.kind)
    if filters.attention:
        query = query.filter(
            Q(status=ReferralStatus.DRAFT, email="", kind__in=TAKEDOWN_KINDS)
            | Q(changed_at__isnull=False, status__in=OPEN_REFERRAL_STATUSES)
            | Q(escalation__in=["site_owner", "registrar"], status__in=OPEN_REFERRAL_STATUSES)
        )
    return query.order_by("-created_at", "-pk")


def get_referral_for_user(user: Any, pk: int) -> Referral:
    """A referral the user may act on: they manage referrals and may open its case (else 404)."""
    if not user.has_perm("reports.manage_referrals"):
        raise Http404("No such referral.")
    referral = Referral.objects.select_related("case").filter(pk=pk).first()
    if referral is None:
        raise Http404("No such referral.")
    if referral.case_id is not None and not visible_cases(user).filter(pk=referral.case_id).exists():
        raise Http404("No such referral.")
    return referral


# What the reporter (status page) and partners (API) may see: an outcome, never who was told or how.
OUTCOME_REMOVED = "removed"


def report_referral_outcome(report: Report) -> str | None:
    """The outcome of the referrals covering the report's URLs, or None while there is none:
    "removed" once every URL a takedown was asked for is gone, else the latest status of a takedown
    referral (sent, acknowledged, not_removed, refused), else that of any other referral."""
    referrals = list(
        Referral.objects.filter(urls__sightings_set__report=report)
        .exclude(status__in=[ReferralStatus.DRAFT, ReferralStatus.CANCELLED])
        .order_by("-created_at", "-pk")
        .distinct()
        .values("pk", "kind", "status")
    )
    if not referrals:
        return None
    takedowns = [r for r in referrals if r["kind"] in TAKEDOWN_KINDS]
    if takedowns:
        covered = Url.objects.filter(referrals__pk__in=[r["pk"] for r in takedowns], sightings_set__report=report)
        removed_statuses = {r["status"] for r in takedowns} == {ReferralStatus.REMOVED}
        if removed_statuses or not covered.filter(removed_at__isnull=True).exists():
            return OUTCOME_REMOVED
        return takedowns[0]["status"]
    return referrals[0]["status"]
