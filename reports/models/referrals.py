"""Referrals to police, hosting providers, foreign hotlines and registrars, with their timeline."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models.functions import Now

from .choices import Escalation, HostingSituation, ReferralKind, ReferralStatus
from .content import Content
from .intake import Url
from .partners import Partner
from .triage import Case


class AbuseContact(models.Model):
    """Where notices for a provider (by ASN or name) go; edited by coordinators."""

    provider = models.CharField(max_length=200)
    asn = models.PositiveBigIntegerField(null=True, blank=True, unique=True)
    email = models.EmailField()
    country = models.CharField(max_length=2, blank=True)
    language = models.CharField(max_length=5, default="en")

    class Meta:
        ordering = ["provider"]

    def __str__(self) -> str:
        return f"{self.provider} <{self.email}>"


class ReferralRule(models.Model):
    """Which referrals an illegal finding gets, by where it is hosted; edited by coordinators.

    Defaults (reports/services/referrals.py DEFAULT_RULES, created when the table is empty):
    at home, police and a notice to the host; abroad, the partner hotline there, or a notice to the
    host where there is none. A registrar is an escalation, never a first step."""

    situation = models.CharField(max_length=20, choices=HostingSituation.choices)
    kind = models.CharField(max_length=16, choices=ReferralKind.choices)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["situation", "kind"]
        constraints = [models.UniqueConstraint(fields=["situation", "kind"], name="referralrule_unique")]

    def __str__(self) -> str:
        return f"{self.get_situation_display()} → {self.get_kind_display()}"


class Referral(models.Model):
    """One referral: who it went to, which URLs and contents it covers, and where it stands."""

    kind = models.CharField(max_length=16, choices=ReferralKind.choices)
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.PROTECT, related_name="referrals")
    urls = models.ManyToManyField(Url, blank=True, related_name="referrals")
    contents = models.ManyToManyField(Content, blank=True, related_name="referrals")
    recipient = models.CharField(max_length=300)
    abuse_contact = models.ForeignKey(AbuseContact, null=True, blank=True, on_delete=models.PROTECT)
    partner = models.ForeignKey(Partner, null=True, blank=True, on_delete=models.PROTECT, related_name="referrals")
    reference = models.CharField(max_length=200, blank=True, help_text="The recipient's reference number.")
    status = models.CharField(max_length=16, choices=ReferralStatus.choices, default=ReferralStatus.DRAFT)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    created_at = models.DateTimeField(db_default=Now(), db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True)
    next_check_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Where an e-mailed notice goes (empty for the police package, which is exported, not mailed).
    email = models.EmailField(blank=True)
    language = models.CharField(max_length=5, default="en")
    # Proposed by the rules (False: added by hand, with a reason in its first event).
    automatic = models.BooleanField(default=False)
    escalation = models.CharField(max_length=12, choices=Escalation.choices, blank=True, default="")
    escalated_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    # A re-check found different content at a referred URL: an analyst should look again.
    changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "kind"], name="referral_status_kind")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} → {self.recipient}"

    @property
    def time_to_removal(self) -> timedelta | None:
        if self.removed_at is None or self.sent_at is None:
            return None
        return self.removed_at - self.sent_at


class ReferralEvent(models.Model):
    """A step on a referral's timeline (draft → sent → acknowledged → removed …)."""

    referral = models.ForeignKey(Referral, on_delete=models.CASCADE, related_name="events")
    status = models.CharField(max_length=16, choices=ReferralStatus.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    note = models.TextField(blank=True)
    at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.referral_id}: {self.status}"
