"""The audit trail: append-only, hash-chained events written in the caller's transaction."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.db.models import Model
from django.utils import timezone

from reports.models import AuditEvent

# Arbitrary constant: the PostgreSQL advisory lock that orders audit writes into one chain.
AUDIT_LOCK_KEY = 0x4855_4144  # "HUAD"


def _digest(event: AuditEvent) -> str:
    payload = {
        "at": event.at.isoformat(),
        "actor": event.actor_id,
        "actor_label": event.actor_label,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "details": event.details,
        "prev": event.prev_digest,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def audit_record(
    *,
    action: str,
    actor: AbstractBaseUser | None = None,
    actor_label: str = "",
    obj: Model | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event. Call inside the transaction of the change it records (Zulip's habit):
    if the change rolls back, so does its audit row."""
    if connection.vendor == "postgresql":
        # One chain: serialise appends so two transactions never link to the same predecessor.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [AUDIT_LOCK_KEY])
    previous = AuditEvent.objects.order_by("-pk").values_list("digest", flat=True).first() or ""
    event = AuditEvent(
        at=timezone.now(),
        actor=actor if actor is not None and actor.pk else None,
        actor_label=actor_label or (str(actor) if actor is not None else "system"),
        action=action,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        details=json.loads(json.dumps(details or {}, cls=DjangoJSONEncoder)),
        prev_digest=previous,
    )
    event.digest = _digest(event)
    event.save()
    return event


def audit_verify() -> int | None:
    """The pk of the first event whose digest or link does not hold, or None if the chain is whole."""
    previous = ""
    for event in AuditEvent.objects.order_by("pk").iterator(chunk_size=2000):
        if event.prev_digest != previous or _digest(event) != event.digest:
            return event.pk
        previous = event.digest
    return None
