"""Known hashes from imported lists, and the matches found between hashes."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now

from .choices import Category, HashAlgorithm
from .content import Content
from .intake import SubmittedHash
from .partners import Partner


class HashList(models.Model):
    """An imported list of known hashes (a partner's, or the hotline's own banked hashes)."""

    name = models.CharField(max_length=200, unique=True)
    source = models.ForeignKey(Partner, null=True, blank=True, on_delete=models.PROTECT, related_name="hash_lists")
    default_category = models.CharField(max_length=16, choices=Category.choices, default=Category.CSAM)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(db_default=Now())

    def __str__(self) -> str:
        return self.name


class KnownHash(models.Model):
    """One entry of a hash list."""

    hash_list = models.ForeignKey(HashList, on_delete=models.CASCADE, related_name="entries")
    algorithm = models.CharField(max_length=8, choices=HashAlgorithm.choices)
    value = models.CharField(max_length=64, help_text="Lower-case hex.")
    category = models.CharField(max_length=16, choices=Category.choices, blank=True)
    quarantined = models.BooleanField(default=False)
    added_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hash_list", "algorithm", "value"], name="knownhash_unique"),
        ]
        indexes = [
            models.Index(fields=["algorithm", "value"], name="knownhash_lookup"),
            # Statistics count runaway hashes on every dashboard view: only the few quarantined rows are indexed.
            models.Index(fields=["id"], condition=models.Q(quarantined=True), name="knownhash_quarantined"),
        ]

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.value}"


class Match(models.Model):
    """Content (or a submitted hash) matched earlier content or a hash-list entry."""

    content = models.ForeignKey(Content, null=True, blank=True, on_delete=models.CASCADE, related_name="matches")
    submitted_hash = models.ForeignKey(
        SubmittedHash, null=True, blank=True, on_delete=models.CASCADE, related_name="matches"
    )
    kind = models.CharField(max_length=8, choices=HashAlgorithm.choices)
    distance = models.PositiveSmallIntegerField(default=0)
    matched_content = models.ForeignKey(
        Content, null=True, blank=True, on_delete=models.CASCADE, related_name="matched_by"
    )
    known_hash = models.ForeignKey(KnownHash, null=True, blank=True, on_delete=models.CASCADE, related_name="matches")
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(content__isnull=False) | models.Q(submitted_hash__isnull=False),
                name="match_has_subject",
            ),
            models.CheckConstraint(
                condition=models.Q(matched_content__isnull=False) | models.Q(known_hash__isnull=False),
                name="match_has_target",
            ),
            models.UniqueConstraint(
                fields=["content", "kind", "matched_content"],
                condition=models.Q(content__isnull=False, matched_content__isnull=False),
                name="match_unique_content_content",
            ),
            models.UniqueConstraint(
                fields=["content", "kind", "known_hash"],
                condition=models.Q(content__isnull=False, known_hash__isnull=False),
                name="match_unique_content_known",
            ),
            models.UniqueConstraint(
                fields=["submitted_hash", "kind", "matched_content"],
                condition=models.Q(submitted_hash__isnull=False, matched_content__isnull=False),
                name="match_unique_submitted_content",
            ),
            models.UniqueConstraint(
                fields=["submitted_hash", "kind", "known_hash"],
                condition=models.Q(submitted_hash__isnull=False, known_hash__isnull=False),
                name="match_unique_submitted_known",
            ),
        ]
        # Statistics: the rollup finds matches made since its last run (reports.services.stats).
        indexes = [models.Index(fields=["created_at"], name="match_created")]

    def __str__(self) -> str:
        return f"{self.kind} match d={self.distance}"
