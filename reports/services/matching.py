"""Hash lists: create, import (deduplicated, in bulk) and export."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.db import connection, transaction

from reports.lib.hashes import InvalidHash, normalise_hash
from reports.models import HashList, KnownHash, Partner
from reports.models.choices import Category

CHUNK = 10_000
MAX_REPORTED_ERRORS = 100
CSV_HEADER = ("algorithm", "value", "category")


@dataclass
class ImportResult:
    received: int = 0
    added: int = 0
    duplicates: int = 0
    invalid: int = 0
    errors: list[dict[str, object]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "received": self.received,
            "added": self.added,
            "duplicates": self.duplicates,
            "invalid": self.invalid,
            "errors": self.errors,
        }


@transaction.atomic
def hashlist_create(*, name: str, source: Partner | None = None, default_category: str = Category.CSAM) -> HashList:
    hash_list = HashList(name=name, source=source, default_category=default_category)
    hash_list.full_clean()
    hash_list.save()
    return hash_list


def _insert_chunk(hash_list: HashList, rows: list[tuple[str, str, str]]) -> int:
    """Insert rows, skipping ones the list already has; return how many were new."""
    if connection.vendor == "postgresql":
        # COPY into a temporary table and one INSERT … ON CONFLICT: ~10x bulk_create's speed.
        table = KnownHash._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS hotline_hash_import "
                "(algorithm varchar(8), value varchar(64), category varchar(16)) ON COMMIT DROP"
            )
            cursor.execute("TRUNCATE hotline_hash_import")
            with cursor.copy("COPY hotline_hash_import (algorithm, value, category) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(
                f"INSERT INTO {table} (hash_list_id, algorithm, value, category, quarantined, added_at) "  # noqa: S608 - table name from model meta
                "SELECT %s, algorithm, value, category, false, now() FROM hotline_hash_import "
                "ON CONFLICT DO NOTHING",
                [hash_list.pk],
            )
            return cursor.rowcount
    before = KnownHash.objects.filter(hash_list=hash_list).count()
    KnownHash.objects.bulk_create(
        [KnownHash(hash_list=hash_list, algorithm=a, value=v, category=c) for a, v, c in rows],
        ignore_conflicts=True,
        batch_size=2000,
    )
    return KnownHash.objects.filter(hash_list=hash_list).count() - before


@transaction.atomic
def hashlist_import(
    *, hash_list: HashList, entries: Iterable[tuple[str, str, str]], max_entries: int | None = None
) -> ImportResult:
    """Import (algorithm, value, category) entries, validating each; bad ones are counted and the
    first ones described with their position (1-based). Memory stays bounded by the chunk size."""
    result = ImportResult()
    chunk: list[tuple[str, str, str]] = []
    valid_categories = set(Category.values)
    for position, (algorithm, value, category) in enumerate(entries, start=1):
        result.received += 1
        if max_entries is not None and result.received > max_entries:
            raise ValueError(f"more than {max_entries} entries in one import")
        try:
            algorithm_n, value_n = normalise_hash(algorithm, value)
            category_n = (category or "").strip().lower() or hash_list.default_category
            if category_n not in valid_categories:
                raise InvalidHash(f"unknown category {category_n[:20]!r}")
        except InvalidHash as exc:
            result.invalid += 1
            if len(result.errors) < MAX_REPORTED_ERRORS:
                result.errors.append({"entry": position, "message": str(exc)})
            continue
        chunk.append((algorithm_n, value_n, category_n))
        if len(chunk) >= CHUNK:
            result.added += _insert_chunk(hash_list, chunk)
            chunk = []
    if chunk:
        result.added += _insert_chunk(hash_list, chunk)
    result.duplicates = result.received - result.invalid - result.added
    return result


def parse_hash_csv(lines: Iterable[bytes | str]) -> Iterator[tuple[str, str, str]]:
    """Rows of `algorithm,value[,category]`; a header row and blank lines are skipped.
    A line that is not valid UTF-8 or has too few columns yields a row that fails validation."""
    for raw in lines:
        if isinstance(raw, bytes):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                yield ("", "", "")
                continue
        else:
            line = raw
        line = line.strip().lstrip("\ufeff")
        if not line:
            continue
        cells = next(csv.reader([line]))
        if [cell.strip().lower() for cell in cells[:2]] == ["algorithm", "value"]:
            continue
        cells += ["", "", ""]
        yield (cells[0], cells[1], cells[2])


def hashlist_export_csv(hash_list: HashList) -> Iterator[str]:
    """The list as CSV lines, streamed from the database in chunks."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    yield buffer.getvalue()
    rows = (
        KnownHash.objects.filter(hash_list=hash_list)
        .order_by("pk")
        .values_list("algorithm", "value", "category")
        .iterator(chunk_size=5000)
    )
    for algorithm, value, category in rows:
        yield f"{algorithm},{value},{category}\n"
