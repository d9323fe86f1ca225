"""Referrals to police, hosting providers, foreign hotlines and registrars, with their timeline."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Now

from .choices import ReferralKind, ReferralStatus
from .content import Content
from .intake import Url
from .partners import Partner
from .triage import Case


class AbuseContact(models.Model):
    """Where notices for a provider (by ASN or name) go; edited by coordinators."""

    provider = models.CharField(max_length=200)
    asn = models.PositiveIntegerField(null=True, blank=True, unique=True)
    email = models.EmailField()
    country = models.CharField(max_length=2, blank=True)
    language = models.CharField(max_length=5, default="en")

    def __str__(self) -> str:
        return f"{self.provider} <{self.email}>"


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

    def __str__(self) -> str:
        return f"{self.get_kind_display()} → {self.recipient}"


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
