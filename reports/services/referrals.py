"""Referrals: from an illegal finding to removal. Proposal by rules, hand-made additions and
cancellations, notices grouped per abuse contact in working hours, the police package, re-checks
until removal, and escalation of overdue notices. Every status change is a ReferralEvent and an
audit row, written in the same transaction.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation

from reports.models import Assessment, Capture, Case, Content, Partner, Referral, ReferralEvent, ReferralRule, Url
from reports.models.choices import (
    ILLEGAL_VERDICTS,
    OPEN_REFERRAL_STATUSES,
    TAKEDOWN_KINDS,
    CaseStatus,
    Escalation,
    HostingSituation,
    PartnerKind,
    RecheckState,
    ReferralKind,
    ReferralStatus,
)
from reports.selectors.triage import latest_assessments_in_case
from reports.services.audit import audit_record
from reports.services.hosting import abuse_contact_for
from reports.services.staff import require_permission

DEFAULT_RULES: dict[str, tuple[str, ...]] = {
    HostingSituation.DOMESTIC: (ReferralKind.POLICE, ReferralKind.HOSTING_NTD),
    HostingSituation.FOREIGN_PARTNER: (ReferralKind.FOREIGN_HOTLINE,),
    HostingSituation.FOREIGN_NO_PARTNER: (ReferralKind.HOSTING_NTD,),
    HostingSituation.UNKNOWN: (),
}

# Where a referral may go from each status, by hand (re-checks and sending use their own paths).
TRANSITIONS: dict[str, frozenset[str]] = {
    ReferralStatus.DRAFT: frozenset({ReferralStatus.SENT, ReferralStatus.CANCELLED}),
    ReferralStatus.SENT: frozenset(
        {
            ReferralStatus.ACKNOWLEDGED,
            ReferralStatus.REMOVED,
            ReferralStatus.NOT_REMOVED,
            ReferralStatus.REFUSED,
            ReferralStatus.CANCELLED,
        }
    ),
    ReferralStatus.ACKNOWLEDGED: frozenset(
        {ReferralStatus.REMOVED, ReferralStatus.NOT_REMOVED, ReferralStatus.REFUSED, ReferralStatus.CANCELLED}
    ),
    ReferralStatus.NOT_REMOVED: frozenset({ReferralStatus.REMOVED}),
    ReferralStatus.REFUSED: frozenset({ReferralStatus.REMOVED}),
}
# Kinds sent by e-mail (grouped per address); the police referral is an exported package instead.
MAILED_KINDS = (ReferralKind.HOSTING_NTD, ReferralKind.FOREIGN_HOTLINE, ReferralKind.REGISTRAR)
ESCALATION_ORDER = [Escalation.NONE, Escalation.REMINDER, Escalation.SITE_OWNER, Escalation.REGISTRAR]


def _event(referral: Referral, *, status: str, actor: AbstractBaseUser | None, note: str, at: datetime) -> None:
    ReferralEvent.objects.create(
        referral=referral, status=status, actor=actor if actor is not None and actor.pk else None, note=note, at=at
    )


# --- Rules ----------------------------------------------------------------------------------------


def referral_rules_ensure_defaults(**_kwargs: Any) -> None:
    """Create the default rules when the table is empty (post_migrate; idempotent)."""
    if ReferralRule.objects.exists():
        return
    ReferralRule.objects.bulk_create(
        [ReferralRule(situation=situation, kind=kind) for situation, kinds in DEFAULT_RULES.items() for kind in kinds]
    )


def active_rules() -> dict[str, set[str]]:
    """The kinds of referral for each hosting situation. An empty table means the defaults."""
    rows = list(ReferralRule.objects.values_list("situation", "kind", "active"))
    if not rows:
        return {situation: set(kinds) for situation, kinds in DEFAULT_RULES.items()}
    rules: dict[str, set[str]] = {situation: set() for situation in HostingSituation.values}
    for situation, kind, active in rows:
        if active:
            rules[situation].add(kind)
    return rules


def partner_hotline_for(country: str) -> Partner | None:
    """The active partner hotline of `country` that can receive forwarded reports (by e-mail)."""
    if not country:
        return None
    return (
        Partner.objects.filter(kind=PartnerKind.HOTLINE, active=True, country=country.upper())
        .exclude(email="")
        .order_by("pk")
        .first()
    )


def hosting_situation(url: Url) -> tuple[str, Partner | None]:
    country = url.hosting_country.upper()
    if not country:
        return HostingSituation.UNKNOWN, None
    if country == settings.HOTLINE_COUNTRY:
        return HostingSituation.DOMESTIC, None
    partner = partner_hotline_for(country)
    return (HostingSituation.FOREIGN_PARTNER, partner) if partner else (HostingSituation.FOREIGN_NO_PARTNER, None)


def _illegal_in_case(case: Case) -> tuple[bool, list[Content]]:
    """Whether the case's latest assessments hold an illegal verdict, and the contents they cover."""
    illegal = [a for a in latest_assessments_in_case(case).values() if a.verdict in ILLEGAL_VERDICTS]
    return bool(illegal), [a.content for a in illegal if a.content is not None]


