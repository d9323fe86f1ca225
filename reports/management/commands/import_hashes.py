"""`manage.py import_hashes LIST_NAME FILE`: import a CSV of `algorithm,value[,category]`."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reports.models import HashList
from reports.models.choices import Category
from reports.services.matching import hashlist_create, hashlist_import, parse_hash_csv


class Command(BaseCommand):
    help = "Import known hashes from a CSV file (algorithm,value[,category]) into a hash list, creating it if needed."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("list_name")
        parser.add_argument("file", help="CSV file, or - for standard input.")
        parser.add_argument("--category", choices=Category.values, default=Category.CSAM, help="For a new list.")

    def handle(self, *args: Any, **options: Any) -> None:
        hash_list = HashList.objects.filter(name=options["list_name"]).first()
        if hash_list is None:
            hash_list = hashlist_create(name=options["list_name"], default_category=options["category"])
            self.stdout.write(f"Created hash list {hash_list.name!r}.")
        started = time.perf_counter()
        if options["file"] == "-":
            result = hashlist_import(hash_list=hash_list, entries=parse_hash_csv(sys.stdin.buffer))
        else:
            path = Path(options["file"])
            if not path.is_file():
                raise CommandError(f"No such file: {path}")
            with path.open("rb") as handle:
                result = hashlist_import(hash_list=hash_list, entries=parse_hash_csv(handle))
        elapsed = time.perf_counter() - started
        for error in result.errors[:20]:
            self.stderr.write(f"line {error['entry']}: {error['message']}")
        self.stdout.write(
            f"{result.received} read, {result.added} added, {result.duplicates} already present, "
            f"{result.invalid} invalid, in {elapsed:.1f} s."
        )
