"""Cases (what an analyst works on) and assessments (what they decided)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Now

from .choices import CLAIMABLE_CASE_STATUSES, AgeGroup, CaseQueue, CaseStatus, Gender, SiteType, Verdict, Virtual
from .content import Content
from .intake import Report, Url


class Case(models.Model):
    """Work for an analyst: a URL and what was captured there, or a partner's hash-only report.

    `priority` orders the queues (lower first); `claimed_by`/`claim_expires_at` make sure two
    analysts never hold the same case.
    """

    url = models.ForeignKey(Url, null=True, blank=True, on_delete=models.PROTECT, related_name="cases")
    report = models.ForeignKey(Report, null=True, blank=True, on_delete=models.PROTECT, related_name="cases")
    contents = models.ManyToManyField(Content, blank=True, related_name="cases")
    status = models.CharField(max_length=24, choices=CaseStatus.choices, default=CaseStatus.OPEN)
    queue = models.CharField(max_length=20, choices=CaseQueue.choices, default=CaseQueue.NEW_UNKNOWN)
    priority = models.PositiveSmallIntegerField(default=0)
    auto_closed = models.BooleanField(default=False, help_text="Closed as known content without anyone viewing it.")
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="claimed_cases"
    )
    claim_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now(), db_index=True)
    assessed_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(url__isnull=False) | models.Q(report__isnull=False), name="case_has_subject"
            ),
            # One open case per URL: a new sighting joins it instead of creating more work.
            models.UniqueConstraint(
                fields=["url"],
                condition=models.Q(url__isnull=False) & ~models.Q(status="closed"),
                name="case_one_open_per_url",
            ),
            # A partner's hash-only report is one case, whatever its number of hashes.
            models.UniqueConstraint(
                fields=["report"], condition=models.Q(url__isnull=True), name="case_one_per_hash_report"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "priority", "created_at"], name="case_queue_order"),
            # "Next case" (reports.selectors.triage.claimable_cases): the first case of one queue in
            # work order, among the statuses claimable_q accepts. Only work not yet done is in it, so
            # the scan starts at the head of the queue and stops at the first case nobody holds.
            # Whether a claim has run out depends on the time, so that is checked row by row.
            models.Index(
                fields=["queue", "priority", "created_at", "id"],
                condition=models.Q(status__in=list(CLAIMABLE_CASE_STATUSES)),
                name="case_claim_order",
            ),
            # Statistics: the rollup finds cases assessed since its last run (reports.services.stats).
            models.Index(fields=["assessed_at"], name="case_assessed"),
        ]
        # What staff roles may do; reports/roles.py gives each role (a group) its set.
        permissions = [
            ("work_queue", "Can claim and work cases from the analyst queues"),
            ("reveal_content", "Can reveal an unblurred preview (audited)"),
            ("assess_content", "Can assess content"),
            ("give_second_opinion", "Can give a second opinion on an assessment"),
            ("reassign_case", "Can release or reassign another analyst's case"),
            ("manage_referrals", "Can create, send and track referrals"),
            ("view_statistics", "Can view statistics"),
            ("view_exposure", "Can view analysts' exposure and workload"),
            ("view_audit", "Can browse and export the audit trail"),
        ]

    def __str__(self) -> str:
        return f"case {self.pk}"


class Assessment(models.Model):
    """An ICCAM-style classification of one content (or of a URL, for pages)."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="assessments")
    content = models.ForeignKey(Content, null=True, blank=True, on_delete=models.PROTECT, related_name="assessments")
    url = models.ForeignKey(Url, null=True, blank=True, on_delete=models.PROTECT, related_name="assessments")
    analyst = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="assessments"
    )
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    age_group = models.CharField(max_length=16, choices=AgeGroup.choices, blank=True)
    gender = models.CharField(max_length=8, choices=Gender.choices, blank=True)
    virtual = models.CharField(max_length=8, choices=Virtual.choices, default=Virtual.UNKNOWN)
    site_type = models.CharField(max_length=16, choices=SiteType.choices, blank=True)
    commercial = models.BooleanField(null=True, blank=True)
    notes = models.TextField(blank=True)
    # Proposed from a match (inherited classification) rather than decided by looking.
    inherited_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    second_opinion_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="second_opinions"
    )
    second_opinion_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now(), db_index=True)

    def __str__(self) -> str:
        return f"{self.get_verdict_display()} ({self.pk})"


class RevealGrant(models.Model):
    """Permission to fetch one unblurred preview, once, shortly after an audited reveal.

    Only the SHA-256 of the token is stored: a leaked database row cannot be replayed. `used_at`
    makes the grant single-use (set by one conditional UPDATE, so two requests never both win).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reveal_grants")
    content = models.ForeignKey(Content, on_delete=models.CASCADE, related_name="reveal_grants")
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="reveal_grants")
    token_digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(db_default=Now())
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"reveal grant {self.pk}"


class StaffPreference(models.Model):
    """How one staff member wants previews shown (blur is not a preference: it is always on)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_preference")
    greyscale = models.BooleanField(default=False, help_text="Show previews in greyscale by default.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"preferences of {self.user}"