def _recipient(kind: str, url: Url, partner: Partner | None) -> dict[str, Any]:
    """Recipient fields of a new referral: whatever is known; a draft without an address waits for one."""
    if kind == ReferralKind.POLICE:
        return {"recipient": settings.HOTLINE_POLICE_RECIPIENT}
    if kind == ReferralKind.FOREIGN_HOTLINE and partner is not None:
        return {"recipient": partner.name, "partner": partner, "email": partner.email, "language": "en"}
    if kind == ReferralKind.HOSTING_NTD:
        contact = abuse_contact_for(url)
        if contact is not None:
            return {
                "recipient": contact.provider,
                "abuse_contact": contact,
                "email": contact.email,
                "language": contact.language or "en",
            }
        return {"recipient": url.hosting_provider or url.host}
    return {"recipient": f"Registrar of {url.host}"}


@transaction.atomic
def referrals_propose_for_case(*, case_id: int) -> list[Referral]:
    """Draft the referrals the rules ask for, once a case is closed with an illegal verdict.
    Idempotent: a case the rules have proposed for before gets nothing new."""
    case = Case.objects.select_for_update(of=("self",)).select_related("url").filter(pk=case_id).first()
    if case is None or case.status != CaseStatus.CLOSED or case.url is None:
        return []
    if case.referrals.filter(automatic=True).exists():
        return []
    illegal, contents = _illegal_in_case(case)
    if not illegal:
        return []
    url = case.url
    situation, partner = hosting_situation(url)
    # A URL already referred (a later case of the same URL) is not referred twice to the same kind
    # of recipient while that referral is open: its re-checks cover the new case too.
    open_kinds = set(
        Referral.objects.filter(urls=url, status__in=[ReferralStatus.DRAFT, *OPEN_REFERRAL_STATUSES]).values_list(
            "kind", flat=True
        )
    )
    kinds = sorted(active_rules().get(situation, set()) - open_kinds)
    now = timezone.now()
    created = []
    for kind in kinds:
        referral = Referral.objects.create(kind=kind, case=case, automatic=True, **_recipient(kind, url, partner))
        referral.urls.add(url)
        if contents:
            referral.contents.add(*contents)
        note = f"Proposed by the rule for {HostingSituation(situation).label} ({url.hosting_country or '??'})."
        _event(referral, status=ReferralStatus.DRAFT, actor=None, note=note, at=now)
        audit_record(
            action="referral.proposed",
            actor_label="system",
            obj=referral,
            details={"case": case.pk, "kind": kind, "situation": situation, "recipient": referral.recipient},
        )
        created.append(referral)
    return created


# --- By hand ----------------------------------------------------------------------------------------


