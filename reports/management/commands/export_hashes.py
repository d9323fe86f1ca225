"""`manage.py export_hashes LIST_NAME [FILE]`: write a hash list as CSV (the import format)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reports.models import HashList
from reports.services.matching import hashlist_export_csv


class Command(BaseCommand):
    help = "Export a hash list as CSV (algorithm,value,category), to a file or standard output."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("list_name")
        parser.add_argument("file", nargs="?", default="-")

    def handle(self, *args: Any, **options: Any) -> None:
        hash_list = HashList.objects.filter(name=options["list_name"]).first()
        if hash_list is None:
            raise CommandError(f"No hash list named {options['list_name']!r}.")
        if options["file"] == "-":
            sys.stdout.writelines(hashlist_export_csv(hash_list))
            return
        with Path(options["file"]).open("w", encoding="utf-8", newline="") as handle:
            handle.writelines(hashlist_export_csv(hash_list))
