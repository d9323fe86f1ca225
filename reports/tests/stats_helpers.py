"""A small, hand-countable history for the statistics tests (synthetic: reserved example domains)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import count
from typing import Any

from django.utils import timezone

from reports.models import (
    Assessment,
    AuditEvent,
    Capture,
    Case,
    Content,
    HashList,
    KnownHash,
    Match,
    Partner,
    Referral,
    Report,
    ReportedUrl,
    Url,
)
from reports.models.choices import CaseStatus, ReferralKind, ReferralStatus

_numbers = count(1)


def at(day: date, hour: float) -> datetime:
    """`hour` hours after local midnight of `day` (may run into later days)."""
    zone = timezone.get_current_timezone()
    return timezone.make_aware(datetime.combine(day, time.min), zone) + timedelta(hours=hour)


def make_url(*, country: str, provider: str = "") -> Url:
    n = next(_numbers)
    canonical = f"https://site{n}.example/img/{n}.jpg"
    return Url.objects.create(
        canonical_url=canonical,
        url_hash=hashlib.sha256(canonical.encode()).hexdigest(),
        scheme="https",
        host=f"site{n}.example",
        hosting_country=country,
        hosting_provider=provider,
    )


def make_report(
    *, when: datetime, urls: list[Url] = (), source: str = "public", partner: Partner | None = None, **fields: Any
) -> Report:
    report = Report.objects.create(
        source=source, partner=partner, category=fields.pop("category", "csam"), created_at=when, **fields
    )
    for position, url in enumerate(urls):
        known = ReportedUrl.objects.filter(url=url).exists()
        ReportedUrl.objects.create(
            report=report, url=url, submitted_url=url.canonical_url, position=position, was_known=known, created_at=when
        )
    return report


def make_content(*, url: Url, when: datetime, ai: bool = False) -> Content:
    n = next(_numbers)
    content = Content.objects.create(
        sha256=hashlib.sha256(f"c{n}".encode()).hexdigest(),
        md5=hashlib.md5(f"c{n}".encode()).hexdigest(),  # noqa: S324 - a test value, not security
        sha1=hashlib.sha1(f"c{n}".encode()).hexdigest(),  # noqa: S324
        ai_indicated=ai,
        first_seen_at=when,
    )
    Capture.objects.create(url=url, requested_url=url.canonical_url, content=content, started_at=when)
    return content


@dataclass
class History:
    day: date  # D1: three days ago
    partner: Partner
    analyst_x: Any
    analyst_y: Any
    hash_list: HashList
    urls: dict[str, Url]


def make_history(*, analyst_x: Any, analyst_y: Any, today: date | None = None) -> History:
    """The data set of docs/statistics.md's worked example (and test_stats.py's expectations)."""
    today = today or timezone.localdate()
    d1 = today - timedelta(days=3)
    partner = Partner.objects.create(name="Example Partner Hotline", kind="hotline", country="NL")
    u1 = make_url(country="NL", provider="ExampleHost NL")
    u2 = make_url(country="DE", provider="Beispiel DE")
    u3 = make_url(country="NL", provider="ExampleHost NL")
    r1 = make_report(when=at(d1, 12), urls=[u1, u2], ai_suspected="yes")
    make_report(when=at(d1, 13), urls=[u1], category="ai_csam")
    make_report(when=at(d1, 14), urls=[u3], source="partner", partner=partner)
    r4 = make_report(when=at(d1, 15), source="partner", partner=partner)

    hash_list = HashList.objects.create(name="Example list")
    known = KnownHash.objects.create(hash_list=hash_list, algorithm="md5", value="0" * 32)
    c1 = make_content(url=u1, when=at(d1, 12.1))
    make_content(url=u2, when=at(d1, 12.1), ai=True)
    c3 = make_content(url=u3, when=at(d1, 14.1))
    c4 = make_content(url=u3, when=at(d1, 14.1), ai=True)
    Match.objects.create(content=c1, kind="md5", known_hash=known, created_at=at(d1, 12.1))
    Match.objects.create(content=c3, kind="pdq", matched_content=c1, distance=4, created_at=at(d1, 14.1))

    case_a = Case.objects.create(url=u1, status=CaseStatus.AWAITING_SECOND_OPINION, assessed_at=at(d1, 17))
    case_b = Case.objects.create(url=u3, status=CaseStatus.CLOSED, assessed_at=at(d1, 44))
    case_c = Case.objects.create(report=r4, status=CaseStatus.CLOSED, auto_closed=True, assessed_at=at(d1, 16))
    Assessment.objects.create(
        case=case_a, content=c1, analyst=analyst_x, verdict="baseline", virtual="real", created_at=at(d1, 17)
    )
    Assessment.objects.create(
        case=case_b, content=c3, analyst=analyst_x, verdict="not_illegal", virtual="ai", created_at=at(d1, 44)
    )
    Assessment.objects.create(
        case=case_b, content=c4, analyst=analyst_y, verdict="adult", virtual="unknown", created_at=at(d1, 44)
    )
    Assessment.objects.create(case=case_c, verdict="baseline", virtual="real", created_at=at(d1, 16))

    def ntd(url: Url, case: Case, removed_after: float | None) -> Referral:
        referral = Referral.objects.create(
            kind=ReferralKind.HOSTING_NTD,
            case=case,
            recipient=url.hosting_provider,
            status=ReferralStatus.REMOVED if removed_after is not None else ReferralStatus.SENT,
            created_at=at(d1, 18),
            sent_at=at(d1, 18),
            removed_at=at(d1, 18 + removed_after) if removed_after is not None else None,
        )
        referral.urls.set([url])
        return referral

    ntd(u1, case_a, 20)
    ntd(u2, case_a, 100)
    ntd(u3, case_b, None)
    police = Referral.objects.create(
        kind=ReferralKind.POLICE,
        case=case_a,
        recipient="Example police",
        status=ReferralStatus.SENT,
        created_at=at(d1, 18),
        sent_at=at(d1, 18),
    )
    police.urls.set([u1])

    for hour in (13, 14, 15):
        AuditEvent.objects.create(at=at(d1, hour), actor=analyst_x, action="content.revealed")
    AuditEvent.objects.create(at=at(d1, 40), actor=analyst_y, action="content.revealed")
    assert r1.pk
    return History(
        day=d1,
        partner=partner,
        analyst_x=analyst_x,
        analyst_y=analyst_y,
        hash_list=hash_list,
        urls={"u1": u1, "u2": u2, "u3": u3},
    )