@transaction.atomic
def referral_create(
    *,
    user: AbstractBaseUser,
    case: Case,
    kind: str,
    recipient: str,
    email: str,
    reason: str,
    language: str = "en",
) -> Referral:
    """An analyst adds a referral the rules did not propose (e.g. a registrar, a second host)."""
    require_permission(user, "manage_referrals")
    if kind not in ReferralKind.values:
        raise ValidationError("Unknown kind of referral.")
    if not reason.strip():
        raise ValidationError("Say why this referral is added.")
    if case.url_id is None:
        raise ValidationError("Only a case with a URL can be referred.")
    _illegal, contents = _illegal_in_case(case)
    partner = partner_hotline_for(case.url.hosting_country) if kind == ReferralKind.FOREIGN_HOTLINE else None
    referral = Referral.objects.create(
        kind=kind,
        case=case,
        recipient=recipient.strip()[:300] or _recipient(kind, case.url, partner)["recipient"],
        email=email.strip(),
        partner=partner,
        language=language if language in ("en", "nl") else "en",
        created_by=user,
    )
    referral.urls.add(case.url)
    if contents:
        referral.contents.add(*contents)
    now = timezone.now()
    _event(referral, status=ReferralStatus.DRAFT, actor=user, note=f"Added by hand: {reason.strip()}", at=now)
    audit_record(
        action="referral.created",
        actor=user,
        obj=referral,
        details={"case": case.pk, "kind": kind, "recipient": referral.recipient, "reason": reason.strip()},
    )
    return referral


@transaction.atomic
def referral_set_recipient(
    *, user: AbstractBaseUser, referral: Referral, recipient: str, email: str, language: str
) -> Referral:
    """Complete or correct where a draft goes (e.g. no abuse contact was known)."""
    require_permission(user, "manage_referrals")
    referral = Referral.objects.select_for_update().get(pk=referral.pk)
    if referral.status != ReferralStatus.DRAFT:
        raise ValidationError("Only a draft's recipient can be changed.")
    before = {"recipient": referral.recipient, "email": referral.email}
    referral.recipient = recipient.strip()[:300] or referral.recipient
    referral.email = email.strip()
    referral.language = language if language in ("en", "nl") else referral.language
    referral.save(update_fields=["recipient", "email", "language"])
    audit_record(
        action="referral.recipient_set",
        actor=user,
        obj=referral,
        details={"before": before, "after": {"recipient": referral.recipient, "email": referral.email}},
    )
    return referral


@transaction.atomic
def referral_cancel(*, user: AbstractBaseUser, referral: Referral, reason: str) -> Referral:
    return referral_record_status(user=user, referral=referral, status=ReferralStatus.CANCELLED, note=reason)


@transaction.atomic
def referral_record_status(
    *, user: AbstractBaseUser, referral: Referral, status: str, note: str = "", reference: str = ""
) -> Referral:
    """Record what the recipient answered (acknowledged, removed, refused …) or a cancellation.
    A reference number can be recorded with any of them, or alone (status unchanged)."""
    require_permission(user, "manage_referrals")
    referral = Referral.objects.select_for_update().get(pk=referral.pk)
    now = timezone.now()
    fields = []
    if reference.strip() and reference.strip() != referral.reference:
        referral.reference = reference.strip()[:200]
        fields.append("reference")
    if status and status != referral.status:
        if status not in TRANSITIONS.get(referral.status, frozenset()):
            raise ValidationError(
                f"A referral that is {referral.get_status_display().lower()} cannot become "
                f"{ReferralStatus(status).label.lower()}."
            )
        if status == ReferralStatus.CANCELLED and not note.strip():
            raise ValidationError("Say why this referral is cancelled.")
        previous = referral.status
        referral.status = status
        fields.append("status")
        if status == ReferralStatus.SENT and referral.sent_at is None:
            referral.sent_at = now
            fields.append("sent_at")
            if referral.kind in TAKEDOWN_KINDS:
                referral.next_check_at = now + recheck_interval(sent_at=now, now=now)
                fields.append("next_check_at")
        if status == ReferralStatus.REMOVED and referral.removed_at is None:
            referral.removed_at = now
            fields.append("removed_at")
        if status not in OPEN_REFERRAL_STATUSES:
            referral.next_check_at = None
            fields.append("next_check_at")
        _event(referral, status=status, actor=user, note=note.strip(), at=now)
        audit_record(
            action="referral.status_changed",
            actor=user,
            obj=referral,
            details={"from": previous, "to": status, "note": note.strip(), "reference": referral.reference},
        )
    elif "reference" in fields:
        audit_record(
            action="referral.reference_set", actor=user, obj=referral, details={"reference": referral.reference}
        )
    if not fields:
        raise ValidationError("Nothing to record.")
    referral.save(update_fields=sorted(set(fields)))
    return referral


