"""The append-only, hash-chained audit trail."""

from __future__ import annotations

import pgtrigger
from django.conf import settings
from django.db import models
from django.db.models.functions import Now


class AuditEvent(models.Model):
    """Something a person (or the system) did that must stay accountable.

    Each event stores the SHA-256 of its own content plus the previous event's digest, so
    editing or deleting a row breaks the chain (`manage.py verify_audit`, analyst issue).
    """

    at = models.DateTimeField(db_default=Now(), db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    actor_label = models.CharField(max_length=200, blank=True, help_text="'system', 'public', a partner name…")
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    details = models.JSONField(default=dict, blank=True)
    prev_digest = models.CharField(max_length=64, blank=True)
    digest = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["pk"]
        # On PostgreSQL the database itself refuses to change or remove an event, so neither a bug,
        # a bulk update nor raw SQL through the app's connection can rewrite history.
        triggers = [
            pgtrigger.Protect(name="audit_append_only", operation=pgtrigger.Update | pgtrigger.Delete),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action}"
