"""What comes in: reports, the URLs they name, and the hashes partners submit."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now

from .choices import (
    AiSuspected,
    Category,
    FetchStatus,
    HashAlgorithm,
    RecheckState,
    ReportSource,
    ReportStatus,
    WhereFound,
)
from .fields import EncryptedTextField
from .partners import Partner


class Report(models.Model):
    """One submission: from the public form (with a receipt) or from a partner (with an external id).

    The reporter's IP address is never stored. The e-mail address, if given, is encrypted and
    purged by the retention policy (`email_purged_at`).
    """

    source = models.CharField(max_length=8, choices=ReportSource.choices)
    partner = models.ForeignKey(Partner, null=True, blank=True, on_delete=models.PROTECT, related_name="reports")
    # NULL, not "", when absent: the unique constraints below must ignore reports without one.
    external_id = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    category = models.CharField(max_length=16, choices=Category.choices)
    ai_suspected = models.CharField(max_length=8, choices=AiSuspected.choices, default=AiSuspected.UNKNOWN)
    where_found = models.CharField(max_length=8, choices=WhereFound.choices, blank=True)
    description = models.TextField(blank=True)
    email = EncryptedTextField(blank=True)
    email_purged_at = models.DateTimeField(null=True, blank=True)
    # Public receipt: the code is public, the PIN is stored as an HMAC with the server's pepper.
    receipt_code = models.CharField(max_length=16, unique=True, null=True, blank=True)
    pin_digest = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=20, choices=ReportStatus.choices, default=ReportStatus.RECEIVED)
    found_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now(), db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "external_id"],
                condition=models.Q(external_id__isnull=False),
                name="report_unique_partner_external_id",
            ),
            models.UniqueConstraint(
                fields=["partner", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="report_unique_partner_idempotency_key",
            ),
            models.CheckConstraint(
                condition=models.Q(source="public", partner__isnull=True)
                | models.Q(source="partner", partner__isnull=False),
                name="report_partner_matches_source",
            ),
        ]
        indexes = [
            models.Index(fields=["source", "created_at"], name="report_source_created"),
            # Reports still holding a reporter's e-mail address, for the retention job.
            models.Index(
                fields=["created_at"],
                condition=models.Q(email_purged_at__isnull=True) & ~models.Q(email=""),
                name="report_email_held",
            ),
        ]

    def __str__(self) -> str:
        return self.receipt_code or f"report {self.pk}"


class Url(models.Model):
    """A canonical URL. An exact duplicate never creates new work, only another sighting."""

    canonical_url = models.TextField()
    # SHA-256 of the canonical URL: a fixed-size unique key, whatever the URL's length.
    url_hash = models.CharField(max_length=64, unique=True)
    scheme = models.CharField(max_length=5)
    host = models.CharField(max_length=253, db_index=True)
    first_seen_at = models.DateTimeField(db_default=Now())
    last_seen_at = models.DateTimeField(db_default=Now())
    sightings = models.PositiveIntegerField(default=1)
    fetch_status = models.CharField(max_length=8, choices=FetchStatus.choices, default=FetchStatus.PENDING)
    fetch_error = models.CharField(max_length=24, blank=True)
    fetch_attempts = models.PositiveSmallIntegerField(default=0)
    next_fetch_at = models.DateTimeField(null=True, blank=True)
    # Hosting (referrals issue): filled from GeoIP/ASN data or by an analyst's override.
    hosting_ip = models.GenericIPAddressField(null=True, blank=True)
    hosting_country = models.CharField(max_length=2, blank=True)
    # 32-bit AS numbers reach 4,294,967,295: past a PostgreSQL integer.
    hosting_asn = models.PositiveBigIntegerField(null=True, blank=True)
    hosting_provider = models.CharField(max_length=200, blank=True)
    hosting_overridden = models.BooleanField(default=False)
    # Takedown tracking (reports/services/referrals.py): the last re-check and when removal was seen.
    recheck_state = models.CharField(max_length=8, choices=RecheckState.choices, blank=True, default="")
    rechecked_at = models.DateTimeField(null=True, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["fetch_status", "next_fetch_at"], name="url_fetch_due")]

    def __str__(self) -> str:
        return self.canonical_url


class ReportedUrl(models.Model):
    """A sighting: this report named this URL (as the reporter typed it)."""

    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="reported_urls")
    url = models.ForeignKey(Url, on_delete=models.PROTECT, related_name="sightings_set")
    submitted_url = models.TextField()
    position = models.PositiveSmallIntegerField()
    was_known = models.BooleanField(help_text="The canonical URL had been reported before this report.")
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["report", "position"]
        constraints = [models.UniqueConstraint(fields=["report", "url"], name="reportedurl_unique_report_url")]

    def __str__(self) -> str:
        return self.submitted_url


class SubmittedHash(models.Model):
    """A hash a partner submitted without (or besides) a URL; matched like fetched content."""

    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="hashes")
    algorithm = models.CharField(max_length=8, choices=HashAlgorithm.choices)
    value = models.CharField(max_length=64, help_text="Lower-case hex.")
    created_at = models.DateTimeField(db_default=Now())
    matched_at = models.DateTimeField(null=True, blank=True)
    match_seq = models.BigIntegerField(null=True, blank=True, unique=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["report", "algorithm", "value"], name="submittedhash_unique"),
        ]
        indexes = [models.Index(fields=["algorithm", "value"], name="submittedhash_lookup")]

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.value}"