# --- Sending notices ------------------------------------------------------------------------------


def in_notice_window(now: datetime) -> bool:
    """Whether `now` is inside the working hours notices are sent in (local time, TIME_ZONE)."""
    local = timezone.localtime(now)
    start, end = settings.HOTLINE_NOTICE_HOURS
    return local.weekday() in settings.HOTLINE_NOTICE_WEEKDAYS and start <= local.hour < end


def recheck_interval(*, sent_at: datetime, now: datetime) -> timedelta:
    """Hourly (by default) during the first day after sending, daily after that."""
    if now - sent_at < timedelta(hours=settings.HOTLINE_RECHECK_FIRST_PERIOD_HOURS):
        return timedelta(minutes=settings.HOTLINE_RECHECK_FIRST_MINUTES)
    return timedelta(hours=settings.HOTLINE_RECHECK_LATER_HOURS)


@dataclass(frozen=True)
class NoticeItem:
    url: str
    ip: str
    first_seen: datetime
    captured_at: datetime | None
    sha256: list[str]


def _notice_items(referrals: list[Referral]) -> list[NoticeItem]:
    items: dict[int, NoticeItem] = {}
    for referral in referrals:
        for url in referral.urls.all():
            if url.pk in items:
                continue
            capture = Capture.objects.filter(url=url, is_recheck=False, parent=None).order_by("started_at").first()
            items[url.pk] = NoticeItem(
                url=url.canonical_url,
                ip=url.hosting_ip or "",
                first_seen=url.first_seen_at,
                captured_at=capture.started_at if capture else None,
                sha256=sorted({content.sha256 for content in referral.contents.all()}),
            )
    return list(items.values())


def _mail(*, template: str, referrals: list[Referral], language: str, to: str, context: dict[str, Any]) -> str:
    """Render and send one notice; returns its Message-ID (recorded on each referral's timeline)."""
    items = _notice_items(referrals)
    reference = "HL-" + "-".join(str(referral.pk) for referral in referrals)
    with translation.override(language):
        body = render_to_string(
            f"emails/{template}.txt",
            {
                "items": items,
                "reference": reference,
                "hotline": settings.HOTLINE_NAME,
                "country": settings.HOTLINE_COUNTRY,
                "recipient": referrals[0].recipient,
                **context,
            },
        )
        subject_line = render_to_string(
            f"emails/{template}_subject.txt",
            {"reference": reference, "hotline": settings.HOTLINE_NAME, "count": len(items)},
        )
    subject = " ".join(subject_line.split())
    message_id = f"<{reference}.{int(timezone.now().timestamp())}@{settings.HOTLINE_NAME.lower().replace(' ', '-')}>"
    message = EmailMessage(
        subject=subject,
        body=body,
        to=[to],
        reply_to=[settings.HOTLINE_NOTICE_REPLY_TO] if settings.HOTLINE_NOTICE_REPLY_TO else None,
        headers={"Message-ID": message_id, "X-Hotline-Reference": reference},
    )
    message.send(fail_silently=False)
    return message_id


def _grouped(referrals: Iterable[Referral]) -> dict[tuple[str, str, str], list[Referral]]:
    groups: dict[tuple[str, str, str], list[Referral]] = defaultdict(list)
    for referral in referrals:
        groups[(referral.email.lower(), referral.kind, referral.language)].append(referral)
    return groups


def notices_send_due(*, now: datetime | None = None) -> int:
    """Send every draft notice that has an address: one e-mail per address (and kind and language)
    covering all its URLs. Only inside the working-hours window; returns the number of e-mails."""
    now = now or timezone.now()
    if not in_notice_window(now):
        return 0
    sent = 0
    keys = (
        Referral.objects.filter(status=ReferralStatus.DRAFT, kind__in=MAILED_KINDS)
        .exclude(email="")
        .values_list("email", "kind", "language")
        .distinct()
    )
    for email, kind, language in list(keys):
        sent += _send_group(email=email, kind=kind, language=language, now=now)
    return sent


