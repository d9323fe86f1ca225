"""`manage.py demo_totp USER`: the current two-factor code of a demo user. DEBUG only.

The demo users' authenticators have fixed, published keys (seed_demo), so anyone can compute their
codes; this command does it for you. It refuses to run without DEBUG, like seed_demo.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from reports.management.commands.seed_demo import DEMO_USERS


class Command(BaseCommand):
    help = "Print a demo user's current TOTP code (DEBUG only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("demo_totp prints two-factor codes and runs only with DEBUG=1.")
        demo = {user.username: user for user in DEMO_USERS}.get(options["username"])
        if demo is None:
            raise CommandError(f"Not a demo user; choose one of {', '.join(user.username for user in DEMO_USERS)}.")
        # Only the demo's own authenticator, with its published key: never a real one.
        try:
            device = TOTPDevice.objects.filter(user__username=demo.username, key=demo.totp_key, confirmed=True).first()
        except DatabaseError as exc:
            raise CommandError(f"No demo database here ({exc}); run `make demo` first.") from exc
        if device is None:
            raise CommandError(f"{demo.username!r} has no demo authenticator; run `manage.py seed_demo` first.")
        now = int(time.time())
        code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=device.drift)
        remaining = device.step - (now - device.t0) % device.step
        self.stdout.write(f"{code:0{device.digits}d}")
        self.stderr.write(f"(valid for {remaining} more seconds)")
