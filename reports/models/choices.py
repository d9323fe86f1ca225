"""The taxonomy, defined once: every category, status and verdict Hotline knows."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Category(models.TextChoices):
    CSAM = "csam", _("Sexual abuse imagery of a child")
    AI_CSAM = "ai_csam", _("AI-generated, drawn or edited imagery of this kind")
    SEXTORTION = "sextortion", _("A child being coerced or extorted with images")
    OTHER = "other", _("Something else")


class AiSuspected(models.TextChoices):
    YES = "yes", _("Yes")
    NO = "no", _("No")
    UNKNOWN = "unknown", _("I don't know")


class WhereFound(models.TextChoices):
    WEBSITE = "website", _("A website")
    FORUM = "forum", _("A forum")
    SOCIAL = "social", _("Social media")
    CHAT = "chat", _("A chat or messaging app")
    OTHER = "other", _("Somewhere else")


class ReportSource(models.TextChoices):
    PUBLIC = "public", _("Public form")
    PARTNER = "partner", _("Partner API")


class ReportStatus(models.TextChoices):
    """What a reporter may see of their report (the status page and the partner API)."""

    RECEIVED = "received", _("Received")
    IN_ASSESSMENT = "in_assessment", _("Being assessed")
    ASSESSED_ACTION = "assessed_action", _("Assessed — action taken")
    ASSESSED_NO_ACTION = "assessed_no_action", _("Assessed — no action")


class HashAlgorithm(models.TextChoices):
    MD5 = "md5", "MD5"
    SHA1 = "sha1", "SHA-1"
    SHA256 = "sha256", "SHA-256"
    PDQ = "pdq", "PDQ"
    PHASH = "phash", "pHash"


# Length in hex digits of each algorithm's value.
HASH_HEX_LENGTH = {"md5": 32, "sha1": 40, "sha256": 64, "pdq": 64, "phash": 16}


class FetchStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    FETCHED = "fetched", _("Fetched")
    ERROR = "error", _("Failed")


class CaptureError(models.TextChoices):
    """Why a fetch attempt did not yield content. Permanent kinds are never retried."""

    NONE = "", _("No error")
    BLOCKED_ADDRESS = "blocked_address", _("Address not allowed")
    DNS = "dns", _("Name did not resolve")
    CONNECT = "connect", _("Connection failed")
    TIMEOUT = "timeout", _("Timed out")
    TLS = "tls", _("TLS error")
    HTTP_4XX = "http_4xx", _("Client error status")
    HTTP_5XX = "http_5xx", _("Server error status")
    TOO_MANY_REDIRECTS = "too_many_redirects", _("Too many redirects")
    TOO_BIG = "too_big", _("Too big")
    NOT_AN_IMAGE = "not_an_image", _("Not an image")
    DECODE = "decode", _("Could not be decoded")
    BOMB = "bomb", _("Decompression bomb")
    OTHER = "other", _("Other error")


class CaseStatus(models.TextChoices):
    OPEN = "open", _("Open")
    IN_PROGRESS = "in_progress", _("In progress")
    AWAITING_SECOND_OPINION = "awaiting_second_opinion", _("Awaiting second opinion")
    ASSESSED = "assessed", _("Assessed")
    CLOSED = "closed", _("Closed")


# Work nobody has finished: claimable when nobody holds it or the claim ran out (selectors.triage.claimable_q).
# The partial index case_claim_order covers exactly these statuses; change both together.
CLAIMABLE_CASE_STATUSES = (CaseStatus.OPEN, CaseStatus.IN_PROGRESS)


class CaseQueue(models.TextChoices):
    """Queues in priority order (lower value of `Case.priority` first)."""

    NEW_UNKNOWN = "new_unknown", _("New unknown content")
    AI_INDICATED = "ai_indicated", _("AI-indicated")
    HASH_ONLY = "hash_only", _("Partner hash-only reports")
    KNOWN_NEW_LOCATION = "known_new_location", _("Known content at a new location")


class Verdict(models.TextChoices):
    BASELINE = "baseline", _("Baseline")
    NATIONAL = "national", _("National")
    NOT_ILLEGAL = "not_illegal", _("Not illegal")
    ADULT = "adult", _("Adult")
    UNREACHABLE = "unreachable", _("Unreachable")


# The verdicts that make content illegal: referrals follow them, reporters see "action taken".
ILLEGAL_VERDICTS = frozenset({Verdict.BASELINE, Verdict.NATIONAL})


class AgeGroup(models.TextChoices):
    UNKNOWN = "", _("Not recorded")
    INFANT = "infant", _("Infant/toddler")
    PRE_PUBESCENT = "pre_pubescent", _("Pre-pubescent")
    PUBESCENT = "pubescent", _("Pubescent")


class Gender(models.TextChoices):
    UNKNOWN = "", _("Not recorded")
    FEMALE = "female", _("Female")
    MALE = "male", _("Male")
    BOTH = "both", _("Both")


class Virtual(models.TextChoices):
    UNKNOWN = "unknown", _("Unknown")
    REAL = "real", _("Real")
    AI = "ai", _("AI-generated or edited")
    DRAWN = "drawn", _("Drawn or CGI")


class SiteType(models.TextChoices):
    UNKNOWN = "", _("Not recorded")
    IMAGE_HOST = "image_host", _("Image host")
    FORUM = "forum", _("Forum")
    FILE_HOST = "file_host", _("File host")
    SOCIAL = "social", _("Social network")
    WEBSITE = "website", _("Website")
    OTHER = "other", _("Other")


class ReferralKind(models.TextChoices):
    POLICE = "police", _("Police")
    HOSTING_NTD = "hosting_ntd", _("Notice to hosting provider")
    FOREIGN_HOTLINE = "foreign_hotline", _("Foreign hotline")
    REGISTRAR = "registrar", _("Registrar")


class ReferralStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SENT = "sent", _("Sent")
    ACKNOWLEDGED = "acknowledged", _("Acknowledged")
    REMOVED = "removed", _("Removed")
    NOT_REMOVED = "not_removed", _("Not removed")
    REFUSED = "refused", _("Refused")
    CANCELLED = "cancelled", _("Cancelled")


class PartnerKind(models.TextChoices):
    HOTLINE = "hotline", _("Hotline")
    PLATFORM = "platform", _("Platform")
    POLICE = "police", _("Police")
    NGO = "ngo", _("NGO")


class TokenScope(models.TextChoices):
    SUBMIT = "submit", _("Submit reports")
    READ = "read", _("Read own reports")
    HASHLISTS = "hashlists", _("Manage hash lists")


class StaffRole(models.TextChoices):
    """Staff roles; each is a Django group of the same name."""

    ANALYST = "analyst", _("Analyst")
    SENIOR_ANALYST = "senior_analyst", _("Senior analyst")
    COORDINATOR = "coordinator", _("Coordinator")
    ADMIN = "admin", _("Administrator")


class HostingSituation(models.TextChoices):
    """Where illegal content is hosted, as the referral rules see it."""

    DOMESTIC = "domestic", _("Hosted in our own country")
    FOREIGN_PARTNER = "foreign_partner", _("Hosted abroad, a partner hotline there")
    FOREIGN_NO_PARTNER = "foreign_no_partner", _("Hosted abroad, no partner hotline there")
    UNKNOWN = "unknown", _("Hosting country unknown")


class Escalation(models.TextChoices):
    """How far an overdue notice has been escalated (SCART: reminder, site owner, registrar)."""

    NONE = "", _("None")
    REMINDER = "reminder", _("Reminder sent")
    SITE_OWNER = "site_owner", _("Site owner to be contacted")
    REGISTRAR = "registrar", _("Registrar to be contacted")


class RecheckState(models.TextChoices):
    """What the last re-check of a referred URL found."""

    NOT_CHECKED = "", _("Not re-checked yet")
    ONLINE = "online", _("Still online")
    CHANGED = "changed", _("Changed (review)")
    GONE = "gone", _("Removed")
    UNKNOWN = "unknown", _("Could not tell")


# A referral still waiting for its outcome: re-checked and escalated.
OPEN_REFERRAL_STATUSES = (ReferralStatus.SENT, ReferralStatus.ACKNOWLEDGED)
# Referrals whose aim is that the content goes offline (the police referral's aim is an investigation).
TAKEDOWN_KINDS = (ReferralKind.HOSTING_NTD, ReferralKind.FOREIGN_HOTLINE, ReferralKind.REGISTRAR)