@transaction.atomic
def _send_group(*, email: str, kind: str, language: str, now: datetime) -> int:
    # Locked and skipped if locked: two workers never send the same notice. The mail goes out before
    # the commit, so a failed send leaves the drafts as they were (to be tried again next run).
    referrals = list(
        Referral.objects.select_for_update(skip_locked=True)
        .filter(status=ReferralStatus.DRAFT, kind=kind, email=email, language=language)
        .order_by("pk")
    )
    if not referrals:
        return 0
    template = "forward" if kind == ReferralKind.FOREIGN_HOTLINE else "notice"
    message_id = _mail(template=template, referrals=referrals, language=language, to=email, context={})
    url_count = Url.objects.filter(referrals__in=referrals).distinct().count()
    for referral in referrals:
        referral.status = ReferralStatus.SENT
        referral.sent_at = now
        referral.next_check_at = now + recheck_interval(sent_at=now, now=now)
        referral.save(update_fields=["status", "sent_at", "next_check_at"])
        note = f"Sent to {email} as {message_id}, one notice for {url_count} URL(s)."
        _event(referral, status=ReferralStatus.SENT, actor=None, note=note, at=now)
        audit_record(
            action="referral.sent",
            actor_label="system",
            obj=referral,
            details={"to": email, "message_id": message_id, "grouped": [r.pk for r in referrals], "urls": url_count},
        )
    return 1


# --- Police package ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicePackage:
    data: bytes  # a ZIP holding package.json and package.csv
    digest: str  # SHA-256 of `data`, as recorded in the audit trail
    filename: str
    referral_ids: list[int]


CSV_COLUMNS = [
    "referral",
    "case",
    "url",
    "requested_url",
    "final_url",
    "capture_started_at",
    "capture_finished_at",
    "ip",
    "http_status",
    "sha256",
    "md5",
    "sha1",
    "pdq",
    "verdict",
    "hosting_country",
    "hosting_asn",
    "hosting_provider",
]


def _assessment_entry(assessment: Assessment | None) -> dict[str, Any] | None:
    if assessment is None:
        return None
    return {
        "verdict": assessment.verdict,
        "age_group": assessment.age_group,
        "gender": assessment.gender,
        "virtual": assessment.virtual,
        "site_type": assessment.site_type,
        "commercial": assessment.commercial,
        "assessed_at": assessment.created_at,
        "second_opinion_at": assessment.second_opinion_at,
        "inherited": assessment.inherited_from_id is not None,
    }


