"""What fetching found: captures (every attempt) and contents (unique by SHA-256)."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now

from .choices import CaptureError
from .intake import Url


class Content(models.Model):
    """One distinct file, by SHA-256. The original bytes are never stored; a small encrypted
    preview may be, until the retention policy deletes it."""

    sha256 = models.CharField(max_length=64, unique=True)
    md5 = models.CharField(max_length=32, db_index=True)
    sha1 = models.CharField(max_length=40, db_index=True)
    pdq = models.CharField(max_length=64, blank=True, db_index=True)
    pdq_quality = models.PositiveSmallIntegerField(null=True, blank=True)
    # The 8 dihedral transforms' PDQ hashes (rotations, mirrors): matching queries with all of
    # them, so a mirrored copy finds its original although the bytes are gone by then.
    pdq_dihedral = models.JSONField(default=list, blank=True)
    phash = models.CharField(max_length=16, blank=True, db_index=True)
    media_type = models.CharField(max_length=40, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    byte_count = models.PositiveBigIntegerField(default=0)
    provenance = models.JSONField(default=dict, blank=True)
    ai_indicated = models.BooleanField(default=False)
    # Fernet token of a <= 512 px JPEG rendition; empty once purged.
    preview = models.BinaryField(blank=True, default=b"")
    preview_purged_at = models.DateTimeField(null=True, blank=True)
    # A hash that matches too many distinct contents is kept out of automatic decisions.
    quarantined = models.BooleanField(default=False)
    first_seen_at = models.DateTimeField(db_default=Now(), db_index=True)
    # Set when near-duplicate matching has run; the sweeper re-queues content left without it.
    matched_at = models.DateTimeField(null=True, blank=True)
    # Order in which matching committed (assigned under the matching lock): workers' in-memory
    # indexes catch up by it, so none misses content another worker matched meanwhile.
    match_seq = models.BigIntegerField(null=True, blank=True, unique=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["first_seen_at"], condition=models.Q(matched_at__isnull=True), name="content_unmatched"
            ),
            # Contents still holding a preview: what the retention job walks (reports.services.retention),
            # so a run costs what is left to purge, not the size of the table.
            models.Index(
                fields=["id"], condition=models.Q(preview_purged_at__isnull=True), name="content_preview_held"
            ),
            # Statistics count runaway hashes on every dashboard view: only the few quarantined rows are indexed.
            models.Index(fields=["id"], condition=models.Q(quarantined=True), name="content_quarantined"),
        ]

    def __str__(self) -> str:
        return self.sha256


class Capture(models.Model):
    """One fetch attempt of a URL (or of an image linked from a fetched page), failed or not."""

    url = models.ForeignKey(Url, on_delete=models.CASCADE, related_name="captures")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    requested_url = models.TextField()
    final_url = models.TextField(blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    declared_type = models.CharField(max_length=100, blank=True)
    detected_type = models.CharField(max_length=40, blank=True)
    byte_count = models.PositiveBigIntegerField(default=0)
    error = models.CharField(max_length=24, choices=CaptureError.choices, blank=True, default="")
    error_detail = models.CharField(max_length=300, blank=True)
    content = models.ForeignKey(Content, null=True, blank=True, on_delete=models.PROTECT, related_name="captures")
    is_recheck = models.BooleanField(default=False)
    started_at = models.DateTimeField(db_default=Now())
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["url", "started_at"], name="capture_url_started")]

    def __str__(self) -> str:
        return f"capture {self.pk} of {self.requested_url}"
