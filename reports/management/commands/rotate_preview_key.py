"""`manage.py rotate_preview_key`: re-encrypt every stored preview under the newest preview key.

Rotation: put the new key first in HOTLINE_PREVIEW_KEYS (keep the old ones after it), restart the web
and worker processes, run this, then drop the old keys. Idempotent and resumable: previews already
under the newest key are left alone, so an interrupted run is simply run again (or continued with
--after-id). Each batch commits on its own; a preview deleted meanwhile (retention) stays deleted.
"""

from __future__ import annotations

from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from reports.models import Content
from reports.services.audit import audit_record


class Command(BaseCommand):
    help = "Re-encrypt every stored preview with the first key of HOTLINE_PREVIEW_KEYS."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--batch", type=int, default=500, help="previews per transaction (default 500)")
        parser.add_argument("--after-id", type=int, default=0, help="start after this content id (resume)")

    def handle(self, *args: Any, **options: Any) -> None:
        keys = list(settings.HOTLINE_PREVIEW_KEYS)
        if not keys:
            raise CommandError("HOTLINE_PREVIEW_KEYS is empty.")
        newest = Fernet(keys[0].encode())
        every = MultiFernet([Fernet(key.encode()) for key in keys])
        batch = max(1, options["batch"])
        after = options["after_id"]
        rotated = current = unreadable = 0
        unreadable_ids: list[int] = []
        while True:
            rows = list(
                Content.objects.filter(pk__gt=after)
                .exclude(preview=b"")
                .order_by("pk")
                .values_list("pk", "preview")[:batch]
            )
            if not rows:
                break
            with transaction.atomic():
                for pk, stored in rows:
                    token = bytes(stored)
                    try:
                        newest.decrypt(token)
                    except InvalidToken:
                        pass
                    else:
                        current += 1
                        continue
                    try:
                        fresh = every.rotate(token)
                    except InvalidToken:
                        unreadable += 1
                        unreadable_ids.append(pk)
                        continue
                    # Compare-and-set: only if the row still holds what was read (not purged meanwhile).
                    rotated += Content.objects.filter(pk=pk, preview=token).update(preview=fresh)
                after = rows[-1][0]
            self.stdout.write(f"… up to content {after}: {rotated} re-encrypted, {current} already current")
        with transaction.atomic():
            audit_record(
                action="preview_keys.rotated",
                actor_label="system",
                details={"rotated": rotated, "already_current": current, "unreadable": unreadable},
            )
        self.stdout.write(
            f"Done: {rotated} previews re-encrypted, {current} already under the newest key, {unreadable} unreadable."
        )
        if unreadable_ids:
            shown = ", ".join(str(pk) for pk in unreadable_ids[:20])
            raise CommandError(
                f"{unreadable} previews could not be decrypted with any configured key (content ids {shown}"
                f"{', …' if unreadable > 20 else ''}); keep the old keys until they are dealt with."
            )