def _package_entry(referral: Referral, rows: list[dict[str, Any]]) -> dict[str, Any]:
    case = referral.case
    latest = latest_assessments_in_case(case) if case is not None else {}
    urls = []
    for url in referral.urls.all():
        captures = []
        for capture in Capture.objects.filter(url=url).select_related("content").order_by("started_at", "pk"):
            content = capture.content
            assessment = latest.get(content.pk) if content is not None else latest.get(None)
            captures.append(
                {
                    "requested_url": capture.requested_url,
                    "final_url": capture.final_url,
                    "started_at": capture.started_at,
                    "finished_at": capture.finished_at,
                    "ip": capture.ip,
                    "http_status": capture.http_status,
                    "error": capture.error,
                    "recheck": capture.is_recheck,
                    "sha256": content.sha256 if content else None,
                }
            )
            rows.append(
                {
                    "referral": referral.pk,
                    "case": referral.case_id or "",
                    "url": url.canonical_url,
                    "requested_url": capture.requested_url,
                    "final_url": capture.final_url,
                    "capture_started_at": capture.started_at.isoformat(),
                    "capture_finished_at": capture.finished_at.isoformat() if capture.finished_at else "",
                    "ip": capture.ip or "",
                    "http_status": capture.http_status or "",
                    "sha256": content.sha256 if content else "",
                    "md5": content.md5 if content else "",
                    "sha1": content.sha1 if content else "",
                    "pdq": content.pdq if content else "",
                    "verdict": assessment.verdict if assessment is not None and content is not None else "",
                    "hosting_country": url.hosting_country,
                    "hosting_asn": url.hosting_asn or "",
                    "hosting_provider": url.hosting_provider,
                }
            )
        urls.append(
            {
                "url": url.canonical_url,
                "first_seen_at": url.first_seen_at,
                "hosting": {
                    "ip": url.hosting_ip,
                    "country": url.hosting_country,
                    "asn": url.hosting_asn,
                    "provider": url.hosting_provider,
                    "set_by_analyst": url.hosting_overridden,
                },
                "reported": [
                    {"received_at": sighting.created_at, "as_submitted": sighting.submitted_url}
                    for sighting in url.sightings_set.order_by("created_at")
                ],
                "captures": captures,
            }
        )
    contents = [
        {
            "sha256": content.sha256,
            "md5": content.md5,
            "sha1": content.sha1,
            "pdq": content.pdq,
            "phash": content.phash,
            "media_type": content.media_type,
            "width": content.width,
            "height": content.height,
            "byte_count": content.byte_count,
            "first_seen_at": content.first_seen_at,
            "provenance": content.provenance,
            "assessment": _assessment_entry(latest.get(content.pk)),
        }
        for content in referral.contents.defer("preview").order_by("pk")
    ]
    return {
        "referral": referral.pk,
        "case": referral.case_id,
        "created_at": referral.created_at,
        "reference": referral.reference,
        "urls": urls,
        "contents": contents,
        "url_assessment": _assessment_entry(latest.get(None)),
    }


def _zip(files: dict[str, bytes], when: datetime) -> bytes:
    buffer = io.BytesIO()
    stamp = when.astimezone(UTC).timetuple()[:6]
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


