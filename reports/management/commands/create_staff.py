"""`manage.py create_staff USER --role ROLE [--email E]`, or `create_staff USER --reset`.

Prints the new password, the otpauth:// URI (and its QR code) for the user's authenticator app and
ten one-time recovery codes. They are shown once; hand them to the person over a safe channel.
"""

from __future__ import annotations

import io
from typing import Any

import qrcode
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from reports.models.choices import StaffRole
from reports.services.staff import staff_create, staff_recovery_codes, staff_reset_credentials

ACTOR_LABEL = "manage.py create_staff"


class Command(BaseCommand):
    help = (
        "Create a staff user with a role, a random password and a TOTP authenticator (or, with --reset, "
        "issue an existing user new ones), and print them once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", choices=StaffRole.values, help="The user's role (required unless --reset).")
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--reset",
            action="store_true",
            help="For an existing user: a new password, authenticator and recovery codes; the old ones stop working.",
        )
        parser.add_argument("--no-qr", action="store_true", help="Do not draw the QR code in the terminal.")

    def handle(self, *args: Any, **options: Any) -> None:
        username = options["username"]
        existing = get_user_model().objects.filter(username=username).first()
        if options["reset"]:
            if existing is None:
                raise CommandError(f"No user named {username!r}.")
            user = existing
            password, uri = staff_reset_credentials(user=user, actor_label=ACTOR_LABEL)
            self.stdout.write(f"New credentials for {username}; the old password, authenticator and codes are void.")
        else:
            if existing is not None:
                raise CommandError(f"A user named {username!r} exists; use --reset to issue new credentials.")
            if not options["role"]:
                raise CommandError("--role is required: one of " + ", ".join(StaffRole.values) + ".")
            try:
                user, password, uri = staff_create(
                    username=username, role=options["role"], email=options["email"], actor_label=ACTOR_LABEL
                )
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(f"Created {username} ({StaffRole(options['role']).label}).")

        out = self.stdout.write
        out("Shown once; give them to the user over a safe channel.")
        out(f"Password: {password}")
        out("Authenticator (TOTP) set-up URI; open it on the phone or scan the QR code:")
        out(uri)
        if not options["no_qr"]:
            buffer = io.StringIO()
            code = qrcode.QRCode(border=2)
            code.add_data(uri)
            code.print_ascii(out=buffer, invert=True)
            out(buffer.getvalue())
        out("Recovery codes (each works once, instead of a code from the app):")
        for token in staff_recovery_codes(user=user):
            out(f"  {token}")
