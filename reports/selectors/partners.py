"""Reads for partners: who holds a bearer token, and what became of their reports."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Prefetch

from reports.models import (
    ApiToken,
    Capture,
    Case,
    Content,
    Match,
    Partner,
    Report,
    ReportedUrl,
    SubmittedHash,
    Url,
)
from reports.models.choices import CaptureError, FetchStatus
from reports.selectors.matching import MatchInfo, exact_matches
from reports.selectors.referrals import report_referral_outcome
from reports.services.partners import token_digest


def token_authenticate(secret: str) -> ApiToken | None:
    """The live token for `secret` (with its active partner), or None."""
    if not secret or len(secret) > 200:
        return None
    token = (
        ApiToken.objects.select_related("partner")
        .filter(digest=token_digest(secret), revoked_at__isnull=True, partner__active=True)
        .first()
    )
    return token


# --- What a partner may read back of its reports -------------------------------------------------


def partner_report_get(*, partner: Partner, report_id: int) -> Report | None:
    """The partner's own report, or None (also for another partner's id: never say it exists)."""
    return Report.objects.filter(partner=partner, pk=report_id).first()


def _hash_entries(reports: Sequence[Report]) -> dict[int, list[dict[str, Any]]]:
    rows = list(
        SubmittedHash.objects.filter(report__in=[report.pk for report in reports])
        .order_by("pk")
        .values_list("pk", "report_id", "algorithm", "value")
    )
    exact = exact_matches((algorithm, value) for _, _, algorithm, value in rows)
    near: dict[int, list[MatchInfo]] = defaultdict(list)
    for match in (
        Match.objects.filter(submitted_hash__in=[pk for pk, _, _, _ in rows], distance__gt=0)
        .select_related("matched_content", "known_hash__hash_list")
        .order_by("distance", "pk")
    ):
        near[match.submitted_hash_id].append(_match_info(match))  # type: ignore[index]
    by_report: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for pk, report_id, algorithm, value in rows:
        by_report[report_id].append(
            {"algorithm": algorithm, "value": value, "matches": list(exact.get((algorithm, value), [])) + near[pk]}
        )
    return by_report


def report_submit_summaries(reports: Sequence[Report]) -> list[dict[str, Any]]:
    """The submit response for each report: its URLs (known before?) and its hashes' matches."""
    # Plain values, not model instances: a batch reads thousands of rows and needs four columns.
    urls: dict[int, list[dict[str, Any]]] = defaultdict(list)
    sightings = (
        ReportedUrl.objects.filter(report__in=[report.pk for report in reports])
        .order_by("report", "position")
        .values_list("report_id", "submitted_url", "url__canonical_url", "was_known")
    )
    for report_id, submitted_url, canonical_url, was_known in sightings:
        urls[report_id].append({"url": submitted_url, "canonical_url": canonical_url, "known": was_known})
    hashes = _hash_entries(reports)
    return [
        {"id": report.pk, "status": report.status, "urls": urls[report.pk], "hashes": hashes[report.pk]}
        for report in reports
    ]


def _match_info(match: Match) -> MatchInfo:
    return {
        "kind": match.kind,
        "distance": match.distance,
        "content": match.matched_content.sha256 if match.matched_content_id else None,
        "hash_list": match.known_hash.hash_list.name if match.known_hash_id else None,
    }


def _fetch_status(url: Url) -> str:
    if url.fetch_status == FetchStatus.ERROR:
        return url.fetch_error or CaptureError.OTHER.value
    return url.fetch_status


def _content_entry(content: Content) -> dict[str, Any]:
    provenance = content.provenance or {}
    return {
        "sha256": content.sha256,
        "md5": content.md5,
        "sha1": content.sha1,
        "pdq": content.pdq or None,
        "phash": content.phash or None,
        "matches": [_match_info(match) for match in content.matches.all()],
        "provenance": {"ai_indicated": content.ai_indicated, "signals": provenance.get("signals", [])},
    }


def partner_report_detail(*, partner: Partner, report: Report) -> dict[str, Any]:
    """Everything later stages found for a partner's report, in the published read-back shape."""
    sightings = list(
        ReportedUrl.objects.filter(report=report)
        .select_related("url")
        .prefetch_related(
            Prefetch(
                "url__captures",
                queryset=Capture.objects.filter(content__isnull=False)
                .select_related("content")
                .prefetch_related(
                    Prefetch(
                        "content__matches",
                        queryset=Match.objects.select_related("matched_content", "known_hash__hash_list").order_by(
                            "distance", "pk"
                        ),
                    )
                )
                .order_by("started_at", "pk"),
            ),
            Prefetch("url__cases", queryset=Case.objects.order_by("-created_at", "-pk")),
        )
        .order_by("position")
    )
    url_entries = []
    for sighting in sightings:
        url = sighting.url
        contents: dict[str, dict[str, Any]] = {}
        for capture in url.captures.all():
            if capture.content is not None and capture.content.sha256 not in contents:
                contents[capture.content.sha256] = _content_entry(capture.content)
        cases = list(url.cases.all())
        url_entries.append(
            {
                "url": sighting.submitted_url,
                "canonical_url": url.canonical_url,
                "known": sighting.was_known,
                "fetch_status": _fetch_status(url),
                "contents": list(contents.values()),
                "case_status": cases[0].status if cases else None,
            }
        )
    outcome = None
    if partner.kind in settings.HOTLINE_OUTCOME_VISIBLE_KINDS:
        outcome = report_referral_outcome(report)
    return {
        "id": report.pk,
        "external_id": report.external_id,
        "status": report.status,
        "category": report.category,
        "ai_suspected": {"yes": True, "no": False}.get(report.ai_suspected),
        "created_at": report.created_at,
        "urls": url_entries,
        "hashes": _hash_entries([report])[report.pk],
        "outcome": outcome,
    }


def partner_reports_page(
    *, partner: Partner, since: datetime | None, after_id: int | None, limit: int
) -> tuple[list[Report], int | None]:
    """One page of the partner's reports in id order; the second value is the next cursor id."""
    query = Report.objects.filter(partner=partner)
    if since is not None:
        query = query.filter(created_at__gte=since)
    if after_id is not None:
        query = query.filter(pk__gt=after_id)
    page = list(query.order_by("pk")[: limit + 1])
    if len(page) > limit:
        return page[:limit], page[limit - 1].pk
    return page, None