@transaction.atomic
def police_package_export(*, user: AbstractBaseUser, referral_ids: Iterable[int]) -> PolicePackage:
    """The police package for the given police referrals (one case or a batch): URLs, captures with
    timestamps and IPs, hashes, assessments and provenance, as JSON and CSV in one ZIP. Its SHA-256
    goes into the audit trail, so the copy handed over can be verified later. Drafts become sent."""
    require_permission(user, "manage_referrals")
    referrals = list(
        Referral.objects.select_for_update()
        .filter(pk__in=list(referral_ids), kind=ReferralKind.POLICE)
        .exclude(status=ReferralStatus.CANCELLED)
        .order_by("pk")
    )
    if not referrals:
        raise ValidationError("No police referral to export.")
    now = timezone.now()
    rows: list[dict[str, Any]] = []
    package = {
        "format": "hotline-police-package/1",
        "hotline": settings.HOTLINE_NAME,
        "country": settings.HOTLINE_COUNTRY,
        "recipient": settings.HOTLINE_POLICE_RECIPIENT,
        "generated_at": now,
        "generated_by": user.get_username(),
        "referrals": [_package_entry(referral, rows) for referral in referrals],
    }
    package_json = json.dumps(package, cls=DjangoJSONEncoder, indent=2, sort_keys=True).encode("utf-8")
    csv_buffer = io.StringIO()
    writer = csv.DictWriter(csv_buffer, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    files = {"package.json": package_json, "package.csv": csv_buffer.getvalue().encode("utf-8")}
    data = _zip(files, now)
    digest = hashlib.sha256(data).hexdigest()
    ids = [referral.pk for referral in referrals]
    for referral in referrals:
        if referral.status == ReferralStatus.DRAFT:
            referral.status = ReferralStatus.SENT
            referral.sent_at = now
            referral.save(update_fields=["status", "sent_at"])
            _event(
                referral,
                status=ReferralStatus.SENT,
                actor=user,
                note=f"Police package exported, SHA-256 {digest}.",
                at=now,
            )
    audit_record(
        action="referral.police_package_exported",
        actor=user,
        obj=referrals[0],
        details={
            "digest": digest,
            "referrals": ids,
            "files": {name: hashlib.sha256(content).hexdigest() for name, content in files.items()},
        },
    )
    filename = f"police-package-{now:%Y%m%dT%H%M%SZ}-{digest[:12]}.zip"
    return PolicePackage(data=data, digest=digest, filename=filename, referral_ids=ids)


# --- Re-checks --------------------------------------------------------------------------------------

RECHECK_STATES = {
    "online_same": RecheckState.ONLINE,
    "online_changed": RecheckState.CHANGED,
    "gone": RecheckState.GONE,
    "unknown": RecheckState.UNKNOWN,
}


def referral_recheck(*, referral_id: int, now: datetime | None = None) -> str:
    """Fetch the referral's URLs again (those not yet seen removed) and record what was found: all gone
    means removed (with the time to removal); different content is flagged for review."""
    from reports.services.fetching import url_recheck  # fetching imports this package's neighbours

    referral = Referral.objects.filter(pk=referral_id).first()
    if referral is None or referral.status not in OPEN_REFERRAL_STATUSES or referral.kind not in TAKEDOWN_KINDS:
        return "skipped"
    url_ids = list(referral.urls.filter(removed_at__isnull=True).values_list("pk", flat=True))
    # The network first, outside any transaction (url_recheck records its own captures).
    states = {url_id: RECHECK_STATES[url_recheck(url_id=url_id).state] for url_id in url_ids}
    return _recheck_record(referral_id, states, now or timezone.now())


@transaction.atomic
def _recheck_record(referral_id: int, states: dict[int, str], now: datetime) -> str:
    referral = Referral.objects.select_for_update().get(pk=referral_id)
    if referral.status not in OPEN_REFERRAL_STATUSES:
        return "skipped"  # closed by hand meanwhile
    for url in Url.objects.select_for_update().filter(pk__in=list(states)).order_by("pk"):
        url.recheck_state = states[url.pk]
        url.rechecked_at = now
        fields = ["recheck_state", "rechecked_at"]
        if states[url.pk] == RecheckState.GONE and url.removed_at is None:
            url.removed_at = now
            fields.append("removed_at")
        url.save(update_fields=fields)
    changed = [url_id for url_id, state in states.items() if state == RecheckState.CHANGED]
    if changed and referral.changed_at is None:
        referral.changed_at = now
        referral.save(update_fields=["changed_at"])
        _event(
            referral,
            status=referral.status,
            actor=None,
            note="Different content found at a referred URL: review.",
            at=now,
        )
        audit_record(action="referral.content_changed", actor_label="system", obj=referral, details={"urls": changed})
    removed = list(referral.urls.values_list("removed_at", flat=True))
    if removed and all(removed):
        referral.status = ReferralStatus.REMOVED
        referral.removed_at = max(at for at in removed if at is not None)
        referral.next_check_at = None
        referral.save(update_fields=["status", "removed_at", "next_check_at"])
        took = referral.time_to_removal
        note = f"Removal detected by re-check; time to removal {took}." if took is not None else "Removal detected."
        _event(referral, status=ReferralStatus.REMOVED, actor=None, note=note, at=now)
        audit_record(
            action="referral.removed",
            actor_label="system",
            obj=referral,
            details={"time_to_removal_seconds": took.total_seconds() if took is not None else None},
        )
        return "removed"
    referral.next_check_at = now + recheck_interval(sent_at=referral.sent_at or now, now=now)
    referral.save(update_fields=["next_check_at"])
    return "changed" if changed else "online"


# --- Escalation -------------------------------------------------------------------------------------


def escalation_due(referral: Referral, now: datetime) -> str:
    """The next escalation step `referral` has reached (or NONE): one step at a time, in order."""
    if referral.sent_at is None:
        return Escalation.NONE
    interval = timedelta(hours=settings.HOTLINE_ESCALATION_INTERVAL_HOURS)
    thresholds = {
        Escalation.REMINDER: settings.HOTLINE_ESCALATION_REMINDER_AFTER,
        Escalation.SITE_OWNER: settings.HOTLINE_ESCALATION_SITE_OWNER_AFTER,
        Escalation.REGISTRAR: settings.HOTLINE_ESCALATION_REGISTRAR_AFTER,
    }
    position = ESCALATION_ORDER.index(referral.escalation)
    if position + 1 >= len(ESCALATION_ORDER):
        return Escalation.NONE
    step = ESCALATION_ORDER[position + 1]
    return step if now - referral.sent_at >= thresholds[step] * interval else Escalation.NONE


def referrals_escalate_due(*, now: datetime | None = None) -> dict[str, int]:
    """Escalate open notices still not removed: a reminder e-mail (in working hours, grouped per
    address), then the site owner (flagged for an analyst), then a registrar referral (drafted)."""
    now = now or timezone.now()
    counts = {Escalation.REMINDER: 0, Escalation.SITE_OWNER: 0, Escalation.REGISTRAR: 0}
    first_step = settings.HOTLINE_ESCALATION_REMINDER_AFTER * timedelta(
        hours=settings.HOTLINE_ESCALATION_INTERVAL_HOURS
    )
    candidates = Referral.objects.filter(
        status__in=OPEN_REFERRAL_STATUSES,
        kind__in=TAKEDOWN_KINDS,
        removed_at__isnull=True,
        sent_at__lte=now - first_step,  # nothing younger can be due for any step
    ).exclude(escalation=Escalation.REGISTRAR)
    reminders: list[Referral] = []
    for referral in candidates:
        step = escalation_due(referral, now)
        if step == Escalation.REMINDER:
            reminders.append(referral)
        elif step:
            _escalate(referral_id=referral.pk, step=step, now=now)
            counts[step] += 1
    if reminders and in_notice_window(now):
        for (email, _kind, language), group in _grouped(r for r in reminders if r.email).items():
            counts[Escalation.REMINDER] += _remind(ids=[r.pk for r in group], email=email, language=language, now=now)
    return {str(step): count for step, count in counts.items()}


@transaction.atomic
def _remind(*, ids: list[int], email: str, language: str, now: datetime) -> int:
    referrals = list(
        Referral.objects.select_for_update(skip_locked=True)
        .filter(pk__in=ids, escalation=Escalation.NONE, status__in=OPEN_REFERRAL_STATUSES)
        .order_by("pk")
    )
    if not referrals:
        return 0
    message_id = _mail(
        template="reminder",
        referrals=referrals,
        language=language,
        to=email,
        context={"sent_at": min(r.sent_at for r in referrals if r.sent_at)},
    )
    for referral in referrals:
        referral.escalation = Escalation.REMINDER
        referral.escalated_at = referral.reminded_at = now
        referral.save(update_fields=["escalation", "escalated_at", "reminded_at"])
        _event(referral, status=referral.status, actor=None, note=f"Reminder sent to {email} as {message_id}.", at=now)
        audit_record(
            action="referral.escalated",
            actor_label="system",
            obj=referral,
            details={"step": Escalation.REMINDER, "to": email, "message_id": message_id},
        )
    return 1


@transaction.atomic
def _escalate(*, referral_id: int, step: str, now: datetime) -> None:
    referral = Referral.objects.select_for_update(of=("self",)).select_related("case").get(pk=referral_id)
    referral.escalation = step
    referral.escalated_at = now
    referral.save(update_fields=["escalation", "escalated_at"])
    if step == Escalation.SITE_OWNER:
        note = "Still online: contact the site owner (address to be found by an analyst)."
    else:
        note = "Still online: a registrar referral has been drafted; add the registrar's abuse address."
        registrar = Referral.objects.create(
            kind=ReferralKind.REGISTRAR,
            case=referral.case,
            automatic=True,
            recipient=f"Registrar of {referral.urls.values_list('host', flat=True).first() or '?'}",
            language=referral.language,
        )
        registrar.urls.add(*referral.urls.all())
        registrar.contents.add(*referral.contents.all())
        _event(
            registrar, status=ReferralStatus.DRAFT, actor=None, note=f"Escalation of referral #{referral.pk}.", at=now
        )
    _event(referral, status=referral.status, actor=None, note=note, at=now)
    audit_record(action="referral.escalated", actor_label="system", obj=referral, details={"step": step})
