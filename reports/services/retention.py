"""Retention: delete what Hotline promised not to keep, on time, and say so in the audit trail.

- A content's encrypted preview goes HOTLINE_RETENTION_PREVIEW_DAYS after the last of its cases
  closed. A content in several cases keeps it while any of them is open, or closed more recently
  than that; a content in no case at all keeps it (nothing says its work is over).
- A reporter's e-mail address goes HOTLINE_RETENTION_EMAIL_DAYS after the report came in.
- Kept: hashes, captures and their metadata (HTTP status, addresses, types, sizes), matches,
  assessments and the audit trail.

Work is done in batches of HOTLINE_RETENTION_BATCH rows, one transaction each, with one audit event
per batch (how many, which id range, the cut-off) written in that transaction. The runs walk partial
indexes that hold only the rows still holding a preview or an address, so a run costs what is still
held (purged rows leave the index), not the size of the tables. Running it again purges nothing twice.
A case marked closed without a `closed_at` counts as not closed: its contents keep their previews.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from reports.lib.metrics import RETENTION_PURGED
from reports.models import Case, Content, Report
from reports.models.choices import CaseStatus
from reports.services.audit import audit_record

PREVIEWS_PURGED = "retention.previews_purged"
EMAILS_PURGED = "retention.emails_purged"


@dataclass(frozen=True)
class RetentionResult:
    previews: int
    emails: int
    preview_cutoff: datetime
    email_cutoff: datetime

    def as_dict(self) -> dict[str, object]:
        return {key: value.isoformat() if isinstance(value, datetime) else value for key, value in asdict(self).items()}


def _purge_recorded(*, action: str, what: str, ids: list[int], details: dict[str, Any]) -> int:
    """One audit event per purged batch (counts and the id range, never the data), and the metric."""
    audit_record(
        action=action,
        actor_label="system",
        details={"count": len(ids), "first_id": ids[0], "last_id": ids[-1], **details},
    )
    transaction.on_commit(lambda: RETENTION_PURGED.labels(what=what).inc(len(ids)))
    return len(ids)


def _due_among(ids: list[int], *, cutoff: datetime) -> list[int]:
    """Those of `ids` whose content is in at least one case, and whose cases all closed before `cutoff`."""
    case_of_content = Case.contents.through.objects.filter(content_id=OuterRef("pk"))
    still_needed = case_of_content.filter(
        ~Q(case__status=CaseStatus.CLOSED) | Q(case__closed_at__isnull=True) | Q(case__closed_at__gte=cutoff)
    )
    return list(
        Content.objects.filter(pk__in=ids, preview_purged_at__isnull=True)
        .filter(Exists(case_of_content))
        .exclude(Exists(still_needed))
        .order_by("pk")
        .values_list("pk", flat=True)
    )


@transaction.atomic
def _purge_previews(ids: list[int], *, now: datetime, cutoff: datetime) -> int:
    # Chosen again under the row locks: a case reopened (or a new case opened on the content) since
    # the ids were read keeps the preview.
    locked = list(Content.objects.select_for_update().filter(pk__in=ids).values_list("pk", flat=True))
    purge = _due_among(locked, cutoff=cutoff)
    if not purge:
        return 0
    # Stamped even when there was no preview to delete (a picture that could not be rendered): the
    # content then leaves the partial index the next runs walk.
    Content.objects.filter(pk__in=purge).update(preview=b"", preview_purged_at=now)
    return _purge_recorded(
        action=PREVIEWS_PURGED,
        what="preview",
        ids=purge,
        details={"cases_closed_before": cutoff, "after_days": settings.HOTLINE_RETENTION_PREVIEW_DAYS},
    )


def previews_purge(*, now: datetime | None = None) -> int:
    """Delete the previews that are due (see the module docstring); returns how many."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.HOTLINE_RETENTION_PREVIEW_DAYS)
    batch = settings.HOTLINE_RETENTION_BATCH
    purged = 0
    after_pk = 0
    while True:
        # Keyset walk over the contents still holding a preview (the content_preview_held index).
        held = list(
            Content.objects.filter(preview_purged_at__isnull=True, pk__gt=after_pk)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch]
        )
        if not held:
            return purged
        due = _due_among(held, cutoff=cutoff)
        if due:
            purged += _purge_previews(due, now=now, cutoff=cutoff)
        after_pk = held[-1]


def _email_held() -> Q:
    return Q(email_purged_at__isnull=True) & ~Q(email="")


@transaction.atomic
def _purge_emails_batch(*, now: datetime, cutoff: datetime, batch: int) -> int:
    ids = list(
        Report.objects.select_for_update(skip_locked=True)
        .filter(_email_held(), created_at__lt=cutoff)
        .order_by("pk")
        .values_list("pk", flat=True)[:batch]
    )
    if not ids:
        return 0
    Report.objects.filter(pk__in=ids).update(email="", email_purged_at=now)
    return _purge_recorded(
        action=EMAILS_PURGED,
        what="email",
        ids=ids,
        details={"reports_before": cutoff, "after_days": settings.HOTLINE_RETENTION_EMAIL_DAYS},
    )


def emails_purge(*, now: datetime | None = None) -> int:
    """Delete reporters' e-mail addresses older than the retention period; returns how many."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.HOTLINE_RETENTION_EMAIL_DAYS)
    purged = 0
    while True:
        done = _purge_emails_batch(now=now, cutoff=cutoff, batch=settings.HOTLINE_RETENTION_BATCH)
        if not done:
            return purged
        purged += done


def retention_purge(*, now: datetime | None = None) -> RetentionResult:
    """The whole retention policy, once: previews, then e-mail addresses."""
    now = now or timezone.now()
    return RetentionResult(
        previews=previews_purge(now=now),
        emails=emails_purge(now=now),
        preview_cutoff=now - timedelta(days=settings.HOTLINE_RETENTION_PREVIEW_DAYS),
        email_cutoff=now - timedelta(days=settings.HOTLINE_RETENTION_EMAIL_DAYS),
    )
