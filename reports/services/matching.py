"""Matching: hash lists (create, import, export) and matching content and submitted hashes
against everything known."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from reports.lib.hamming_index import HammingIndex
from reports.lib.hashes import InvalidHash, normalise_hash
from reports.models import Content, HashList, KnownHash, Match, Partner, Report, SubmittedHash
from reports.models.choices import Category
from reports.selectors.match_index import CONTENT, KNOWN, SUBMITTED, MatchIndex, decode, get_match_index, match_lock
from reports.services.triage import case_for_hash_report, cases_refresh_for_contents

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
    # Entries must become visible to workers' indexes in id order: import under the matching lock.
    match_lock()
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


# --- Matching content and partner-submitted hashes ---------------------------------------------

EXACT_CONTENT_FIELDS = ("sha256", "md5", "sha1")


def _next_seq(model: type[Content] | type[SubmittedHash]) -> int:
    # Safe without a sequence object: callers hold the matching lock (or are SQLite's one writer).
    return (model.objects.aggregate(top=Max("match_seq"))["top"] or 0) + 1


def _near_targets(index: MatchIndex, *, pdq_hexes: list[str], phash: str) -> list[tuple[str, int, int, int]]:
    """(kind, target kind, target pk, distance) for every near hit of the PDQ set and the pHash."""
    hits: list[tuple[str, int, int, int]] = []
    for code, distance in index.near_pdq(pdq_hexes).items():
        hits.append(("pdq", *decode(code), distance))
    if phash:
        for code, distance in index.near_phash(phash).items():
            hits.append(("phash", *decode(code), distance))
    return hits


def _quarantine_runaways(*, target_content_ids: set[int], known_ids: set[int]) -> set[int]:
    """A hash that matches more distinct contents than the threshold matches too much (a blank image,
    a logo, a bad list entry): flag it so it never decides a case automatically. Returns the
    contents whose cases relied on a hash quarantined now, so that they can be placed again.
    One aggregate query per kind of target for a whole batch; row reads only when one tips over."""
    limit = settings.HOTLINE_RUNAWAY_THRESHOLD
    affected: set[int] = set()
    # (the Match column naming the target, the target's model, whether the target itself was matched)
    targets = (
        ("matched_content_id", Content, target_content_ids, True),
        # Partner hashes that matched a list entry are not contents: they do not count.
        ("known_hash_id", KnownHash, known_ids, False),
    )
    for column, model, ids, target_is_content in targets:
        if not ids:
            continue
        counts = (
            Match.objects.filter(**{f"{column}__in": ids}, content__isnull=False)
            .values(column)
            .annotate(n=Count("content_id", distinct=True))
            .filter(n__gt=limit)
        )
        for row in counts:
            target_id = row[column]
            if model.objects.filter(pk=target_id, quarantined=False).update(quarantined=True):
                matched = Match.objects.filter(**{column: target_id}, content__isnull=False)
                affected |= set(matched.values_list("content_id", flat=True))
                if target_is_content:
                    affected.add(target_id)
    return affected


def _pdq_hexes(content: Content) -> list[str]:
    """The PDQ hashes to look up for `content` (its 8 dihedral variants), none if the hash is weak."""
    if not content.pdq or (content.pdq_quality or 0) < settings.HOTLINE_PDQ_MIN_QUALITY:
        return []
    return content.pdq_dihedral or [content.pdq]


@transaction.atomic
def content_match(*, content_id: int) -> list[Match]:
    """Match one content (see `contents_match`)."""
    return contents_match(content_ids=[content_id])


def contents_pending_match(*, limit: int) -> list[int]:
    """Up to `limit` contents still waiting to be matched, oldest first."""
    return list(
        Content.objects.filter(matched_at__isnull=True)
        .order_by("first_seen_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


@transaction.atomic
def contents_match(*, content_ids: Iterable[int]) -> list[Match]:
    """Match contents against everything known: hash-list entries and partner-submitted hashes
    exactly, then earlier content, list entries and submitted hashes by PDQ (all 8 dihedral
    variants, so mirrored copies match) and pHash. Idempotent: content matched once is skipped.

    A batch costs about a dozen queries whatever its size (plus its cases' refresh): matching
    holds one lock for every worker, so the work done under it per content is what bounds the
    whole pipeline. Within a batch, contents are matched in arrival order and each is matched
    against the ones before it too, exactly as if they had been matched one at a time.
    """
    ids = sorted(set(content_ids))
    if not ids:
        return []
    index = get_match_index()
    if not index.warm:
        with index.lock:
            # A fresh worker's big first load happens before the lock that serialises matching;
            # under the lock only what committed meanwhile is left to read.
            index.catch_up()
    match_lock()
    contents = list(
        Content.objects.select_for_update()
        .filter(pk__in=ids, matched_at__isnull=True)
        .order_by("first_seen_at", "pk")
        .defer("preview")
    )
    if not contents:
        return []
    # Contents of this batch, for the ones after them; not the shared index (see below).
    batch_pdq = HammingIndex(bits=256, max_distance=max(settings.HOTLINE_PDQ_THRESHOLD, 1))
    batch_phash = HammingIndex(bits=64, max_distance=max(settings.HOTLINE_PHASH_THRESHOLD, 1))
    near: dict[int, list[tuple[str, int, int, int]]] = {}
    with index.lock:
        index.catch_up()
        for content in contents:
            pdq_hexes = _pdq_hexes(content)
            hits = _near_targets(index, pdq_hexes=pdq_hexes, phash=content.phash)
            for hex_value in pdq_hexes:
                for pk, distance in batch_pdq.query_hex(hex_value, settings.HOTLINE_PDQ_THRESHOLD):
                    hits.append(("pdq", CONTENT, pk, distance))
            if content.phash:
                for pk, distance in batch_phash.query_hex(content.phash, settings.HOTLINE_PHASH_THRESHOLD):
                    hits.append(("phash", CONTENT, pk, distance))
            near[content.pk] = _closest(hits)
            if pdq_hexes:
                batch_pdq.add_hex_rows([(content.pk, content.pdq)])
            if content.phash:
                batch_phash.add_hex_rows([(content.pk, content.phash)])
    exact = Q()
    for field_name in EXACT_CONTENT_FIELDS:
        exact |= Q(algorithm=field_name, value__in={getattr(content, field_name) for content in contents})
    known_exact = list(KnownHash.objects.filter(exact, hash_list__active=True))
    submitted_exact = list(SubmittedHash.objects.filter(exact))
    rows: list[Match] = []
    target_contents: set[int] = set()
    known_ids: set[int] = set()
    seq = _next_seq(Content)
    now = timezone.now()
    limit = settings.HOTLINE_RUNAWAY_THRESHOLD
    for content in contents:
        values = {(field_name, getattr(content, field_name)) for field_name in EXACT_CONTENT_FIELDS}
        for known in known_exact:
            if (known.algorithm, known.value) in values:
                rows.append(Match(content=content, known_hash=known, kind=known.algorithm, distance=0))
                known_ids.add(known.pk)
        for submitted in submitted_exact:
            if (submitted.algorithm, submitted.value) in values:
                rows.append(
                    Match(submitted_hash=submitted, matched_content=content, kind=submitted.algorithm, distance=0)
                )
        own_targets: set[int] = set()
        for kind, target_kind, pk, distance in near[content.pk]:
            if target_kind == CONTENT and pk != content.pk:
                rows.append(Match(content=content, matched_content_id=pk, kind=kind, distance=distance))
                own_targets.add(pk)
            elif target_kind == KNOWN:
                rows.append(Match(content=content, known_hash_id=pk, kind=kind, distance=distance))
                known_ids.add(pk)
            elif target_kind == SUBMITTED:
                rows.append(Match(submitted_hash_id=pk, matched_content=content, kind=kind, distance=distance))
        target_contents |= own_targets
        if len(own_targets) > limit:
            content.quarantined = True  # its own hash is near too much: the runaway is this one
        content.matched_at = now
        content.match_seq = seq
        seq += 1
    if known_ids:
        # Entries of lists switched off since they were indexed do not count.
        live = set(KnownHash.objects.filter(pk__in=known_ids, hash_list__active=True).values_list("pk", flat=True))
        rows = [row for row in rows if row.known_hash_id is None or row.known_hash_id in live]
        known_ids &= live
    Match.objects.bulk_create(rows, ignore_conflicts=True)
    Content.objects.bulk_update(contents, ["matched_at", "match_seq", "quarantined"])
    affected = _quarantine_runaways(target_content_ids=target_contents, known_ids=known_ids)
    # Not added to this worker's index here: if this transaction rolled back after that, the index
    # would hold content the database does not, and its mark would pass over the match_seq that the
    # next content takes. The next catch_up() reads it once committed.
    cases_refresh_for_contents([*(content.pk for content in contents), *sorted(affected)])
    return rows


def _closest(hits: list[tuple[str, int, int, int]]) -> list[tuple[str, int, int, int]]:
    """One hit per (hash kind, target), the closest: a target found in the shared index and again
    among the batch cannot be, but a PDQ target found by several dihedral variants keeps its best."""
    best: dict[tuple[str, int, int], tuple[str, int, int, int]] = {}
    for hit in hits:
        key = hit[:3]
        if key not in best or hit[3] < best[key][3]:
            best[key] = hit
    return list(best.values())


@transaction.atomic
def report_hashes_match(*, report_id: int) -> list[Match]:
    """Match a partner report's submitted hashes (exact and near) and, for a hash-only report,
    open its case. Idempotent: hashes matched once are skipped."""
    match_lock()
    report = Report.objects.filter(pk=report_id).first()
    if report is None:
        return []
    pending = list(SubmittedHash.objects.select_for_update().filter(report=report, matched_at__isnull=True))
    rows: list[Match] = []
    index = get_match_index()
    for submitted in pending:
        algorithm, value = submitted.algorithm, submitted.value
        if algorithm in EXACT_CONTENT_FIELDS:
            for content in Content.objects.filter(**{algorithm: value}):
                rows.append(Match(submitted_hash=submitted, matched_content=content, kind=algorithm, distance=0))
            for known in KnownHash.objects.filter(algorithm=algorithm, value=value, hash_list__active=True):
                rows.append(Match(submitted_hash=submitted, known_hash=known, kind=algorithm, distance=0))
        else:
            with index.lock:
                index.catch_up()
                hits = _near_targets(
                    index, pdq_hexes=[value] if algorithm == "pdq" else [], phash=value if algorithm == "phash" else ""
                )
            live_known = set(
                KnownHash.objects.filter(
                    pk__in=[pk for _, kind, pk, _ in hits if kind == KNOWN], hash_list__active=True
                ).values_list("pk", flat=True)
            )
            for kind, target_kind, pk, distance in hits:
                if target_kind == CONTENT:
                    rows.append(Match(submitted_hash=submitted, matched_content_id=pk, kind=kind, distance=distance))
                elif target_kind == KNOWN and pk in live_known:
                    rows.append(Match(submitted_hash=submitted, known_hash_id=pk, kind=kind, distance=distance))
        submitted.matched_at = timezone.now()
        submitted.match_seq = _next_seq(SubmittedHash)
        submitted.save(update_fields=["matched_at", "match_seq"])
        # Left to the next catch_up(), as for content: adding it here would move this worker's mark
        # past submitted hashes other workers committed that it has not read yet.
    Match.objects.bulk_create(rows, ignore_conflicts=True)
    if not report.reported_urls.exists() and report.hashes.exists():
        case_for_hash_report(report=report)
    return rows
