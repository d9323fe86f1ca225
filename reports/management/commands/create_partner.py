"""`manage.py create_partner NAME [--kind K] [--country CC] [--scopes s,s]`: prints the token last."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from reports.models import Partner
from reports.models.choices import PartnerKind, TokenScope
from reports.services.partners import partner_create, token_issue


class Command(BaseCommand):
    help = "Create a partner (or a new token for an existing one) and print the API token once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--kind", choices=PartnerKind.values, default=PartnerKind.HOTLINE)
        parser.add_argument("--country", default="", help="ISO 3166-1 alpha-2 code, e.g. NL.")
        parser.add_argument(
            "--scopes",
            default=",".join(TokenScope.values),
            help=f"Comma-separated scopes (default: all of {', '.join(TokenScope.values)}).",
        )
        parser.add_argument("--new-token", action="store_true", help="Issue another token for an existing partner.")

    def handle(self, *args: Any, **options: Any) -> None:
        scopes = [scope.strip() for scope in options["scopes"].split(",") if scope.strip()]
        try:
            if options["new_token"]:
                partner = Partner.objects.filter(name=options["name"]).first()
                if partner is None:
                    raise CommandError(f"No partner named {options['name']!r}.")
                issued = token_issue(partner=partner, name="cli", scopes=scopes)
            else:
                if Partner.objects.filter(name=options["name"]).exists():
                    raise CommandError(f"A partner named {options['name']!r} exists; use --new-token.")
                partner, issued = partner_create(
                    name=options["name"], kind=options["kind"], country=options["country"], scopes=scopes
                )
        except (ValueError, ValidationError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Partner {partner.name} ({partner.get_kind_display()}, {partner.country or '--'}), id {partner.pk}"
        )
        self.stdout.write(f"Token scopes: {', '.join(issued.token.scopes)}. It is shown once; store it now:")
        self.stdout.write(issued.secret)
