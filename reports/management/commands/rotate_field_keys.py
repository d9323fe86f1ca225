"""`manage.py rotate_field_keys`: re-encrypt every encrypted field (reporters' e-mail addresses) under the
newest key of HOTLINE_FIELD_KEYS. The same procedure as rotate_preview_key (docs/deploy.md): put the new key
first, restart, run this, then drop the old key. Idempotent and resumable (--after-id)."""

from __future__ import annotations

from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import TextField
from django.db.models.functions import Cast

from reports.models import Report
from reports.models.fields import field_fernet
from reports.services.audit import audit_record


class Command(BaseCommand):
    help = "Re-encrypt reporters' e-mail addresses with the first key of HOTLINE_FIELD_KEYS."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--batch", type=int, default=1000, help="reports per transaction (default 1000)")
        parser.add_argument("--after-id", type=int, default=0, help="start after this report id (resume)")

    def handle(self, *args: Any, **options: Any) -> None:
        from django.conf import settings

        newest = Fernet(settings.HOTLINE_FIELD_KEYS[0].encode())
        every = field_fernet()
        batch = max(1, options["batch"])
        after = options["after_id"]
        rotated = current = 0
        unreadable: list[int] = []
        while True:
            with transaction.atomic():
                # The stored token as it is (a plain-text cast: the field would decrypt it), rows locked so
                # that retention's purge and this never write the same row at once.
                rows = list(
                    Report.objects.select_for_update()
                    .filter(pk__gt=after, email_purged_at__isnull=True)
                    .exclude(email="")
                    .order_by("pk")
                    .values_list("pk", Cast("email", TextField()))[:batch]
                )
                if not rows:
                    break
                for pk, token in rows:
                    try:
                        newest.decrypt(token.encode("ascii"))
                    except InvalidToken:
                        pass
                    else:
                        current += 1
                        continue
                    try:
                        plain = every.decrypt(token.encode("ascii")).decode("utf-8")
                    except InvalidToken:
                        unreadable.append(pk)
                        continue
                    Report.objects.filter(pk=pk).update(email=plain)  # the field encrypts with the first key
                    rotated += 1
                after = rows[-1][0]
        with transaction.atomic():
            audit_record(
                action="field_keys.rotated",
                actor_label="system",
                details={"rotated": rotated, "already_current": current, "unreadable": len(unreadable)},
            )
        self.stdout.write(
            f"Done: {rotated} fields re-encrypted, {current} already under the newest key, "
            f"{len(unreadable)} unreadable."
        )
        if unreadable:
            shown = ", ".join(str(pk) for pk in unreadable[:20])
            raise CommandError(f"{len(unreadable)} e-mail addresses could not be decrypted (report ids {shown}).")
