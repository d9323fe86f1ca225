"""Hotline's data model, one module per sub-domain (see docs/architecture.md)."""

from __future__ import annotations

from .audit import AuditEvent
from .content import Capture, Content
from .intake import Report, ReportedUrl, SubmittedHash, Url
from .matching import HashList, KnownHash, Match
from .partners import ApiToken, Partner
from .referrals import AbuseContact, Referral, ReferralEvent, ReferralRule
from .stats import StatsAnalystDay, StatsDay, StatsMonth, StatsWatermark
from .triage import Assessment, Case, RevealGrant, StaffPreference

__all__ = [
    "AbuseContact",
    "ApiToken",
    "Assessment",
    "AuditEvent",
    "Capture",
    "Case",
    "Content",
    "HashList",
    "KnownHash",
    "Match",
    "Partner",
    "Referral",
    "ReferralEvent",
    "ReferralRule",
    "Report",
    "ReportedUrl",
    "RevealGrant",
    "StaffPreference",
    "StatsAnalystDay",
    "StatsDay",
    "StatsMonth",
    "StatsWatermark",
    "SubmittedHash",
    "Url",
]
