"""`manage.py verify_audit`: check the audit trail's hash chain; exit 1 at the first broken link."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from reports.models import AuditEvent
from reports.services.audit import audit_verify


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain and report the first event that does not hold."

    def handle(self, *args: Any, **options: Any) -> None:
        broken = audit_verify()
        total = AuditEvent.objects.count()
        if broken is not None:
            event = AuditEvent.objects.filter(pk=broken).first()
            what = f"{event.action} at {event.at:%Y-%m-%d %H:%M:%S}" if event else "a missing event"
            raise CommandError(f"Audit chain broken at event {broken} ({what}); {total} events in all.")
        self.stdout.write(f"Audit chain intact: {total} events.")
